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

from aggregator.http_submission import MAX_ID, submission_from_json
from aggregator.inference import Inferences
from aggregator.reads import kind_name
from aggregator.records import ChainInfo
from normalizers.jsonstrict import loads as strict_json
from normalizers.limits import Limits
from sheaf import inference as spec
from sheaf.errors import InvalidInput

_SPEC_KEYS = frozenset(spec.SliceSpec.unproven().to_json())


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _model_id(raw: str) -> bytes:
    try:
        b = bytes.fromhex(raw.removeprefix("0x"))
    except ValueError as e:
        raise InvalidInput("MALFORMED", "model_id", "model_id must be 32 bytes of hex") from e
    if len(b) != 32:
        raise InvalidInput("MALFORMED", "model_id", "model_id must be 32 bytes of hex")
    return b


def _slice(i: int, d: Any) -> spec.SliceSpec:
    if not isinstance(d, dict) or set(d) != _SPEC_KEYS:
        raise InvalidInput(
            "MALFORMED", f"slices[{i}]", f"a slice is an object with exactly {sorted(_SPEC_KEYS)}"
        )
    ints = [d[k] for k in _SPEC_KEYS - {"proven", "vk_hash", "output_indices"}]
    outs = d["output_indices"]
    if (
        type(d["proven"]) is not bool
        or not isinstance(d["vk_hash"], str)
        or not isinstance(outs, list)
        or any(type(x) is not int for x in [*ints, *outs])
    ):
        raise InvalidInput("MALFORMED", f"slices[{i}]", "proven: bool, vk_hash: 0x-hex, the rest integers")
    try:
        return spec.SliceSpec.from_json(d)
    except ValueError as e:
        raise InvalidInput("MALFORMED", f"slices[{i}].vk_hash", "vk_hash must be hex") from e


def register(app: web.Application, inferences: Inferences, chain: ChainInfo, max_body: int) -> None:
    limits = Limits(max_json_depth=4, max_json_string_len=max_body)

    async def post_model(request: web.Request) -> web.Response:
        body = strict_json("body", await request.read(), limits)
        if not isinstance(body, dict) or set(body) != {"slices"} or not isinstance(body["slices"], list):
            raise InvalidInput("MALFORMED", "body", 'body must be {"slices": [...]}')
        if len(body["slices"]) > spec.MAX_SLICES:
            raise InvalidInput("TOO_MANY_SLICES", "slices", f"at most {spec.MAX_SLICES} slices")
        slices = [_slice(i, d) for i, d in enumerate(body["slices"])]
        mid, dup = await inferences.register_model(slices)
        return web.json_response({"model_id": _hex(mid), "duplicate": dup})

    async def get_model(request: web.Request) -> web.Response:
        mid = _model_id(request.match_info["model_id"])
        slices = await inferences.model(mid)
        return web.json_response({"model_id": _hex(mid), "slices": [s.to_json() for s in slices]})

    async def post_inference(request: web.Request) -> web.Response:
        body = strict_json("body", await request.read(), limits)
        if not isinstance(body, dict) or not isinstance(body.get("slices"), list):
            raise InvalidInput("MALFORMED", "body", 'body must be {"model_id", "slices": [...], ...}')
        unknown = sorted(body.keys() - {"model_id", "domain_id", "required_kind", "slices"})
        if unknown:
            raise InvalidInput("MALFORMED", unknown[0][:40], "unknown field (see docs/openapi.yaml)")
        mid = body.get("model_id")
        if not isinstance(mid, str):
            raise InvalidInput("MALFORMED", "model_id", "model_id must be 32 bytes of hex")
        domain, kind = body.get("domain_id", 0), body.get("required_kind", 0)
        if type(domain) is not int or not 0 <= domain <= MAX_ID:
            raise InvalidInput("MALFORMED", "domain_id", f"domain_id must be an integer in 0..{MAX_ID}")
        if type(kind) is not int:
            raise InvalidInput("MALFORMED", "required_kind", "required_kind must be 0, 1 or 2")
        if len(body["slices"]) > spec.MAX_SLICES:
            raise InvalidInput("SLICE_COUNT_MISMATCH", "slices", f"at most {spec.MAX_SLICES} slices")
        src = request.remote or ""
        slices = [
            None if d is None else submission_from_json(d, src, f"slices[{i}].")
            for i, d in enumerate(body["slices"])
        ]
        a = await inferences.submit(_model_id(mid), domain, kind, slices)
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
