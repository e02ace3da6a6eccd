"""aggregator.metrics on prometheus_client: the names and labels of docs/operations.md in both
formats the library writes (Prometheus text 0.0.4, OpenMetrics 1.0, parsed back with the library's
own parsers), a label set that varies between calls of one counter, process metrics and build info,
and one registry per Metrics (two aggregators in one process do not collide)."""

from __future__ import annotations

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from aggregator.metrics import SIZE_BUCKETS, Metrics


def _filled() -> Metrics:
    m = Metrics()
    m.describe("sheaf_submissions_total", "Submissions by result")
    m.inc("sheaf_submissions_total", result="accepted")
    m.inc("sheaf_submissions_total", 2, result="accepted")
    m.inc("sheaf_inferences_total", result="accepted")
    m.inc("sheaf_inferences_total", result="rejected", code="BAD_SLICE")  # one more label here
    m.observe("sheaf_ack_seconds", 0.003, scheme="groth16")
    m.observe("sheaf_ack_seconds", 0.2, scheme="groth16")
    m.observe("sheaf_batch_size", 3, SIZE_BUCKETS, kind="attested")
    m.gauge("sheaf_proofs", lambda: {(("status", "QUEUED"),): 4.0})
    return m


def _samples(families: object) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families  # type: ignore[attr-defined]
        for s in f.samples
    }


def test_text_format_keeps_the_names_and_labels() -> None:
    m = _filled()
    fams = list(parse_text(m.render()))
    types = {f.name: f.type for f in fams}
    assert types["sheaf_submissions"] == "counter" and types["sheaf_ack_seconds"] == "histogram"
    assert types["sheaf_proofs"] == "gauge"
    got = _samples(fams)
    assert got[("sheaf_submissions_total", (("result", "accepted"),))] == 3
    assert got[("sheaf_inferences_total", (("code", "BAD_SLICE"), ("result", "rejected")))] == 1
    assert got[("sheaf_inferences_total", (("result", "accepted"),))] == 1
    assert got[("sheaf_ack_seconds_bucket", (("le", "0.005"), ("scheme", "groth16")))] == 1
    assert got[("sheaf_ack_seconds_bucket", (("le", "+Inf"), ("scheme", "groth16")))] == 2
    assert got[("sheaf_ack_seconds_count", (("scheme", "groth16"),))] == 2
    assert abs(got[("sheaf_ack_seconds_sum", (("scheme", "groth16"),))] - 0.203) < 1e-9
    assert got[("sheaf_batch_size_bucket", (("kind", "attested"), ("le", "2.0")))] == 0
    assert got[("sheaf_batch_size_bucket", (("kind", "attested"), ("le", "4.0")))] == 1
    assert got[("sheaf_proofs", (("status", "QUEUED"),))] == 4
    assert m.counter_value("sheaf_submissions_total", result="accepted") == 3
    # what the library adds: process metrics, build info
    assert got[("process_resident_memory_bytes", ())] > 1e6
    (build,) = [k for k in got if k[0] == "sheaf_build_info"]
    assert dict(build[1])["version"] and got[build] == 1


def test_openmetrics_on_request() -> None:
    m = _filled()
    body, ctype = m.exposition("application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    assert ctype.startswith("application/openmetrics-text")
    text = body.decode()
    assert text.endswith("# EOF\n")
    got = _samples(parse_openmetrics(text))
    assert got[("sheaf_submissions_total", (("result", "accepted"),))] == 3
    body, ctype = m.exposition(None)
    assert ctype.startswith("text/plain") and "version=0.0.4" in ctype and b"# EOF" not in body


def test_each_metrics_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.inc("sheaf_submissions_total", result="accepted")
    assert b.counter_value("sheaf_submissions_total", result="accepted") == 0
    assert "sheaf_submissions_total" not in b.render()
