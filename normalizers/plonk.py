"""PLONK over BN254: gnark binary and snarkjs JSON, both decoded and verified by the sidecar's
`plonk.normalize` (gnark's verifier for gnark proofs; a port of snarkjs's verifier for snarkjs
proofs, whose transcript differs). Canonical encodings are defined in docs/sidecar.md and
docs/envelope.md; Python only checks sizes, JSON shape limits and the response.
"""

from __future__ import annotations

from typing import Any, ClassVar

from normalizers.base import Context, ParsedVk, Pending, Statement
from normalizers.errors import Code, NormalizeError
from normalizers.jsonstrict import loads
from normalizers.limits import check_count
from normalizers.sidecar_ops import b64, hex_bytes, n_public, scalar32
from normalizers.sidecar_ops import parse_vk as sidecar_parse_vk
from normalizers.snarkjs_json import dec, obj, snarkjs_g1, snarkjs_g2
from normalizers.statement import BN254_R, Scheme

SNARKJS_VK_KEYS = frozenset(
    {
        "protocol",
        "curve",
        "nPublic",
        "power",
        "k1",
        "k2",
        "Qm",
        "Ql",
        "Qr",
        "Qo",
        "Qc",
        "S1",
        "S2",
        "S3",
        "X_2",
        "w",
    }
)
# ffjavascript's 2^28-th root of unity of BN254 Fr; snarkjs's w for a domain 2^power is w28^(2^(28-power))
_W28 = 19103219067921713944291392827692070036145651957329286315305642004821462161904
_SELECTORS = ("Qm", "Ql", "Qr", "Qo", "Qc", "S1", "S2", "S3")


def snarkjs_canonical_vk(data: bytes, ctx: Context, field: str = "vk") -> tuple[bytes, int]:
    """The canonical snarkjs PLONK vk of docs/sidecar.md (tag 0x02), strictly parsed in Python:
    lets `validate_vk` register snarkjs PLONK keys without a proof. The sidecar stays the authority
    at normalize time (it re-derives the same bytes; the tests check they agree)."""
    v = obj(loads(field, data, ctx.limits), field, SNARKJS_VK_KEYS)
    if v["protocol"] != "plonk":
        raise NormalizeError(
            Code.UNSUPPORTED_FORMAT, f"{field}.protocol", f'expected "plonk", got {v["protocol"]!r:.40}'
        )
    if v["curve"] != "bn128":
        raise NormalizeError(
            Code.UNSUPPORTED_FORMAT, f"{field}.curve", f'expected "bn128", got {v["curve"]!r:.40}'
        )
    for k in ("nPublic", "power"):
        if not isinstance(v[k], int) or isinstance(v[k], bool) or v[k] < 0:
            raise NormalizeError(Code.MALFORMED, f"{field}.{k}", "expected a non-negative integer")
    n_pub, power = v["nPublic"], v["power"]
    check_count(f"{field}.nPublic", n_pub, ctx.limits.max_public_inputs)
    if not 1 <= power <= 28:
        raise NormalizeError(Code.MALFORMED, f"{field}.power", "expected 1..28")
    w = dec(v["w"], f"{field}.w", BN254_R)
    if w != pow(_W28, 1 << (28 - power), BN254_R):
        raise NormalizeError(Code.MALFORMED, f"{field}.w", "not the 2^power-th root of unity snarkjs uses")
    parts = [
        b"\x02",
        n_pub.to_bytes(4, "big"),
        power.to_bytes(4, "big"),
        dec(v["k1"], f"{field}.k1", BN254_R).to_bytes(32, "big"),
        dec(v["k2"], f"{field}.k2", BN254_R).to_bytes(32, "big"),
        *(snarkjs_g1(v[k], f"{field}.{k}", allow_infinity=True) for k in _SELECTORS),
        snarkjs_g2(v["X_2"], f"{field}.X_2", subgroup=True),
    ]
    return b"".join(parts), n_pub


