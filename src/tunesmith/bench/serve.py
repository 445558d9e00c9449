"""`tunesmith bench serve`: the multi-adapter server under load, against its two baselines.

(a) our server: N LoRA adapters on one base, requests of different adapters share micro-batches;
(b) one full model copy per task: memory only (N x the single-model footprint, computed);
(c) the same server switching adapters per request, one request per forward (no batching).
Servers run as child processes on 127.0.0.1 (their resident memory is measured on their own);
the client is bounded by a request count and a duration at each concurrency level, and every
child is stopped (SIGTERM, graceful) before the bench returns.
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DATASETS = ("movie-reviews", "sms-spam")
TEXTS = ["a gorgeous, witty and moving film", "dull, lifeless and far too long",
         "WINNER!! claim your free prize now, text CLAIM to 80085", "are we still on for lunch tomorrow?",
         "the acting is superb but the plot drags in the middle", "URGENT: your account has been selected",
         "one of the best films of the year", "call me when you get home, ok?"]


def add_arguments(p) -> None:
    p.add_argument("--base", default="minilm", help="base model shared by the adapters")
    p.add_argument("--adapters", type=int, default=20, help="number of adapters (tasks) to serve")
    p.add_argument("--train-steps", type=int, default=2, help="LoRA steps per adapter (they only need to exist)")
    p.add_argument("--train-examples", type=int, default=64, help="training examples per adapter")
    p.add_argument("--concurrency", default="1,8,64", help="client concurrency levels, comma-separated")
    p.add_argument("--requests", type=int, default=300, help="requests per level (upper bound)")
    p.add_argument("--duration", type=float, default=15.0, help="seconds per level at most")
    p.add_argument("--max-queue", type=int, default=32, help="server queue bound (inputs): the capacity "
                                                          "the highest level should exceed")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="micro-batch wait")
    p.add_argument("--work-dir", default=None, help="keep the trained adapters here (reused when present); "
                                                   "default: a temporary directory")
    p.add_argument("--seed", type=int, default=0)


# ---- adapters ------------------------------------------------------------------------------
def train_adapters(base: str, root: Path, n: int, steps: int, examples: int) -> list[str]:
    """N LoRA adapters, each a few AdamW steps on its own seeded subset of movie-reviews or
    sms-spam, all trained on one loaded base (peft add_adapter) and saved the peft way
    (adapter_config.json + adapter_model.safetensors with the head, labels.json).

    The full `tunesmith finetune` pipeline would also evaluate and plot each run, which on 2
    shared cores costs ~50 s per adapter; the adapters here only need to exist and differ.
    Finished adapters in `root` are reused.
    """
    import json

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    from ..adapt.methods import default_targets
    from ..data.builtin import load_builtin
    from ..models import load_tokenizer, resolve

    names = [f"task{i:02d}" for i in range(n)]
    todo = [i for i, name in enumerate(names) if not (root / name / "adapter_model.safetensors").is_file()]
    if not todo:
        return names
    ref = resolve(base)
    tok = load_tokenizer(ref)
    model = AutoModelForSequenceClassification.from_pretrained(ref.path, num_labels=2, use_safetensors=True)
    cfg = LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, target_modules=default_targets(model),
                     modules_to_save=["classifier"])
    peft_model = None
    data = {d: load_builtin(d)[0] for d in DATASETS}
    for i in todo:
        start, name, dataset = time.perf_counter(), names[i], DATASETS[i % 2]
        labels = sorted({r["label"] for r in data[dataset]})
        torch.manual_seed(i)
        if peft_model is None:
            peft_model = get_peft_model(model, cfg, adapter_name=name)
        else:
            peft_model.add_adapter(name, cfg)
        peft_model.set_adapter(name)
        peft_model.train()
        rows = random.Random(i).sample(data[dataset], examples)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=1e-3)
        for step in range(steps):
            chunk = rows[(step * 16) % examples:][:16]
            batch = tok([r["text"] for r in chunk], truncation=True, max_length=64, padding=True,
                        return_tensors="pt")
            y = torch.tensor([labels.index(r["label"]) for r in chunk])
            loss = peft_model(**batch, labels=y).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
        peft_model.save_pretrained(root / "_save", selected_adapters=[name])
        saved = root / "_save" / name if (root / "_save" / name).is_dir() else root / "_save"
        saved.rename(root / name)
        (root / name / "labels.json").write_text(json.dumps(labels))
        print(f"  trained {name} ({dataset}, {steps} LoRA steps, loss {loss.item():.3f}) in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
    import shutil

    shutil.rmtree(root / "_save", ignore_errors=True)
    return names


# ---- one server as a child process ----------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Child:
    """`tunesmith serve` on loopback in a child process; always stopped on exit."""

    def __init__(self, root: Path, base: str, names: list[str], mode: str, max_queue: int, wait_ms: float,
                 extra: list[str] | None = None, pairs: bool = False, log_dir: Path | None = None):
        """`names` are adapter directories under root (or NAME=DIR when `pairs`); `extra` replaces
        the bench's own request timeout (60 s) with these flags (the soak keeps the defaults)."""
        self.port = free_port()
        argv = [sys.executable, "-m", "tunesmith.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--base", base, "--model.adapter_root", str(root), "--batching.mode", mode,
                "--batching.max_queue", str(max_queue), "--batching.max_wait_ms", str(wait_ms),
                "--server.admin_enabled=false"]
        argv += ["--limits.timeout_s", "60"] if extra is None else list(extra)
        for name in names:
            argv += ["--adapter", name if pairs else f"{name}={name}"]
        log_dir = Path(log_dir or root)
        self.log = open(log_dir / f"server-{mode}-{len(names)}.log", "w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)

    def __enter__(self):
        import httpx

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready in 300 s; see {self.log.name}")

    def rss(self) -> int:
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---- the bounded client ---------------------------------------------------------------------
async def drive(port: int, names: list[str], concurrency: int, n_requests: int, duration: float,
                seed: int) -> dict:
    """`concurrency` workers send one-text requests to random adapters until the count or time is up."""
    import httpx

    rng = random.Random(seed)
    jobs = [(rng.choice(names), rng.choice(TEXTS)) for _ in range(n_requests)]
    latencies: list[float] = []
    codes: dict[str, int] = {}
    sent = 0
    stop_at = time.monotonic() + duration
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60) as client:
        async def worker():
            nonlocal sent
            while sent < len(jobs) and time.monotonic() < stop_at:
                adapter, text = jobs[sent]
                sent += 1
                t0 = time.perf_counter()
                try:
                    r = await client.post("/v1/predict", json={"adapter": adapter, "inputs": [text]})
                    key = str(r.status_code)
                except httpx.HTTPError as e:
                    key = type(e).__name__
                if key == "200":
                    latencies.append(time.perf_counter() - t0)
                codes[key] = codes.get(key, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    latencies.sort()
    pct = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")
    answered = sum(v for k, v in codes.items() if k.isdigit())
    return {"concurrency": concurrency, "sent": sent, "ok": codes.get("200", 0), "rps": codes.get("200", 0) / wall,
            "p50": pct(0.50), "p95": pct(0.95), "p99": pct(0.99), "429": codes.get("429", 0),
            "5xx": sum(v for k, v in codes.items() if k.startswith("5")),
            "other": sum(v for k, v in codes.items() if k not in ("200", "429") and not k.startswith("5")),
            "lost": sent - answered}


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n{title}")
    print(f"  {'conc':>5} {'sent':>5} {'ok':>5} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
          f"{'429':>4} {'5xx':>4} {'other':>5} {'lost':>4}")
    for r in rows:
        print(f"  {r['concurrency']:>5} {r['sent']:>5} {r['ok']:>5} {r['rps']:>7.1f} {r['p50']:>7.1f} "
              f"{r['p95']:>7.1f} {r['p99']:>7.1f} {r['429']:>4} {r['5xx']:>4} {r['other']:>5} {r['lost']:>4}")


def load_levels(child: Child, names, levels, args) -> list[dict]:
    return [asyncio.run(drive(child.port, names, c, args.requests, args.duration, args.seed + c)) for c in levels]


# ---- the bench ------------------------------------------------------------------------------
def run(args) -> int:
    import tempfile

    levels = [int(x) for x in str(args.concurrency).split(",") if x.strip()]
    tmp = None if args.work_dir else tempfile.TemporaryDirectory(prefix="tunesmith-bench-serve-")
    root = Path(args.work_dir or tmp.name).resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        print(f"training {args.adapters} LoRA adapters on {args.base} in {root}", flush=True)
        names = train_adapters(args.base, root, args.adapters, args.train_steps, args.train_examples)
        common = (root, args.base)
        with Child(*common, names[:1], "mixed", args.max_queue, args.max_wait_ms) as one:
            time.sleep(0.5)
            rss_one = one.rss()
        with Child(*common, names, "mixed", args.max_queue, args.max_wait_ms) as ours:
            rss_all = ours.rss()
            ours_rows = load_levels(ours, names, levels, args)
            rss_after = ours.rss()
        with Child(*common, names, "sequential", args.max_queue, args.max_wait_ms) as seq:
            seq_rows = load_levels(seq, names, levels, args)
        report(args, names, rss_one, rss_all, rss_after, ours_rows, seq_rows)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0


def report(args, names, rss_one, rss_all, rss_after, ours, seq) -> None:
    mib = lambda b: b / 2**20
    n = len(names)
    print(f"\nmemory (resident, server process)")
    print(f"  (a) one base + {n} adapters:     {mib(rss_all):8.1f} MiB  (after the load: {mib(rss_after):.1f} MiB)")
    print(f"      one base + 1 adapter:        {mib(rss_one):8.1f} MiB  -> ratio {rss_all / rss_one:.3f} "
          f"(target <= 1.2)")
    print(f"  (b) one full model per task:     {mib(n * rss_one):8.1f} MiB  ({n} processes x single-model "
          f"footprint, computed) -> ours is {n * rss_one / rss_all:.1f}x smaller")
    print_table("(a) our server: cross-adapter micro-batching", ours)
    print_table("(c) baseline: switch adapter per request, one request per forward", seq)
    print("\nthroughput ratio (a)/(c) per concurrency level:")
    for a, c in zip(ours, seq):
        ratio = a["rps"] / c["rps"] if c["rps"] else float("nan")
        print(f"  concurrency {a['concurrency']:>3}: {a['rps']:.1f} vs {c['rps']:.1f} req/s -> {ratio:.2f}x")
    fives = sum(r["5xx"] + r["lost"] + r["other"] for r in ours + seq)
    print(f"\nchecks: 5xx/other/lost across all levels = {fives} (target 0); "
          f"memory ratio {rss_all / rss_one:.3f} ({'ok' if rss_all <= 1.2 * rss_one else 'over'} 1.2)")
