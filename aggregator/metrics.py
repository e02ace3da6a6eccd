"""The aggregator's metrics, exposed with prometheus_client.

`Metrics` keeps the small interface the parts use (`inc`, `observe`, `gauge`, `describe`) and the
metric names and labels of docs/operations.md. The exposition (Prometheus text 0.0.4 or OpenMetrics,
chosen from the scraper's Accept header) is prometheus_client's, from one registry per `Metrics`
(several aggregators can run in one process: tests), which also carries the process collector
(`process_*`: CPU, RSS, open files), the Python platform and GC collectors and `sheaf_build_info`.

The values are kept here rather than in prometheus_client's Counter/Histogram objects because some
call sites add a label only sometimes (e.g. `code` on a rejected inference); a collector turns them
into metric families at scrape time.
"""

from __future__ import annotations

import bisect
import platform
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata

from prometheus_client import CollectorRegistry, GCCollector, Metric, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
Labels = tuple[tuple[str, str], ...]
_le: Callable[[float], str] = floatToGoString  # the library's spelling of bucket bounds (untyped there)


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


def _version() -> str:
    try:
        return metadata.version("sheaf")
    except metadata.PackageNotFoundError:
        return "unknown"


class _Families(Collector):
    """The values of one `Metrics` as prometheus_client metric families, built at each scrape."""

    def __init__(self, m: Metrics) -> None:
        self.m = m

    def collect(self) -> Iterator[Metric]:
        m = self.m
        for name in sorted(m.counters):
            # the family is named without `_total` (the library adds it back per format)
            fam = Metric(name.removesuffix("_total"), m.help.get(name, name), "counter")
            for key, v in sorted(m.counters[name].items()):
                fam.add_sample(name, dict(key), v)
            yield fam
        for name in sorted(m.gauges):
            fam = Metric(name, m.help.get(name, name), "gauge")
            for key, v in sorted(m.gauges[name]().items()):
                fam.add_sample(name, dict(key), v)
            yield fam
        for name in sorted(m.hists):
            fam = Metric(name, m.help.get(name, name), "histogram")
            for key, h in sorted(m.hists[name].items()):
                cum = 0
                for b, c in zip(h.buckets, h.counts, strict=True):
                    cum += c
                    fam.add_sample(name + "_bucket", {**dict(key), "le": _le(b)}, cum)
                fam.add_sample(name + "_bucket", {**dict(key), "le": "+Inf"}, h.n)
                fam.add_sample(name + "_count", dict(key), h.n)
                fam.add_sample(name + "_sum", dict(key), h.total)
            yield fam
        info = Metric("sheaf_build", "Sheaf build: package version and Python", "info")
        info.add_sample("sheaf_build_info", {"version": _version(), "python": platform.python_version()}, 1)
        yield info


class Metrics:
    def __init__(self) -> None:
        self.counters: dict[str, dict[Labels, float]] = {}
        self.hists: dict[str, dict[Labels, Histogram]] = {}
        self.gauges: dict[str, Callable[[], dict[Labels, float]]] = {}
        self.help: dict[str, str] = {}
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.registry.register(_Families(self))

    def describe(self, name: str, text: str) -> None:
        self.help[name] = text

    def inc(self, name: str, v: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        d = self.counters.setdefault(name, {})
        d[key] = d.get(key, 0.0) + v

    def observe(self, name: str, v: float, buckets: Sequence[float] = LATENCY_BUCKETS, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self.hists.setdefault(name, {}).setdefault(key, Histogram(buckets)).observe(v)

    def gauge(self, name: str, fn: Callable[[], dict[Labels, float]]) -> None:
        self.gauges[name] = fn

    def counter_value(self, name: str, **labels: str) -> float:
        return self.counters.get(name, {}).get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        """Prometheus text format 0.0.4."""
        return generate_latest(self.registry).decode()

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """(body, content type) in the format the scraper's Accept header asks for: OpenMetrics
        1.0 if it accepts application/openmetrics-text, else Prometheus text 0.0.4."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
