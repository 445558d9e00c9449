"""The micro-batcher: requests wait (a few ms) to share a forward pass; one thread owns the model.

A batch closes when the waiting requests hold `max_batch_tokens` tokens or when the oldest has
waited `max_wait_ms`. Admission is bounded by the *expected wait*: queued inputs divided by the
measured throughput (an EWMA of inputs per second over whole batch cycles) must stay under
`admission_wait_s`, else the request is answered at once with HTTP 429 and a Retry-After derived
from the same estimate. A bound in inputs alone (`max_queue`, still the hard memory cap) is wrong
by the machine's speed: 1,024 inputs were ~50 s of work on a loaded 2-core machine, with requests
timing out at 30 s (504s instead of 429s). Every model call (forward passes, adapter load and
unload) runs on one worker thread, so the model never changes under a forward pass.
"""
from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .config import BatchingConfig
from .metrics import SIZE_BUCKETS, Metrics
from .registry import Registry, Work


class QueueFull(Exception):
    """The bounded queue has no room for this request."""

    def __init__(self, retry_after: int, why: str = "queue full"):
        super().__init__(f"server busy: {why}, retry after {retry_after} s")
        self.retry_after = retry_after


class Throughput:
    """Inputs per second the model thread gets through, as an exponential moving average.

    Each sample is one batch cycle: from when its work could start (the end of the previous batch,
    or the arrival of its oldest request if the batcher was idle) to the end of its forward pass,
    so the batching wait and the event loop's share of the CPU count, not the forward pass alone.

    Example:
        >>> t = Throughput()
        >>> t.add(inputs=50, seconds=0.5); t.per_second
        100.0
    """

    def __init__(self, alpha: float = 0.2):
        self.alpha = alpha
        self.per_second = 0.0  # 0: nothing measured yet

    def add(self, inputs: int, seconds: float) -> None:
        rate = inputs / max(seconds, 1e-6)
        self.per_second = rate if self.per_second == 0 else (1 - self.alpha) * self.per_second + self.alpha * rate

    def seconds_for(self, inputs: int) -> float | None:
        """Expected seconds to get through `inputs`; None before the first measurement."""
        return inputs / self.per_second if self.per_second > 0 else None


