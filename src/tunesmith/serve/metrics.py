"""Prometheus text-format metrics (exposition format 0.0.4), kept in process.

A dozen lines of formatting replace the prometheus_client dependency: the server needs counters,
gauges and histograms with labels, nothing more.
"""
from __future__ import annotations

import threading
from bisect import bisect_left

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def _labels(pairs: tuple) -> str:
    if not pairs:
        return ""
    esc = lambda v: str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in pairs) + "}"


class Metrics:
    """Counters, gauges and histograms by name and label set; `render()` gives the /metrics text.

    Example:
        >>> m = Metrics()
        >>> m.inc("tunesmith_requests_total", adapter="spam", status="200")
        >>> 'tunesmith_requests_total{adapter="spam",status="200"} 1' in m.render()
        True
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.counters: dict[str, dict[tuple, float]] = {}
        self.gauges: dict[str, dict[tuple, float]] = {}
        self.hists: dict[str, tuple[tuple, dict[tuple, list]]] = {}
        self.help: dict[str, str] = {}

    def describe(self, name: str, text: str) -> None:
        self.help[name] = text

    def inc(self, name: str, value: float = 1.0, **labels) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            series = self.counters.setdefault(name, {})
            series[key] = series.get(key, 0.0) + value

    def set(self, name: str, value: float, **labels) -> None:
        with self._lock:
            self.gauges.setdefault(name, {})[tuple(sorted(labels.items()))] = float(value)

    def observe(self, name: str, value: float, buckets: tuple = LATENCY_BUCKETS, **labels) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            bounds, series = self.hists.setdefault(name, (buckets, {}))
            counts = series.setdefault(key, [0] * (len(bounds) + 1) + [0.0])  # buckets, +Inf, sum
            counts[bisect_left(bounds, value)] += 1
            counts[-1] += value

    def value(self, name: str, **labels) -> float:
        """A counter's or gauge's current value (0 when never set); for tests and the benchmark."""
        key = tuple(sorted(labels.items()))
        with self._lock:
            return self.counters.get(name, {}).get(key, self.gauges.get(name, {}).get(key, 0.0))

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for kind, store in (("counter", self.counters), ("gauge", self.gauges)):
                for name, series in sorted(store.items()):
                    lines += [f"# HELP {name} {self.help.get(name, name)}", f"# TYPE {name} {kind}"]
                    lines += [f"{name}{_labels(k)} {v:g}" for k, v in sorted(series.items())]
            for name, (bounds, series) in sorted(self.hists.items()):
                lines += [f"# HELP {name} {self.help.get(name, name)}", f"# TYPE {name} histogram"]
                for key, counts in sorted(series.items()):
                    running = 0
                    for bound, c in zip(list(bounds) + ["+Inf"], counts[:-1]):
                        running += c
                        lines.append(f"{name}_bucket{_labels(key + (('le', bound),))} {running}")
                    lines.append(f"{name}_sum{_labels(key)} {counts[-1]:g}")
                    lines.append(f"{name}_count{_labels(key)} {running}")
        return "\n".join(lines) + "\n"
