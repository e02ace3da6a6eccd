"""PLONK over BN254: gnark binary and snarkjs JSON, both decoded and verified by the sidecar's
`plonk.normalize` (gnark's verifier for gnark proofs; a port of snarkjs's verifier for snarkjs
proofs, whose transcript differs). Canonical encodings are defined in docs/sidecar.md and
docs/envelope.md; Python only checks sizes, JSON shape limits and the response.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from normalizers import groth16 as g16
from normalizers.base import Context, ParsedVk, Statement
from normalizers.errors import Code, NormalizeError
from normalizers.jsonstrict import loads
from normalizers.limits import check_count
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
    lets `parse_vk` register snarkjs PLONK keys without a proof. The sidecar stays the authority
    at normalize time (it re-derives the same bytes; the tests check they agree)."""
    v = g16._obj(loads(field, data, ctx.limits), field, SNARKJS_VK_KEYS)
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
    w = g16.dec(v["w"], f"{field}.w", BN254_R)
    if w != pow(_W28, 1 << (28 - power), BN254_R):
        raise NormalizeError(Code.MALFORMED, f"{field}.w", "not the 2^power-th root of unity snarkjs uses")
    parts = [
        b"\x02",
        n_pub.to_bytes(4, "big"),
        power.to_bytes(4, "big"),
        g16.dec(v["k1"], f"{field}.k1", BN254_R).to_bytes(32, "big"),
        g16.dec(v["k2"], f"{field}.k2", BN254_R).to_bytes(32, "big"),
        *(g16.snarkjs_g1(v[k], f"{field}.{k}", allow_infinity=True) for k in _SELECTORS),
        g16.snarkjs_g2(v["X_2"], f"{field}.X_2", subgroup=True),
    ]
    return b"".join(parts), n_pub


class PlonkVerifier:
    scheme = Scheme.PLONK
    formats = frozenset({"gnark", "snarkjs"})

    def parse_vk(self, fmt: str, vk: bytes, settings: bytes | None, ctx: Context) -> ParsedVk:
        # The vk is validated together with the proof by plonk.normalize; keep raw bytes here.
        if fmt not in self.formats:
            raise NormalizeError(
                Code.UNSUPPORTED_FORMAT, "format", f"plonk does not support format {fmt!r:.40}"
            )
        return ParsedVk(Scheme.PLONK, b"", -1, native=bytes(vk))

    def canonical_vk(self, fmt: str, vk: bytes, ctx: Context) -> ParsedVk:
        """A fully validated canonical vk without a proof (for registering keys by hash)."""
        if fmt == "snarkjs":
            canonical, n_pub = snarkjs_canonical_vk(vk, ctx)
            return ParsedVk(Scheme.PLONK, canonical, n_pub)
        if fmt == "gnark":
            r = sidecar_parse_vk(ctx, "plonk", vk)
            return ParsedVk(Scheme.PLONK, _hex(r, "canonical_vk"), int(r.get("n_public", -1)))
        raise NormalizeError(Code.UNSUPPORTED_FORMAT, "format", f"plonk does not support format {fmt!r:.40}")

    def submit(
        self, fmt: str, vk: bytes, proof: bytes, public: bytes | None, ctx: Context
    ) -> Future[dict[str, Any]]:
        """Put one plonk.normalize in flight (the sidecar works on several at once)."""
        return self._request(fmt, vk, proof, public, ctx, wait=False)  # type: ignore[return-value]

    def finish(self, fut: Future[dict[str, Any]], ctx: Context) -> Statement:
        return self._statement(ctx.sidecar().result(fut, "plonk.normalize"))

    def _request(
        self, fmt: str, vk: bytes, proof: bytes, public: bytes | None, ctx: Context, wait: bool = True
    ) -> dict[str, Any] | Future[dict[str, Any]]:
        if public is None:
            raise NormalizeError(Code.MALFORMED, "public", f"{fmt} PLONK needs the public inputs file")
        if fmt == "gnark":
            params: dict[str, Any] = {
                "vk": base64.b64encode(vk).decode(),
                "proof": base64.b64encode(proof).decode(),
                "public": base64.b64encode(public).decode(),
            }
        else:
            params = {
                "vk": loads("vk", vk, ctx.limits),
                "proof": loads("proof", proof, ctx.limits),
                "public": loads("public", public, ctx.limits),
            }
        if not wait:
            return ctx.sidecar().submit("plonk.normalize", format=fmt, **params)
        return ctx.sidecar().request("plonk.normalize", format=fmt, **params)

    def parse(self, fmt: str, proof: bytes, vk: ParsedVk, public: bytes | None, ctx: Context) -> Statement:
        r = self._request(fmt, vk.native, proof, public, ctx)
        assert isinstance(r, dict)
        return self._statement(r)

    def _statement(self, r: dict[str, Any]) -> Statement:
        canonical_vk = _hex(r, "canonical_vk")
        pubs_raw = r.get("public_inputs")
        if not isinstance(pubs_raw, list):
            raise NormalizeError(Code.INTERNAL, "sidecar", "plonk.normalize returned no public_inputs")
        pubs = tuple(_hex(r, "", v) for v in pubs_raw)
        for i, p in enumerate(pubs):
            if len(p) != 32 or int.from_bytes(p, "big") >= BN254_R:
                raise NormalizeError(
                    Code.INTERNAL, "sidecar", f"public_inputs[{i}] is not a canonical scalar"
                )
        full_vk = ParsedVk(Scheme.PLONK, canonical_vk, len(pubs))
        # gnark proofs made with the recursion transcript (and no BSB22 commitment) can be verified
        # in the aggregation circuit; Solidity-transcript and snarkjs proofs cannot.
        eligible = r.get("transcript") == "recursion" and r.get("commitments") == 0
        # plonk.normalize verifies as it decodes: a returned statement is a verified one
        return Statement(full_vk, _hex(r, "proof"), pubs, recursion_eligible=eligible, verified=True)

    def start_batch(
        self, items: Sequence[Statement], ctx: Context
    ) -> Callable[[], list[NormalizeError | None]]:
        res = self.verify_batch(items, ctx)
        return lambda: res

    def verify_batch(self, items: Sequence[Statement], ctx: Context) -> list[NormalizeError | None]:
        return [None for _ in items]


def sidecar_parse_vk(ctx: Context, scheme: str, vk: bytes) -> dict[str, Any]:
    """`<scheme>.parse_vk` on the sidecar (decode + validate a gnark vk alone)."""
    try:
        return ctx.sidecar().request(f"{scheme}.parse_vk", format="gnark", vk=base64.b64encode(vk).decode())
    except NormalizeError as e:
        if e.field == "op":  # older sidecar without the op
            raise NormalizeError(
                Code.UNSUPPORTED_FORMAT, "vk",
                f"this sheaf-gnark has no {scheme}.parse_vk: a gnark key is only hashed with a proof",
            ) from None  # fmt: skip
        raise


def _hex(r: dict[str, Any], key: str, raw: Any = None) -> bytes:
    v = r.get(key) if key else raw
    if not isinstance(v, str):
        raise NormalizeError(Code.INTERNAL, "sidecar", f"response field {key or 'item'} is not a hex string")
    try:
        return bytes.fromhex(v.removeprefix("0x"))
    except ValueError:
        raise NormalizeError(Code.INTERNAL, "sidecar", f"response field {key or 'item'} is not hex") from None


VERIFIER = PlonkVerifier()
