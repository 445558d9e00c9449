"""`tunesmith bench soak`: a long run above capacity against a few adapters, memory sampled throughout.

The server (`tunesmith serve` with its default limits, a child process on 127.0.0.1) gets
`--requests` requests from `--concurrency` clients, each request 1..`--max-inputs` texts for a
random adapter. Clients honour Retry-After on a 429 (capped at `--max-backoff` s), as a polite
client would; the offered load stays above what the server can do, so it must shed with 429s:
the targets are 0 5xx and 0 lost (a transport error or no answer), resident memory flat after
warm-up. The server's RSS is sampled every 5% of the requests.
"""
from __future__ import annotations

import asyncio
import os
import random
import time
from pathlib import Path

from .serve import TEXTS, Child


def add_arguments(p) -> None:
    p.add_argument("--adapter", action="append", default=[], metavar="NAME=RUN_DIR",
                   help="adapters to serve (repeatable; LoRA runs on one base), paths under --adapter-root")
    p.add_argument("--adapter-root", default=".", help="directory the adapter paths are relative to")
    p.add_argument("--base", default="minilm", help="the adapters' base model")
    p.add_argument("--requests", type=int, default=10_000, help="requests in all")
    p.add_argument("--concurrency", type=int, default=256, help="concurrent clients")
    p.add_argument("--max-inputs", type=int, default=8, help="texts per request: uniform in 1..this")
    p.add_argument("--max-backoff", type=float, default=1.0, help="most seconds a client waits after a 429")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--server-arg", action="append", default=[], metavar="--SECTION.KEY=VALUE",
                   help="extra `tunesmith serve` flag (repeatable), e.g. --server-arg=--batching.admission_wait_s=5")


class Tally:
    """Answers by status, latencies of the 200s, RSS samples."""

    def __init__(self):
        self.codes: dict[str, int] = {}
        self.latencies: list[float] = []
        self.rss: list[tuple[int, int]] = []  # (requests done, bytes)
        self.sent = 0

    def add(self, key: str, seconds: float) -> None:
        self.codes[key] = self.codes.get(key, 0) + 1
        if key == "200":
            self.latencies.append(seconds)

    def done(self) -> int:
        return sum(self.codes.values())


async def one(client, tally: Tally, rng: random.Random, names: list[str], max_inputs: int) -> float:
    """Send one request; the seconds to wait before the next (Retry-After on 429, else 0)."""
    import httpx

    body = {"adapter": rng.choice(names), "inputs": [rng.choice(TEXTS) for _ in range(rng.randint(1, max_inputs))]}
    t0 = time.perf_counter()
    try:
        r = await client.post("/v1/predict", json=body)
        key = str(r.status_code)
        retry = float(r.headers.get("retry-after", 0)) if r.status_code == 429 else 0.0
    except httpx.HTTPError as e:
        key, retry = type(e).__name__, 0.0
    tally.add(key, time.perf_counter() - t0)
    return retry


async def drive(child: Child, names: list[str], args) -> Tally:
    import httpx

    tally = Tally()
    step = max(1, args.requests // 20)
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{child.port}", limits=limits, timeout=60) as client:
        async def worker(i: int):
            rng = random.Random(args.seed * 100_003 + i)
            while tally.sent < args.requests:
                tally.sent += 1
                retry = await one(client, tally, rng, names, args.max_inputs)
                done = tally.done()
                if done % step == 0 or done == args.requests:
                    tally.rss.append((done, child.rss()))
                    print(f"  {done:>6} answered: {dict(sorted(tally.codes.items()))}, "
                          f"rss {tally.rss[-1][1] / 2**20:.1f} MiB", flush=True)
                if retry:
                    await asyncio.sleep(min(retry, args.max_backoff) * rng.uniform(0.5, 1.0))

        tally.rss.append((0, child.rss()))
        start = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
        tally.wall = time.perf_counter() - start
        tally.metrics = (await client.get("/metrics")).text
    return tally


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return float("nan")


def report(args, tally: Tally) -> None:
    lat = sorted(tally.latencies)
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")
    fives = sum(v for k, v in tally.codes.items() if k.startswith("5"))
    answered = sum(v for k, v in tally.codes.items() if k.isdigit())
    lost = tally.sent - answered
    mib = lambda b: b / 2**20
    rate = metric(tally.metrics, "tunesmith_throughput_inputs_per_second")
    print(f"\nsoak: {tally.sent} requests, {args.concurrency} clients, 1-{args.max_inputs} inputs each, "
          f"{len(args.adapter)} adapters, {tally.wall:.0f} s")
    print(f"  200: {tally.codes.get('200', 0)}   429: {tally.codes.get('429', 0)}   5xx: {fives}   "
          f"other: {answered - tally.codes.get('200', 0) - tally.codes.get('429', 0) - fives}   lost: {lost}")
    print(f"  latency of the 200s: p50 {pct(0.5):.0f} ms, p99 {pct(0.99):.0f} ms, max {pct(1.0):.0f} ms")
    print(f"  server throughput at the end (EWMA): {rate:.1f} inputs/s")
    print("  resident memory (server): " + ", ".join(f"{n}: {mib(b):.1f}" for n, b in tally.rss) + " MiB")
    samples = [b for _, b in tally.rss]
    mid = samples[len(samples) // 2]
    print(f"  start {mib(samples[0]):.1f} MiB, middle {mib(mid):.1f} MiB, end {mib(samples[-1]):.1f} MiB, "
          f"max {mib(max(samples)):.1f} MiB")
    print(f"checks: 5xx {fives} (target 0), lost {lost} (target 0), end - middle "
          f"{mib(samples[-1] - mid):+.1f} MiB (target ~0: flat after warm-up)")


def run(args) -> int:
    from ..serve.config import parse_adapters

    adapters = parse_adapters(args.adapter)
    if not adapters:
        raise SystemExit("give the adapters to soak: --adapter NAME=RUN_DIR (repeatable)")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    root = Path(args.adapter_root).resolve()
    import tempfile

    logs = Path(tempfile.mkdtemp(prefix="tunesmith-soak-"))
    child = Child(root, args.base, [f"{n}={p}" for n, p in adapters.items()], "mixed", 1024, 5.0,
                  extra=list(args.server_arg), pairs=True, log_dir=logs)
    print(f"server log: {child.log.name}", flush=True)
    with child:
        tally = asyncio.run(drive(child, list(adapters), args))
    report(args, tally)
    print(f"server exit status after SIGTERM: {child.proc.returncode} (target 0)")
    return 0
