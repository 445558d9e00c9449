"""Peak memory of a block of work: CUDA's allocator peak, or on CPU the peak resident set size
(sampled every 20 ms) above what the process held when the block began."""
from __future__ import annotations

import os
import threading
import time


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class PeakMemory:
    """Context manager; `.peak` holds the bytes the block added at its highest point.

    Example:
        >>> with PeakMemory() as m:
        ...     x = bytearray(50_000_000)
        >>> m.peak > 0
        True
    """

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak, self.device = interval, 0, "cpu"
        self._stop = threading.Event()

    def __enter__(self) -> "PeakMemory":
        import torch

        if torch.cuda.is_available():
            self.device = "cuda"
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
            return self
        self._start = self._max = rss_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._max = max(self._max, rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self._start
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self._max, rss_bytes()) - self._start
