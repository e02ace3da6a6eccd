"""The JSON form of a proof submission (docs/openapi.yaml `SubmitRequest`) -> `Submission`: one parser
for POST /v1/proofs (http.py) and each slice of POST /v1/inferences (inference_http.py). Strict: no
unknown field, base64 bytes, hex vk_hash, an integer domain id (a JSON `true` is not 1)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aggregator.records import Submission
from sheaf.errors import InvalidInput

SUBMIT_FIELDS = frozenset({"scheme", "format", "proof", "vk", "vk_hash", "public", "settings", "domain_id"})
MAX_ID = (1 << 63) - 1  # ids are SQLite INTEGERs (signed 64-bit)


def b64_field(body: dict[str, Any], name: str, required: bool = False, where: str = "") -> bytes | None:
    v = body.get(name)
    field = where + name
    if v is None:
        if required:
            raise InvalidInput("MALFORMED", field, f"{name} is required (base64)")
        return None
    if not isinstance(v, str):
        raise InvalidInput("MALFORMED", field, f"{name} must be a base64 string")
    try:
        return base64.b64decode(v, validate=True)
    except binascii.Error as e:
        raise InvalidInput("MALFORMED", field, f"{name} is not valid base64: {e}") from e


def submission_from_json(body: Any, source: str = "", where: str = "") -> Submission:
    """`where` prefixes the field of every error (e.g. "slices[2].")."""
    if not isinstance(body, dict):
        raise InvalidInput("MALFORMED", where.rstrip(".") or "body", "a submission must be a JSON object")
    unknown = sorted(body.keys() - SUBMIT_FIELDS)
    if unknown:
        raise InvalidInput("MALFORMED", where + unknown[0][:40], "unknown field (see docs/openapi.yaml)")
    vk_hash_hex = body.get("vk_hash")
    vk_hash = None
    if vk_hash_hex is not None:
        if not isinstance(vk_hash_hex, str):
            raise InvalidInput("MALFORMED", where + "vk_hash", "vk_hash must be a hex string")
        try:
            vk_hash = bytes.fromhex(vk_hash_hex.removeprefix("0x"))
        except ValueError as e:
            raise InvalidInput("MALFORMED", where + "vk_hash", "vk_hash must be hex") from e
    domain = body.get("domain_id", 0)
    # bool is an int subclass: `true` must not pass as domain 1
    if type(domain) is not int or not 0 <= domain <= MAX_ID:
        raise InvalidInput("MALFORMED", where + "domain_id", f"domain_id must be an integer in 0..{MAX_ID}")
    for name in ("scheme", "format"):
        if not isinstance(body.get(name), str):
            raise InvalidInput("MALFORMED", where + name, f"{name} is required (a string)")
    return Submission(
        scheme=body["scheme"],
        format=body["format"],
        proof=b64_field(body, "proof", True, where) or b"",
        vk=b64_field(body, "vk", where=where),
        vk_hash=vk_hash,
        public=b64_field(body, "public", where=where),
        settings=b64_field(body, "settings", where=where),
        domain_id=domain,
        source=source,
    )
