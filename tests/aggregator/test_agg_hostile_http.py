"""Hostile input against a real `aggregator run` process (issue 13, failures 1, 4 and 5): every
request gets a coded JSON 4xx, never a crash, a 500 or plain text, and the process stays up.

The aggregator runs as its own process: the deep-nesting crash was a C-stack overflow (SIGSEGV)
that would take an in-process test runner down with it.

Every hostile request is tallied by (interface, status, code); the last test checks the tally (every
answer coded, no 5xx, the process alive) and, with SHEAF_CORPUS_REPORT=<file>, writes it as JSON
(the figures in docs/performance.md, "Bad-input corpus").
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
import grpc
import pytest
from agg_helpers import AggregatorProc, ChainEnv, fixture_inputs, write_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.anvil import free_port
from sheaf.v1 import aggregator_pb2 as pb
from sheaf.v1 import aggregator_pb2_grpc as pbg

# (interface, status, code) -> how many hostile requests got that answer (this module's corpus)
TALLY: Counter[tuple[str, str, str]] = Counter()


class Running:
    def __init__(self, proc: AggregatorProc, http: str, grpc_target: str) -> None:
        self.proc, self.http, self.grpc = proc, http, grpc_target

    def alive(self) -> bool:
        return self.proc.p is not None and self.proc.p.poll() is None


@pytest.fixture(scope="module")
def agg(chain_env: ChainEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    d = tmp_path_factory.mktemp("hostile")
    gp, hp = free_port(), free_port()
    write_config(d / "agg.toml", chain_env, d / "agg.db", gp, hp)
    p = AggregatorProc(d / "agg.toml", d / "agg.log")
    p.start()
    try:
        deadline = time.monotonic() + 60
        while not p.ready_file.exists():
            assert p.p is not None and p.p.poll() is None, (d / "agg.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "aggregator did not come up"
            time.sleep(0.05)
        yield Running(p, f"http://127.0.0.1:{hp}", f"127.0.0.1:{gp}")
    finally:
        p.stop()


async def _request(
    agg: Running,
    method: str,
    path: str,
    body: bytes | None = None,
    ctype: str = "application/json",
    tally: bool = True,
) -> tuple[int, str, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, agg.http + path, data=body, headers={"Content-Type": ctype}) as r,
    ):
        text = await r.text(errors="replace")
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        err = payload.get("error") if isinstance(payload, dict) else None
        code = str(err.get("code")) if isinstance(err, dict) else "(uncoded)"
        if tally:
            TALLY["http", str(r.status), code] += 1
        return r.status, r.content_type, payload


def _assert_coded(
    status: int, ctype: str, payload: Any, expected_status: int, code: str | None = None
) -> None:
    assert status == expected_status, (status, payload)
    assert ctype == "application/json", ctype
    assert isinstance(payload, dict) and isinstance(payload.get("error"), dict), payload
    err = payload["error"]
    assert set(err) == {"code", "field", "message"}, err
    assert err["code"] and err["message"], err
    if code is not None:
        assert err["code"] == code, err


async def _still_serving(agg: Running) -> None:
    assert agg.alive(), "the aggregator process died"
    status, _, payload = await _request(agg, "GET", "/healthz", tally=False)
    assert status == 200 and payload == {"status": "ok"}


@pytest.mark.parametrize("depth", [1_000, 40_000, 100_000])
async def test_deeply_nested_json_is_a_coded_413_not_a_crash(agg: Running, depth: int) -> None:
    # depth is a limit (TOO_LARGE, as over gRPC), measured before parsing
    body = b"[" * depth + b"]" * depth
    _assert_coded(*await _request(agg, "POST", "/v1/proofs", body), 413, "TOO_LARGE")
    body = b'{"a":' * depth + b"1" + b"}" * depth
    _assert_coded(*await _request(agg, "POST", "/v1/proofs", body), 413, "TOO_LARGE")
    await _still_serving(agg)


async def test_invalid_utf8_body_is_a_coded_400(agg: Running) -> None:
    _assert_coded(*await _request(agg, "POST", "/v1/proofs", b'{"scheme": "\xff\xfe"}'), 400, "MALFORMED")
    await _still_serving(agg)


@pytest.mark.parametrize("domain", [True, False, 1.0, "1", [1], -1, 2**63, 10**30])
async def test_domain_id_must_be_a_real_integer_in_range(agg: Running, domain: Any) -> None:
    g = next(x for x in fixture_inputs() if x.name.startswith("snarkjs/"))
    body = {
        "scheme": g.scheme,
        "format": g.format,
        "proof": base64.b64encode(g.proof).decode(),
        "vk": base64.b64encode(g.vk).decode(),
        "public": base64.b64encode(g.public or b"").decode(),
        "domain_id": domain,
    }
    status, ctype, payload = await _request(agg, "POST", "/v1/proofs", json.dumps(body).encode())
    _assert_coded(status, ctype, payload, 400, "MALFORMED")
    # floats are refused by the strict body parser before any field is read
    assert payload["error"]["field"] == ("body" if isinstance(domain, float) else "domain_id")


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/aggregations/{10**30}/1",
        f"/v1/aggregations/{2**63}/1",
        f"/v1/aggregations/1/{2**64 - 1}",
        "/v1/aggregations/-1/1",
        "/v1/aggregations/x/1",
    ],
)
async def test_out_of_range_path_numbers_are_coded_4xx(agg: Running, path: str) -> None:
    status, ctype, payload = await _request(agg, "GET", path)
    assert status in (400, 404), (status, payload)
    _assert_coded(status, ctype, payload, status)


async def test_unknown_routes_and_wrong_methods_answer_json(agg: Running) -> None:
    _assert_coded(*await _request(agg, "GET", "/v1/nope"), 404, "NOT_FOUND")
    _assert_coded(*await _request(agg, "DELETE", "/v1/proofs"), 405, "METHOD_NOT_ALLOWED")
    # GET /v1/proofs lists proofs (issue 16)
    _assert_coded(*await _request(agg, "PUT", "/v1/proofs"), 405, "METHOD_NOT_ALLOWED")


@pytest.mark.parametrize(("domain", "agg_id"), [(2**63, 1), (1, 2**64 - 1), (2**64 - 1, 2**64 - 1)])
async def test_grpc_get_aggregation_with_huge_ids_is_coded(agg: Running, domain: int, agg_id: int) -> None:
    async with grpc.aio.insecure_channel(agg.grpc) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as ei:
            await pbg.AggregatorStub(ch).GetAggregation(
                pb.GetAggregationRequest(domain_id=domain, aggregation_id=agg_id)
            )
    assert ei.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), ei.value
    md = dict(ei.value.trailing_metadata() or ())
    TALLY["grpc", ei.value.code().name, str(md.get("sheaf-error-code") or "(uncoded)")] += 1
    assert md.get("sheaf-error-code"), md


_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=20),
)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        k: _json
        for k in ("scheme", "format", "proof", "vk", "vk_hash", "public", "settings", "domain_id", "auth")
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(_fields, _json))
async def test_fuzzed_bodies_get_coded_4xx(agg: Running, body: Any) -> None:
    status, ctype, payload = await _request(agg, "POST", "/v1/proofs", json.dumps(body).encode())
    assert 400 <= status < 500, (status, body, payload)
    _assert_coded(status, ctype, payload, status)
    assert agg.alive()


async def test_zz_corpus_tally(agg: Running) -> None:
    """Runs last (file order): what the whole corpus above got, and the process still up."""
    await _still_serving(agg)
    answers = {k: v for k, v in TALLY.items() if v > 0}
    assert answers, "the corpus did not run"
    assert all(code != "(uncoded)" and not status.startswith("5") for _, status, code in answers), answers
    out = os.environ.get("SHEAF_CORPUS_REPORT")
    if out:
        rows = [
            {"interface": i, "status": s, "code": c, "count": n} for (i, s, c), n in sorted(answers.items())
        ]
        with open(out, "w") as f:
            json.dump(
                {"requests": sum(answers.values()), "answers": rows, "process_alive": agg.alive()},
                f,
                indent=1,
            )