@dataclass
class Pending:
    works: list[Work]
    future: asyncio.Future
    tokens: int
    arrived: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Collects requests into micro-batches and runs them on the model thread.

    Example:
        >>> batcher = MicroBatcher(registry, BatchingConfig(max_wait_ms=5), Metrics())
        >>> await batcher.start()
        >>> logits = await batcher.submit(registry.encode("spam", ["win a prize now"]))
    """

    def __init__(self, registry: Registry, cfg: BatchingConfig, metrics: Metrics,
                 admission_wait_s: float = 10.0, after_batch=None, timeout_s: float = 30.0):
        self.registry = registry
        self.cfg = cfg
        self.metrics = metrics
        self.admission_wait_s = admission_wait_s
        self.timeout_s = timeout_s
        self.after_batch = after_batch  # called on the model thread after each forward (memory trim)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tunesmith-model")
        self.queue: deque[Pending] = deque()
        self.queued_inputs = 0
        self.queued_tokens = 0
        self.throughput = Throughput()
        self.running_inputs = 0
        self._run_started = 0.0
        self._last_end = 0.0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name="tunesmith-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for p in self.queue:  # nothing is dropped silently
            if not p.future.done():
                p.future.set_exception(RuntimeError("server shut down before this request ran"))
        self.queue.clear()
        self.executor.shutdown(wait=True)

    def admit(self, n: int, tokens: int = 0) -> None:
        """Raise QueueFull (429) unless `n` more inputs would be served within admission_wait_s.

        Retry-After is the time until the queue has drained enough for such a request to be
        admitted (at least 1 s, at most 60 s). Before the first batch has been measured the
        queue holds at most one batch (`max_batch_tokens`): the first soak admitted 1,024 inputs
        of a cold start on trust, and 173 of them timed out (504).
        """
        unmeasured = self.throughput.per_second == 0
        if unmeasured and self.queued_inputs > 0 and self.queued_tokens + tokens > self.cfg.max_batch_tokens:
            raise QueueFull(1, "measuring throughput (the first batch has not finished)")
        wait = self.expected_wait(n)
        if wait is not None and wait > self.admission_wait_s and self.queued_inputs + self.running_inputs > 0:
            raise QueueFull(retry_in(wait - self.admission_wait_s),
                            f"expected wait {wait:.1f} s over {self.admission_wait_s:g} s")
        if self.queued_inputs + n > self.cfg.max_queue:
            over = self.throughput.seconds_for(self.queued_inputs + n - self.cfg.max_queue)
            raise QueueFull(retry_in(over or 1.0), f"queue full ({self.cfg.max_queue} inputs)")

    def expected_wait(self, n: int) -> float | None:
        """Seconds until `n` more inputs would be served: the rest of the batch running now plus
        the queue (the running batch counts: on a loaded machine one batch took 13 s, and
        leaving it out let requests time out)."""
        wait = self.throughput.seconds_for(self.queued_inputs + n)
        if wait is None:
            return None
        if self.running_inputs:
            running = self.throughput.seconds_for(self.running_inputs) or 0.0
            wait += max(0.0, running - (time.monotonic() - self._run_started))
        return wait

    def batch_cap(self) -> int:
        """Inputs per micro-batch at most: a quarter of admission_wait_s of work, so no single
        batch makes an admitted request overstay its bound (no cap before the first measurement)."""
        rate = self.throughput.per_second
        return max(1, int(rate * self.admission_wait_s / 4)) if rate > 0 else 1 << 30

    async def submit(self, works: list[Work]):
        """Logits for each work item, in order, once its micro-batch has run."""
        tokens = sum(len(w.ids) for w in works)
        self.admit(len(works), tokens)
        pending = Pending(works, asyncio.get_running_loop().create_future(), tokens)
        self.queue.append(pending)
        self._account(pending, +1)
        self._wake.set()
        return await pending.future

    async def on_model_thread(self, fn, *args):
        """Run fn(*args) between forward passes (adapter load/unload)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def _forward(self, works: list[Work]) -> list:
        logits = self.registry.forward(works, self.cfg.mode == "mixed")
        if self.after_batch is not None:
            self.after_batch()
        return logits

    def _account(self, p: Pending, sign: int) -> None:
        self.queued_inputs += sign * len(p.works)
        self.queued_tokens += sign * p.tokens
        self.metrics.set("tunesmith_queue_depth", self.queued_inputs)

    async def _loop(self) -> None:
        while True:
            if not self.queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            await self._fill()
            batch = self._take()
            if batch:
                await self._run(batch)

    async def _fill(self) -> None:
        """Wait until the queue holds a full batch or the oldest request's wait is over."""
        if self.cfg.mode == "sequential":
            return
        deadline = self.queue[0].arrived + self.cfg.max_wait_ms / 1000
        while self.queued_tokens < self.cfg.max_batch_tokens:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except asyncio.TimeoutError:
                return

    def _take(self) -> list[Pending]:
        batch: list[Pending] = []
        tokens = inputs = 0
        cap = self.batch_cap()
        while self.queue:
            p = self.queue[0]
            if batch and (tokens + p.tokens > self.cfg.max_batch_tokens or inputs + len(p.works) > cap
                          or self.cfg.mode == "sequential"):
                break
            self.queue.popleft()
            self._account(p, -1)
            if p.future.done():  # timed out or the client went away
                continue
            batch.append(p)
            tokens += p.tokens
            inputs += len(p.works)
        self._shed_hopeless(inputs)
        return batch

    def _shed_hopeless(self, ahead: int) -> None:
        """Answer 429 now to queued requests that the measured throughput says cannot finish
        before their timeout (the machine slowed down after they were admitted: on the shared
        2-core machine throughput fell from ~19 to ~4 inputs/s within a minute). They would
        become 504s later; shed, they can be retried at once elsewhere."""
        rate = self.throughput.per_second
        if rate <= 0 or not self.queue:
            return
        now, kept = time.monotonic(), deque()
        for p in self.queue:
            ahead += len(p.works)
            if not p.future.done() and now + ahead / rate > p.arrived + self.timeout_s:
                p.future.set_exception(QueueFull(retry_in(ahead / rate - self.admission_wait_s),
                                                 "the queue slowed down; this request would time out"))
                self._account(p, -1)
                ahead -= len(p.works)
            else:
                kept.append(p)
        self.queue = kept

    async def _run(self, batch: list[Pending]) -> None:
        works = [w for p in batch for w in p.works]
        start = max(self._last_end, min(p.arrived for p in batch))  # when this work could have started
        self.running_inputs, self._run_started = len(works), time.monotonic()
        try:
            logits = await self.on_model_thread(self._forward, works)
        except Exception as e:  # a failed forward fails its requests, never the loop
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(e)
            return
        finally:
            self.running_inputs = 0
        self._last_end = time.monotonic()
        self.throughput.add(len(works), self._last_end - start)
        self.metrics.set("tunesmith_throughput_inputs_per_second", self.throughput.per_second)
        self.metrics.observe("tunesmith_batch_inputs", len(works), SIZE_BUCKETS)
        self.metrics.observe("tunesmith_batch_requests", len(batch), SIZE_BUCKETS)
        self.metrics.inc("tunesmith_batches_total")
        at = 0
        for p in batch:
            part, at = logits[at:at + len(p.works)], at + len(p.works)
            if not p.future.done():
                p.future.set_result(part)


def retry_in(seconds: float) -> int:
    """Whole seconds for a Retry-After header: at least 1, at most 60."""
    return max(1, min(60, math.ceil(seconds)))
