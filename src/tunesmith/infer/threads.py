"""Thread settings for CPU inference: one intra-op thread per physical core, one inter-op thread.

Why: PyTorch's default can count hyper-threads or the whole host rather than the CPUs this process
may use (containers, taskset), and oversubscribed OpenMP threads spin against each other. Batched
inference is one big matmul chain, so inter-op parallelism only adds contention.
"""
from __future__ import annotations

import os

ENV = "TUNESMITH_THREADS"


def usable_cpus() -> int:
    """CPUs this process may run on (respects taskset / cgroup affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS / Windows
        return max(1, os.cpu_count() or 1)


def physical_cores() -> int:
    """Physical cores among the usable CPUs (hyper-threads counted once), best effort."""
    cpus = usable_cpus()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            text = f.read()
        siblings = [int(l.split(":")[1]) for l in text.splitlines() if l.startswith("siblings")]
        cores = [int(l.split(":")[1]) for l in text.splitlines() if l.startswith("cpu cores")]
        if siblings and cores and siblings[0] > cores[0]:
            return max(1, cpus * cores[0] // siblings[0])
    except (OSError, ValueError, IndexError):
        pass
    return cpus


def choose_threads(requested: int | None = None) -> int:
    """The thread count: explicit value, else $TUNESMITH_THREADS, else $OMP_NUM_THREADS, else
    physical cores.

    Example:
        >>> choose_threads(3)
        3
    """
    if requested:
        return max(1, int(requested))
    for name in (ENV, "OMP_NUM_THREADS"):
        env = os.environ.get(name, "").strip()
        if env.isdigit() and int(env) > 0:
            return int(env)
    return physical_cores()


def configure_threads(requested: int | None = None) -> int:
    """Apply the chosen thread count to torch (idempotent); returns it."""
    import torch

    n = choose_threads(requested)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)  # only allowed before the first parallel op; harmless after
    except RuntimeError:
        pass
    return n
