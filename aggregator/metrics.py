"""Prometheus text exposition (format 0.0.4), written by hand to avoid a dependency."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: tuple[tuple[str, str], ...], extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = labels + extra
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_esc(v)}"' for k, v in items) + "}"


def _num(v: float) -> str:
    if v == float("inf"):
        return "+Inf"
    return repr(float(v)) if not float(v).is_integer() else str(int(v))


@dataclass
class Histogram:
    buckets: Sequence[float]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, v: float) -> None:
        i = bisect.bisect_left(self.buckets, v)
        if i < len(self.counts):
            self.counts[i] += 1
        self.total += v
        self.n += 1


class Metrics:
    def __init__(self) -> None:
        self.counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        self.hists: dict[str, dict[tuple[tuple[str, str], ...], Histogram]] = {}
        self.gauges: dict[str, Callable[[], dict[tuple[tuple[str, str], ...], float]]] = {}
        self.help: dict[str, str] = {}

    def describe(self, name: str, text: str) -> None:
        self.help[name] = text

    def inc(self, name: str, v: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        d = self.counters.setdefault(name, {})
        d[key] = d.get(key, 0.0) + v

    def observe(self, name: str, v: float, buckets: Sequence[float] = LATENCY_BUCKETS, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self.hists.setdefault(name, {}).setdefault(key, Histogram(buckets)).observe(v)

    def gauge(self, name: str, fn: Callable[[], dict[tuple[tuple[str, str], ...], float]]) -> None:
        self.gauges[name] = fn

    def counter_value(self, name: str, **labels: str) -> float:
        return self.counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        out: list[str] = []

        def head(name: str, typ: str) -> None:
            if name in self.help:
                out.append(f"# HELP {name} {self.help[name]}")
            out.append(f"# TYPE {name} {typ}")

        for name in sorted(self.counters):
            head(name, "counter")
            for key, v in sorted(self.counters[name].items()):
                out.append(f"{name}{_labels(key)} {_num(v)}")
        for name in sorted(self.gauges):
            head(name, "gauge")
            for key, v in sorted(self.gauges[name]().items()):
                out.append(f"{name}{_labels(key)} {_num(v)}")
        for name in sorted(self.hists):
            head(name, "histogram")
            for key, h in sorted(self.hists[name].items()):
                cum = 0
                for b, c in zip(h.buckets, h.counts, strict=True):
                    cum += c
                    out.append(f"{name}_bucket{_labels(key, (('le', _num(b)),))} {cum}")
                out.append(f"{name}_bucket{_labels(key, (('le', '+Inf'),))} {h.n}")
                out.append(f"{name}_sum{_labels(key)} {_num(h.total)}")
                out.append(f"{name}_count{_labels(key)} {h.n}")
        return "\n".join(out) + "\n"
