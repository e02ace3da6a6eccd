"""HTTP routes of whole inferences (docs/inference.md, docs/openapi.yaml): thin, like http.py.

    POST /v1/models                          {"slices": [SliceSpec JSON]} -> {"model_id", "duplicate"}
    GET  /v1/models/{model_id}               -> {"model_id", "slices"}
    POST /v1/inferences                      {"model_id", "domain_id"?, "required_kind"?, "slices": [
                                             submission JSON (as POST /v1/proofs) | null, ...]}
                                             -> {"inference_id", "inference_hash", "duplicate", "status",
                                                 "proof_ids"}
    GET  /v1/inferences/{inference_id}       -> the inference's status and its slices' statuses
    GET  /v1/inferences/{inference_id}/receipt -> verifyInference's `proofs`, output, input commitment

SliceSpec JSON is the form of tests/vectors/model_id.json (sheaf.inference.SliceSpec.to_json).
Errors are the middleware's {"error": {code, field, message}}.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from aggregator.http_submission import BODY, DomainId, Hash32, Hex, SubmitRequest, hash32_bytes, parse_body
from aggregator.inference import Inferences
from aggregator.reads import kind_name
from aggregator.records import ChainInfo
from normalizers.jsonstrict import loads as strict_json
from normalizers.limits import Limits
from sheaf import inference as spec
from sheaf.errors import InvalidInput


class SliceSpecBody(BaseModel):
    """docs/openapi.yaml `SliceSpec`: sheaf.inference.SliceSpec.to_json's form (every key required;
    the contract's own rules, e.g. INVALID_SCHEME, are checked at registration)."""

    model_config = BODY

    proven: bool
    scheme: int
    vk_hash: Hex
    public_input_count: int
    in_commit_index: int
    out_commit_index: int
    output_indices: list[int]

    def to_spec(self) -> spec.SliceSpec:
        return spec.SliceSpec(
            proven=self.proven,
            scheme=self.scheme,
            vk_hash=self.vk_hash,
            public_input_count=self.public_input_count,
            in_commit_index=self.in_commit_index,
            out_commit_index=self.out_commit_index,
            output_indices=tuple(self.output_indices),
        )


class ModelRequest(BaseModel):
    """POST /v1/models."""

    model_config = BODY

    slices: list[SliceSpecBody]


class InferenceRequest(BaseModel):
    """POST /v1/inferences: one submission (as POST /v1/proofs) per slice, null for an unproven one."""

    model_config = BODY

    model_id: Hash32
    domain_id: DomainId = 0  # 0: the aggregator's default domain
    required_kind: int = 0  # 0 any, 1 RECURSIVE, 2 ATTESTED (range: Inferences.submit, its own code)
    slices: list[SubmitRequest | None]


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _model_id(raw: str) -> bytes:
    try:
        return hash32_bytes(raw)
    except ValueError as e:
        raise InvalidInput("MALFORMED", "model_id", str(e)) from None


def _slice_count(body: Any, code: str) -> None:
    """Too many slices is its own code, checked before any slice is validated."""
    slices = body.get("slices") if isinstance(body, dict) else None
    if isinstance(slices, list) and len(slices) > spec.MAX_SLICES:
        raise InvalidInput(code, "slices", f"at most {spec.MAX_SLICES} slices")


def register(app: web.Application, inferences: Inferences, chain: ChainInfo, max_body: int) -> None:
    limits = Limits(max_json_depth=4, max_json_string_len=max_body)

    async def post_model(request: web.Request) -> web.Response:
        raw = strict_json("body", await request.read(), limits)
        _slice_count(raw, "TOO_MANY_SLICES")
        body = parse_body(ModelRequest, raw)
        mid, dup = await inferences.register_model([s.to_spec() for s in body.slices])
        return web.json_response({"model_id": _hex(mid), "duplicate": dup})

    async def get_model(request: web.Request) -> web.Response:
        mid = _model_id(request.match_info["model_id"])
        slices = await inferences.model(mid)
        return web.json_response({"model_id": _hex(mid), "slices": [s.to_json() for s in slices]})

    async def post_inference(request: web.Request) -> web.Response:
        raw = strict_json("body", await request.read(), limits)
        _slice_count(raw, "SLICE_COUNT_MISMATCH")
        body = parse_body(InferenceRequest, raw)
        src = request.remote or ""
        slices = [None if s is None else s.submission(src) for s in body.slices]
        a = await inferences.submit(body.model_id, body.domain_id, body.required_kind, slices)
        return web.json_response(
            {
                "inference_id": a.inference_id,
                "inference_hash": _hex(a.inference_hash),
                "duplicate": a.duplicate,
                "status": a.status.name,
                "proof_ids": list(a.proof_ids),
            }
        )

    async def get_inference(request: web.Request) -> web.Response:
        v = await inferences.status(request.match_info["inference_id"])
        r = v.record
        return web.json_response(
            {
                "inference_id": r.inference_id,
                "model_id": _hex(r.model_id),
                "domain_id": r.domain_id,
                "inference_hash": _hex(r.inference_hash),
                "status": v.status.name,
                "slices": [
                    None
                    if row is None
                    else {"proof_id": row.proof_id, "status": row.status.name, "reason_code": row.reason_code}
                    for row in v.slices
                ],
            }
        )

    async def get_receipt(request: web.Request) -> web.Response:
        rc = await inferences.receipt(request.match_info["inference_id"])
        res = rc.result
        slices: list[dict[str, Any]] = []
        for p, inc in zip(rc.proofs, rc.inclusions, strict=True):
            if inc is None:
                slices.append({"proven": False})
                continue
            slices.append(
                {
                    "proven": True,
                    "proof_id": inc.proof_id,
                    "public_inputs": [hex(v) for v in p.public_inputs],
                    "aggregation_id": inc.aggregation_id,
                    "merkle_path": [_hex(x) for x in inc.path],
                    "leaf_count": inc.leaf_count,
                    "index": inc.index,
                    "kind": kind_name(inc.kind),
                    "statement_hash": _hex(inc.leaf),
                    "root": _hex(inc.root),
                    "tx_hash": _hex(inc.tx_hash),
                    "block_number": inc.block_number,
                }
            )
        return web.json_response(
            {
                "inference_id": rc.record.inference_id,
                "model_id": _hex(rc.record.model_id),
                "domain_id": rc.record.domain_id,
                "inference_hash": _hex(res.inference_hash),
                "slices": slices,
                "output": [hex(v) for v in res.output],
                "output_slice": res.output_slice,
                "input_commitment": hex(res.segments[0].in_commit),
                "registry": chain.registry,
                "chain_id": chain.chain_id,
            }
        )

    app.add_routes(
        [
            web.post("/v1/models", post_model),
            web.get("/v1/models/{model_id}", get_model),
            web.post("/v1/inferences", post_inference),
            web.get("/v1/inferences/{inference_id}", get_inference),
            web.get("/v1/inferences/{inference_id}/receipt", get_receipt),
        ]
    )
