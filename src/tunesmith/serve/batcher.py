"""The micro-batcher: requests wait (a few ms) to share a forward pass; one thread owns the model.

A batch closes when the waiting requests hold `max_batch_tokens` tokens or when the oldest has
waited `max_wait_ms`. The queue is bounded by inputs (`max_queue`): a full queue answers at once
(HTTP 429 with Retry-After) instead of growing memory. Every model call (forward passes, adapter
load and unload) runs on one worker thread, so the model never changes under a forward pass.
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

    def __init__(self, retry_after: int):
        super().__init__(f"server busy: queue full, retry after {retry_after} s")
        self.retry_after = retry_after


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

    def __init__(self, registry: Registry, cfg: BatchingConfig, metrics: Metrics):
        self.registry = registry
        self.cfg = cfg
        self.metrics = metrics
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tunesmith-model")
        self.queue: deque[Pending] = deque()
        self.queued_inputs = 0
        self.queued_tokens = 0
        self.rate = 0.0  # inputs per second, moving average, for Retry-After
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

    def retry_after(self) -> int:
        return max(1, min(60, math.ceil(self.queued_inputs / self.rate))) if self.rate > 0 else 1

    async def submit(self, works: list[Work]):
        """Logits for each work item, in order, once its micro-batch has run."""
        if self.queued_inputs + len(works) > self.cfg.max_queue:
            raise QueueFull(self.retry_after())
        pending = Pending(works, asyncio.get_running_loop().create_future(), sum(len(w.ids) for w in works))
        self.queue.append(pending)
        self._account(pending, +1)
        self._wake.set()
        return await pending.future

    async def on_model_thread(self, fn, *args):
        """Run fn(*args) between forward passes (adapter load/unload)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

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
        tokens = 0
        while self.queue:
            p = self.queue[0]
            if batch and (tokens + p.tokens > self.cfg.max_batch_tokens or self.cfg.mode == "sequential"):
                break
            self.queue.popleft()
            self._account(p, -1)
            if p.future.done():  # timed out or the client went away
                continue
            batch.append(p)
            tokens += p.tokens
        return batch

    async def _run(self, batch: list[Pending]) -> None:
        works = [w for p in batch for w in p.works]
        start = time.monotonic()
        try:
            logits = await self.on_model_thread(self.registry.forward, works, self.cfg.mode == "mixed")
        except Exception as e:  # a failed forward fails its requests, never the loop
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(e)
            return
        took = max(time.monotonic() - start, 1e-6)
        self.rate = len(works) / took if self.rate == 0 else 0.8 * self.rate + 0.2 * len(works) / took
        self.metrics.observe("tunesmith_batch_inputs", len(works), SIZE_BUCKETS)
        self.metrics.observe("tunesmith_batch_requests", len(batch), SIZE_BUCKETS)
        self.metrics.inc("tunesmith_batches_total")
        at = 0
        for p in batch:
            part, at = logits[at:at + len(p.works)], at + len(p.works)
            if not p.future.done():
                p.future.set_result(part)
