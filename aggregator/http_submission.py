"""The JSON request bodies of the HTTP API (docs/openapi.yaml) as pydantic models, one per body:
`SubmitRequest` (POST /v1/proofs, and each slice of POST /v1/inferences), `VkRequest` (POST /v1/vks).
Strict: no unknown field, no str->int coercion (a JSON `true` is not domain 1), base64 bytes, hex
hashes. A body is parsed first by the bounded strict parser (normalizers.jsonstrict: depth, size,
duplicate keys) and only then validated here; `parse_body` turns a refusal into MALFORMED naming the
field's path (`slices[2].proof`) and what it expects."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from aggregator.records import Submission
from aggregator.validation import first_error, shown
from sheaf.errors import InvalidInput

MAX_ID = (1 << 63) - 1  # ids are SQLite INTEGERs (signed 64-bit)
UNKNOWN_FIELD = "unknown field (see docs/openapi.yaml)"
BODY = ConfigDict(extra="forbid", frozen=True, strict=True)
M = TypeVar("M", bound=BaseModel)


def _base64(v: object) -> bytes:
    if not isinstance(v, str):
        raise ValueError(f"expected a base64 string, got {shown(v)}")
    try:
        return base64.b64decode(v, validate=True)
    except binascii.Error as e:
        raise ValueError(f"not valid base64: {e}") from None


def hex_bytes(v: object) -> bytes:
    """The one hex rule of the HTTP bodies (vk_hash, model_id, a slice's vk_hash): a string of hex
    digits, "0x" optional; the length is the caller's rule (e.g. BAD_VK_HASH at ingest)."""
    if not isinstance(v, str):
        raise ValueError(f"not a 0x-hex string: {shown(v)}")
    try:
        return bytes.fromhex(v.removeprefix("0x"))
    except ValueError:
        raise ValueError(f"not a 0x-hex string: {shown(v)}") from None


def hash32_bytes(v: object) -> bytes:
    """hex_bytes of exactly 32 bytes (a model id)."""
    b = hex_bytes(v)
    if len(b) != 32:
        raise ValueError(f"expected 32 bytes of 0x-hex, got {len(b)}")
    return b


# bytes in the model, a string in JSON: the validators run before pydantic's (strict) bytes check
Base64 = Annotated[bytes, BeforeValidator(_base64), Field(description="a base64 string")]
Hex = Annotated[bytes, BeforeValidator(hex_bytes), Field(description="a 0x-hex string")]
Hash32 = Annotated[bytes, BeforeValidator(hash32_bytes), Field(description="32 bytes of 0x-hex")]
DomainId = Annotated[int, Field(ge=0, le=MAX_ID)]


class SubmitRequest(BaseModel):
    """docs/openapi.yaml `SubmitRequest`. Exactly one of vk / vk_hash is expected (ingest checks)."""

    model_config = BODY

    scheme: str
    format: str
    proof: Base64
    vk: Base64 | None = None
    vk_hash: Hex | None = None
    public: Base64 | None = None
    settings: Base64 | None = None
    domain_id: DomainId = 0  # 0: the aggregator's default domain

    def submission(self, source: str = "") -> Submission:
        return Submission(
            scheme=self.scheme,
            format=self.format,
            proof=self.proof,
            vk=self.vk,
            vk_hash=self.vk_hash,
            public=self.public,
            settings=self.settings,
            domain_id=self.domain_id,
            source=source,
        )


class VkRequest(BaseModel):
    """docs/openapi.yaml `VkRequest` (POST /v1/vks)."""

    model_config = BODY

    scheme: str
    format: str
    vk: Base64
    settings: Base64 | None = None


def parse_body(model: type[M], body: Any, where: str = "") -> M:
    """`body` (already parsed JSON) as `model`, or InvalidInput MALFORMED naming the field path
    (prefixed with `where`, e.g. "slices[2].") and what it expects."""
    if not isinstance(body, dict):
        raise InvalidInput("MALFORMED", where.rstrip(".") or "body", "expected a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as e:
        path, message = first_error(e, model, UNKNOWN_FIELD)
        raise InvalidInput("MALFORMED", where + path, message) from None


def submission_from_json(body: Any, source: str = "", where: str = "") -> Submission:
    """`where` prefixes the field of every error (e.g. "slices[2].")."""
    return parse_body(SubmitRequest, body, where).submission(source)
