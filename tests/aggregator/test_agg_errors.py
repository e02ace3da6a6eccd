"""One status table for both front ends: the same error, reached over real gRPC and real HTTP
(loopback, real SQLite, a real Normalizer; no chain needed), gets the statuses sheaf.errors gives
its code, and the code and field travel unchanged."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from agg_helpers import SRS, fixture_inputs

from aggregator.admission import ProofVerifier
from aggregator.client import AggregatorError, AsyncClient
from aggregator.config import Config
from aggregator.http import HttpApi
from aggregator.records import ChainInfo
from aggregator.server import GrpcServer
from aggregator.service import Service
from aggregator.store import SqliteStore
from normalizers.api import Normalizer
from sheaf import errors
from sheaf.errors import Status


@dataclass
class Front:
    service: Service
    grpc_target: str
    http_base: str


@pytest.fixture
async def front(tmp_path: Path) -> AsyncIterator[Front]:
    cfg = Config(db_path=str(tmp_path / "agg.db"), grpc_listen="127.0.0.1:0", domains=[1], default_domain=1)
    verifier = ProofVerifier(Normalizer(srs=SRS))
    svc = Service(cfg, SqliteStore(cfg.db_path), verifier, ChainInfo(31337, "0x" + "00" * 20))
    svc.start()
    srv = GrpcServer(svc, cfg.grpc_listen)
    await srv.start()
    http = HttpApi(
        svc.ingest,
        svc.reads,
        svc.chain,
        svc.metrics,
        lambda: {"accepting": svc.ingest.accepting},
        max_message_bytes=cfg.max_message_bytes,
    )
    await http.start("127.0.0.1:0")
    try:
        yield Front(svc, f"127.0.0.1:{srv.port}", f"http://127.0.0.1:{http.port}")
    finally:
        await srv.stop(1.0)
        await http.stop()
        await svc.stop()
        await verifier.close()


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


async def _to_thread_http(method: str, url: str, body: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
    """urllib blocks: run it off the loop so the in-process server can answer."""
    return await asyncio.to_thread(_http, method, url, body)


def _b64(b: bytes | None) -> str | None:
    return None if b is None else base64.b64encode(b).decode()


async def _both(
    f: Front, grpc_call: Any, http_method: str, http_path: str, body: dict[str, Any] | None = None
) -> tuple[AggregatorError, tuple[int, dict[str, Any]]]:
    async with AsyncClient(f.grpc_target) as c:
        with pytest.raises(AggregatorError) as ei:
            await grpc_call(c)
    got = await _to_thread_http(http_method, f.http_base + http_path, body)
    return ei.value, got


def _good() -> Any:
    return next(x for x in fixture_inputs() if x.name == "snarkjs/mul1_groth16/0")


# (case, expected code, expected field, the table's status for it)
CASES = [
    ("unknown proof", "UNKNOWN_PROOF", "proof_id", errors.NOT_FOUND),
    ("unknown aggregation", "UNKNOWN_AGGREGATION", "aggregation_id", errors.NOT_FOUND),
    ("missing vk", "MISSING_VK", "vk", errors.INVALID_ARGUMENT),
    ("unknown vk hash", "UNKNOWN_VK", "vk_hash", errors.NOT_FOUND),
    ("bad vk hash", "BAD_VK_HASH", "vk_hash", errors.INVALID_ARGUMENT),
    ("normalizer size limit", "TOO_LARGE", "proof", errors.TOO_LARGE),
    ("normalizer rejection", "MALFORMED", "proof", errors.INVALID_ARGUMENT),
]


@pytest.mark.parametrize(("case", "code", "field", "want"), CASES, ids=[c[0] for c in CASES])
async def test_same_error_same_statuses_over_grpc_and_http(
    front: Front, case: str, code: str, field: str, want: Status
) -> None:
    g = _good()
    submit: dict[str, Any] = {
        "scheme": g.scheme,
        "format": g.format,
        "public": _b64(g.public),
        "domain_id": 1,
    }
    if case == "unknown proof":
        pid = "1-" + "00" * 32
        e, (hs, hb) = await _both(front, lambda c: c.status(pid), "GET", f"/v1/proofs/{pid}")
    elif case == "unknown aggregation":
        e, (hs, hb) = await _both(front, lambda c: c.aggregation(1, 5), "GET", "/v1/aggregations/1/5")
    else:
        proof, vk, vk_hash = g.proof, None, None
        if case == "unknown vk hash":
            vk_hash = b"\x42" * 32
        elif case == "bad vk hash":
            vk_hash = b"\x42" * 3
        elif case != "missing vk":
            vk = g.vk
            proof = b" " * (2 << 20) if case == "normalizer size limit" else b"{"
        body = dict(submit, proof=_b64(proof), vk=_b64(vk))
        if vk_hash is not None:
            body["vk_hash"] = "0x" + vk_hash.hex()

        def call(c: AsyncClient) -> Any:
            return c.submit(g.scheme, g.format, proof, vk=vk, vk_hash=vk_hash, public=g.public, domain_id=1)

        e, (hs, hb) = await _both(front, call, "POST", "/v1/proofs", body)
    assert (e.status.name, e.code, e.field) == (want.grpc, code, field)
    assert (hs, hb["error"]["code"], hb["error"]["field"]) == (want.http, code, field)
    # and it is the table's entry, not a transport's own idea
    assert errors.BY_CODE.get(code, want) == want


async def test_shutting_down_is_unavailable_on_both(front: Front) -> None:
    """A deliberate change (issue 12): SHUTTING_DOWN was RESOURCE_EXHAUSTED/413, now 503/UNAVAILABLE
    (retry elsewhere or later; nothing is wrong with the request)."""
    g = _good()
    front.service.ingest.accepting = False
    body = {"scheme": g.scheme, "format": g.format, "proof": _b64(g.proof), "vk": _b64(g.vk)}
    body["public"] = _b64(g.public)
    e, (hs, hb) = await _both(
        front,
        lambda c: c.submit(g.scheme, g.format, g.proof, vk=g.vk, public=g.public),
        "POST",
        "/v1/proofs",
        body,
    )
    assert (e.status, e.code, e.field) == (grpc.StatusCode.UNAVAILABLE, "SHUTTING_DOWN", "service")
    assert (hs, hb["error"]["code"]) == (503, "SHUTTING_DOWN")
    assert front.service.metrics.counter_value("sheaf_rejections_total", code="SHUTTING_DOWN") == 2


async def test_http_only_input_errors_use_the_table(front: Front) -> None:
    hs, hb = await _to_thread_http("POST", front.http_base + "/v1/proofs", None)
    assert (hs, hb["error"]["code"], hb["error"]["field"]) == (400, "MALFORMED", "body")
    hs, hb = await _to_thread_http("GET", front.http_base + "/v1/aggregations/x/1", None)
    assert (hs, hb["error"]["code"]) == (400, "MALFORMED")
