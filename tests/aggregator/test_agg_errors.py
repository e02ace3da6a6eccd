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


# -- request bodies: one pydantic model each (aggregator/http_submission.py, inference_http.py) ----


def _submit_body() -> dict[str, Any]:
    g = _good()
    return {
        "scheme": g.scheme,
        "format": g.format,
        "proof": _b64(g.proof),
        "vk": _b64(g.vk),
        "public": _b64(g.public),
    }


BODY_CASES = [
    # (path, change to a good body, field, message)
    ("/v1/proofs", {"colour": 1}, "colour", "unknown field (see docs/openapi.yaml)"),
    (
        "/v1/proofs",
        {"sheme": "groth16"},
        "sheme",
        "unknown field (see docs/openapi.yaml); did you mean scheme?",
    ),
    ("/v1/proofs", {"domain_id": "1"}, "domain_id", 'expected an integer in 0..9223372036854775807, got "1"'),
    (
        "/v1/proofs",
        {"domain_id": True},
        "domain_id",
        "expected an integer in 0..9223372036854775807, got true",
    ),
    ("/v1/proofs", {"vk_hash": 7}, "vk_hash", "not a 0x-hex string: 7"),
    ("/v1/proofs", {"vk_hash": "0xzz"}, "vk_hash", 'not a 0x-hex string: "0xzz"'),
    ("/v1/proofs", {"public": 3}, "public", "expected a base64 string, got 3"),
    ("/v1/proofs", {"scheme": None}, "scheme", "expected a string, got null"),
    ("/v1/vks", {"vk": ["AA=="]}, "vk", 'expected a base64 string, got ["AA=="]'),
    ("/v1/vks", {"settings": {}}, "settings", "expected a base64 string, got {}"),
]


@pytest.mark.parametrize(("path", "change", "field", "message"), BODY_CASES)
async def test_bad_bodies_are_malformed_naming_the_field(
    front: Front, path: str, change: dict[str, Any], field: str, message: str
) -> None:
    body = _submit_body()
    if path == "/v1/vks":
        body = {k: body[k] for k in ("scheme", "format", "vk")}
    hs, hb = await _to_thread_http("POST", front.http_base + path, {**body, **change})
    assert (hs, hb["error"]) == (400, {"code": "MALFORMED", "field": field, "message": message})


async def test_inference_and_model_bodies_name_the_nested_path(front: Front) -> None:
    sub = _submit_body()
    body = {"model_id": "0x" + "11" * 32, "slices": [sub, None, {**sub, "proof": 5}]}
    hs, hb = await _to_thread_http("POST", front.http_base + "/v1/inferences", body)
    assert (hs, hb["error"]["field"], hb["error"]["message"]) == (
        400,
        "slices[2].proof",
        "expected a base64 string, got 5",
    )
    hs, hb = await _to_thread_http("POST", front.http_base + "/v1/inferences", {**body, "model_id": "0x11"})
    assert (hs, hb["error"]["field"], hb["error"]["message"]) == (
        400,
        "model_id",
        "expected 32 bytes of 0x-hex, got 1",
    )
    spec = {
        "proven": True,
        "scheme": 1,
        "vk_hash": "0x" + "22" * 32,
        "public_input_count": 2,
        "in_commit_index": 0,
        "out_commit_index": 1,
        "output_indices": [1, "2"],
    }
    hs, hb = await _to_thread_http("POST", front.http_base + "/v1/models", {"slices": [spec]})
    assert (hs, hb["error"]["code"], hb["error"]["field"], hb["error"]["message"]) == (
        400,
        "MALFORMED",
        "slices[0].output_indices[1]",
        'expected an integer, got "2"',
    )
    # nothing was stored by the refused requests
    hs, hb = await _to_thread_http("GET", front.http_base + "/v1/proofs", None)
    assert (hs, hb["proofs"]) == (200, [])


def _spec_schema(node: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node or "allOf" in node:
        node = (
            spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
            if "$ref" in node
            else node["allOf"][0]
        )
    return node


def _model_type(prop: dict[str, Any]) -> str:
    """A model property's JSON type, null left out of an optional one."""
    types = [p.get("type") for p in prop.get("anyOf", [prop])]
    return next(str(t) for t in types if t != "null")


def test_openapi_request_schemas_match_the_models() -> None:
    """docs/openapi.yaml's request bodies name the models' fields: the same properties, the same
    required ones, the same JSON types, and no other field allowed (the models refuse extras)."""
    import yaml

    from aggregator.http_submission import SubmitRequest, VkRequest
    from aggregator.inference_http import InferenceRequest, ModelRequest, SliceSpecBody
    from sheaf.inference import SliceSpec

    spec = yaml.safe_load((Path(__file__).parents[2] / "docs" / "openapi.yaml").read_text())

    def body(path: str) -> dict[str, Any]:
        return spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]  # type: ignore[no-any-return]

    pairs = [
        (body("/v1/proofs"), SubmitRequest),
        (body("/v1/vks"), VkRequest),
        (body("/v1/models"), ModelRequest),
        (body("/v1/inferences"), InferenceRequest),
        ({"$ref": "#/components/schemas/SliceSpec"}, SliceSpecBody),
    ]
    for node, model in pairs:
        documented, mine = _spec_schema(node, spec), model.model_json_schema()
        assert documented.get("additionalProperties") is False, model.__name__
        assert set(documented["properties"]) == set(mine["properties"]), model.__name__
        assert set(documented.get("required", [])) == set(mine.get("required", [])), model.__name__
        for name, prop in documented["properties"].items():
            assert _spec_schema(prop, spec)["type"] == _model_type(mine["properties"][name]), (
                model.__name__,
                name,
            )
    # the SliceSpec body is sheaf.inference.SliceSpec's JSON form
    assert set(SliceSpecBody.model_fields) == set(SliceSpec.unproven().to_json())
