"""Strict decoding of snarkjs JSON values, shared by the Groth16 and PLONK modules: canonical
decimal strings, exact-key objects, fixed-length lists, affine BN254 points and public.json.

Every function raises NormalizeError naming the offending `field`; nothing here is scheme-specific.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from normalizers import bn254
from normalizers.errors import Code, NormalizeError
from normalizers.jsonstrict import loads
from normalizers.limits import check_count
from normalizers.statement import BN254_P, BN254_R

if TYPE_CHECKING:
    from normalizers.base import Context

G1_LEN = 64
G2_LEN = 128

_DEC = re.compile(r"0|[1-9][0-9]{0,77}")


def dec(v: Any, field: str, modulus: int) -> int:
    """A snarkjs decimal string: digits only, no sign/leading zeros/whitespace, value < modulus."""
    if not isinstance(v, str):
        raise NormalizeError(Code.MALFORMED, field, f"expected a decimal string, got {type(v).__name__}")
    if not _DEC.fullmatch(v):
        raise NormalizeError(
            Code.MALFORMED, field, "expected a canonical decimal string (digits, no leading zeros)"
        )
    n = int(v)
    if n >= modulus:
        what = "base field p" if modulus == BN254_P else "scalar field r"
        raise NormalizeError(Code.NON_CANONICAL_SCALAR, field, f"value is not reduced modulo the {what}")
    return n


def array(v: Any, field: str, n: int) -> list[Any]:
    """A JSON list of exactly `n` elements."""
    if not isinstance(v, list):
        raise NormalizeError(Code.MALFORMED, field, f"expected a list, got {type(v).__name__}")
    if len(v) != n:
        raise NormalizeError(Code.MALFORMED, field, f"expected {n} elements, got {len(v)}")
    return v


def obj(v: Any, field: str, keys: frozenset[str], optional: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A JSON object with exactly `keys` (those in `optional` may be absent)."""
    if not isinstance(v, dict):
        raise NormalizeError(Code.MALFORMED, field, f"expected a JSON object, got {type(v).__name__}")
    missing = sorted(keys - optional - v.keys())
    if missing:
        raise NormalizeError(Code.MALFORMED, f"{field}.{missing[0]}", "missing field")
    extra = sorted(v.keys() - keys)
    if extra:
        raise NormalizeError(Code.MALFORMED, f"{field}.{extra[0][:40]}", "unexpected field")
    return v


def snarkjs_g1(v: Any, field: str, allow_infinity: bool = False) -> bytes:
    """An affine G1 point ["x","y","1"] (infinity ["0","1","0"]) -> x | y, 64 bytes BE (zeros = O)."""
    x_, y_, z_ = array(v, field, 3)
    x, y, z = (
        dec(x_, f"{field}[0]", BN254_P),
        dec(y_, f"{field}[1]", BN254_P),
        dec(z_, f"{field}[2]", BN254_P),
    )
    if z == 0:
        if not allow_infinity:
            raise NormalizeError(Code.POINT_AT_INFINITY, field, "the point at infinity is not allowed here")
        if (x, y) != (0, 1):
            raise NormalizeError(Code.INVALID_POINT, field, 'infinity must be written ["0","1","0"]')
        return bytes(G1_LEN)
    if z != 1:
        raise NormalizeError(Code.MALFORMED, f"{field}[2]", 'projective z must be "1" (affine)')
    if not bn254.g1_on_curve(x, y):
        raise NormalizeError(Code.INVALID_POINT, field, "not on the BN254 G1 curve")
    return x.to_bytes(32, "big") + y.to_bytes(32, "big")


def snarkjs_g2(v: Any, field: str, subgroup: bool) -> bytes:
    """An affine G2 point -> x.c1 | x.c0 | y.c1 | y.c0 (EIP-197 order), 128 bytes BE."""
    xs, ys, zs = array(v, field, 3)
    x = tuple(dec(c, f"{field}[0][{i}]", BN254_P) for i, c in enumerate(array(xs, f"{field}[0]", 2)))
    y = tuple(dec(c, f"{field}[1][{i}]", BN254_P) for i, c in enumerate(array(ys, f"{field}[1]", 2)))
    z = tuple(dec(c, f"{field}[2][{i}]", BN254_P) for i, c in enumerate(array(zs, f"{field}[2]", 2)))
    if z == (0, 0):
        raise NormalizeError(Code.POINT_AT_INFINITY, field, "the point at infinity is not allowed here")
    if z != (1, 0):
        raise NormalizeError(Code.MALFORMED, f"{field}[2]", 'projective z must be ["1","0"] (affine)')
    xf: bn254.Fp2 = (x[0], x[1])
    yf: bn254.Fp2 = (y[0], y[1])
    if not bn254.g2_on_curve(xf, yf):
        raise NormalizeError(Code.INVALID_POINT, field, "not on the BN254 G2 twist")
    if subgroup and not bn254.g2_in_subgroup(xf, yf):
        raise NormalizeError(Code.NOT_IN_SUBGROUP, field, "G2 point is on the twist but not in the r-torsion")
    # snarkjs lists c0 first; the canonical (EVM/gnark) order is c1 first
    return b"".join(c.to_bytes(32, "big") for c in (x[1], x[0], y[1], y[0]))


def snarkjs_public(data: bytes, field: str, ctx: Context) -> tuple[bytes, ...]:
    """public.json: a list of decimal scalars < r -> 32-byte big-endian public inputs."""
    v = loads(field, data, ctx.limits)
    if not isinstance(v, list):
        raise NormalizeError(
            Code.MALFORMED, field, f"expected a JSON list of decimal strings, got {type(v).__name__}"
        )
    check_count(field, len(v), ctx.limits.max_public_inputs)
    return tuple(dec(x, f"{field}[{i}]", BN254_R).to_bytes(32, "big") for i, x in enumerate(v))
