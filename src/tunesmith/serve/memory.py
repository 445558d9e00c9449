"""Keep the server's resident memory flat: the glibc allocator settings and a periodic trim.

Seen on this machine (docs/serving.md has the numbers): resident memory grew from ~430 MiB to
~1 GB over the first few thousand requests and then levelled off; forward passes of varied
shapes alone reproduce it (+450 MiB in 200 passes), and the two allocator remedies below each
keep it within ~30 MiB. Each forward pass allocates activations of a new (batch, length) shape from the
model thread and torch's OpenMP threads; glibc gives each thread its own arena (up to 8 per core)
and keeps freed chunks inside them, and its dynamic mmap threshold moves large tensors off mmap
onto those heaps after the first frees. `configure_allocator()` caps the arenas and fixes the
threshold (call it at process start); `Trimmer` hands free pages back with malloc_trim(0) after a
forward pass, at most once a second. On other C libraries both do nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import time

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def _libc():
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return lib if hasattr(lib, "malloc_trim") and hasattr(lib, "mallopt") else None
    except OSError:
        return None


LIBC = _libc()


def configure_allocator(arenas: int = 2, mmap_threshold: int = 1 << 20) -> bool:
    """Cap glibc's arenas and fix its mmap threshold; True when glibc took the settings."""
    if LIBC is None:
        return False
    return bool(LIBC.mallopt(M_ARENA_MAX, arenas)) and bool(LIBC.mallopt(M_MMAP_THRESHOLD, mmap_threshold))


class Trimmer:
    """Callable for the batcher's after-batch hook: malloc_trim(0) at most every `interval_s` seconds."""

    def __init__(self, interval_s: float = 1.0):
        self.interval_s = interval_s
        self.last = 0.0
        self.trims = 0

    def __call__(self) -> None:
        now = time.monotonic()
        if LIBC is None or now - self.last < self.interval_s:
            return
        self.last = now
        LIBC.malloc_trim(0)
        self.trims += 1