class PlonkVerifier:
    """PLONK behind the `SchemeVerifier` interface. Every proof is decoded and verified by its own
    `plonk.normalize` request, put in flight at submit (the sidecar works on many at once), so a
    batch holds no state: the verifier is its own `Batch`."""

    scheme: ClassVar[Scheme] = Scheme.PLONK

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def validate_vk(self, fmt: str, vk: bytes, settings: bytes | None) -> ParsedVk:
        """snarkjs: the Python parser (no sidecar); gnark: the sidecar's `plonk.parse_vk`. Both
        give the canonical bytes `plonk.normalize` returns (the tests check they agree)."""
        if fmt == "snarkjs":
            return self.ctx.cached_vk(self.scheme, fmt, vk, None, lambda: self._snarkjs_vk(vk))
        if fmt == "gnark":
            return self.ctx.cached_vk(self.scheme, fmt, vk, None, lambda: self._gnark_vk(vk))
        raise _unsupported(fmt)

    def _snarkjs_vk(self, vk: bytes) -> ParsedVk:
        canonical, n_pub = snarkjs_canonical_vk(vk, self.ctx)
        return ParsedVk(Scheme.PLONK, canonical, n_pub)

    def _gnark_vk(self, vk: bytes) -> ParsedVk:
        r = sidecar_parse_vk(self.ctx, "plonk", vk)
        return ParsedVk(
            Scheme.PLONK, hex_bytes(r.get("canonical_vk"), "canonical_vk"), n_public(r, "plonk.parse_vk")
        )

    def batch(self) -> PlonkVerifier:
        return self

    def close(self) -> None:
        pass

    # -- Batch
    def submit(
        self, fmt: str, proof: bytes, vk: bytes, public: bytes | None, settings: bytes | None
    ) -> Pending:
        if settings:
            raise NormalizeError(
                Code.MALFORMED, "settings", "settings are only used by ezkl (halo2), not plonk"
            )
        if fmt not in ("gnark", "snarkjs"):
            raise _unsupported(fmt)
        if public is None:
            raise NormalizeError(Code.MALFORMED, "public", f"{fmt} PLONK needs the public inputs file")
        if fmt == "gnark":
            params: dict[str, Any] = {"vk": b64(vk), "proof": b64(proof), "public": b64(public)}
        else:
            params = {
                "vk": loads("vk", vk, self.ctx.limits),
                "proof": loads("proof", proof, self.ctx.limits),
                "public": loads("public", public, self.ctx.limits),
            }
        sc = self.ctx.sidecar()
        fut = sc.submit("plonk.normalize", format=fmt, **params)
        return Pending(lambda: _statement(sc.result(fut, "plonk.normalize")))

    def flush(self) -> None:
        pass


def _statement(r: dict[str, Any]) -> Statement:
    canonical_vk = hex_bytes(r.get("canonical_vk"), "canonical_vk")
    pubs_raw = r.get("public_inputs")
    if not isinstance(pubs_raw, list):
        raise NormalizeError(Code.INTERNAL, "sidecar", "plonk.normalize returned no public_inputs")
    pubs = tuple(scalar32(v, f"public_inputs[{i}]") for i, v in enumerate(pubs_raw))
    full_vk = ParsedVk(Scheme.PLONK, canonical_vk, len(pubs))
    # gnark proofs made with the recursion transcript (and no BSB22 commitment) can be verified
    # in the aggregation circuit; Solidity-transcript and snarkjs proofs cannot.
    eligible = r.get("transcript") == "recursion" and r.get("commitments") == 0
    # plonk.normalize verifies as it decodes: a returned statement is a verified one
    return Statement(full_vk, hex_bytes(r.get("proof"), "proof"), pubs, recursion_eligible=eligible)


def _unsupported(fmt: str) -> NormalizeError:
    return NormalizeError(Code.UNSUPPORTED_FORMAT, "format", f"plonk does not support format {fmt!r:.40}")
