"""Helpers for scheme modules that use the gnark sidecar (`ctx.sidecar()`): key-only decodes
(`<scheme>.parse_vk`) and strict reading of its responses. A response the sidecar should never
send is a bug on our side: INTERNAL, never the prover's fault.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from normalizers.errors import Code, NormalizeError
from normalizers.statement import BN254_R

if TYPE_CHECKING:
    from normalizers.base import Context


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def parse_vk(ctx: Context, scheme: str, vk: bytes) -> dict[str, Any]:
    """`<scheme>.parse_vk` on the sidecar: decode + validate a gnark vk alone (no proof)."""
    try:
        return ctx.sidecar().request(f"{scheme}.parse_vk", format="gnark", vk=b64(vk))
    except NormalizeError as e:
        if e.field == "op":  # older sidecar without the op
            raise NormalizeError(
                Code.UNSUPPORTED_FORMAT, "vk",
                f"this sheaf-gnark has no {scheme}.parse_vk: a gnark key is only hashed with a proof",
            ) from None  # fmt: skip
        raise


def hex_bytes(v: Any, field: str) -> bytes:
    """A hex string ("0x" optional) of a sidecar response; `field` names it in the error."""
    if not isinstance(v, str):
        raise NormalizeError(Code.INTERNAL, "sidecar", f"response field {field} is not a hex string")
    try:
        return bytes.fromhex(v.removeprefix("0x"))
    except ValueError:
        raise NormalizeError(Code.INTERNAL, "sidecar", f"response field {field} is not hex") from None


def scalar32(v: Any, field: str) -> bytes:
    """A canonical 32-byte scalar (< r) of a sidecar response."""
    b = hex_bytes(v, field)
    if len(b) != 32 or int.from_bytes(b, "big") >= BN254_R:
        raise NormalizeError(Code.INTERNAL, "sidecar", f"{field} is not a canonical 32-byte scalar")
    return b


def n_public(r: dict[str, Any], op: str) -> int:
    n = r.get("n_public")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise NormalizeError(Code.INTERNAL, "sidecar", f"{op} returned no n_public")
    return n


def item_result(x: Any) -> NormalizeError | None:
    """One entry of a batch response: None when it verified, else its coded error."""
    if isinstance(x, dict) and x.get("ok") is True:
        return None
    x = x if isinstance(x, dict) else {}
    code = str(x.get("code") or "VERIFICATION_FAILED")
    if code not in Code.__members__:
        code = "VERIFICATION_FAILED"
    return NormalizeError(
        code, str(x.get("field") or "proof"), str(x.get("message") or "verification failed")
    )
