"""PLONK over BN254: gnark binary and snarkjs JSON, both decoded and verified by the sidecar's
`plonk.normalize` (gnark's verifier for gnark proofs; a port of snarkjs's verifier for snarkjs
proofs, whose transcript differs). Canonical encodings are defined in docs/sidecar.md and
docs/envelope.md; Python only checks sizes, JSON shape limits and the response.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

from normalizers.base import Context, ParsedVk, Statement
from normalizers.errors import Code, NormalizeError
from normalizers.jsonstrict import loads
from normalizers.statement import BN254_R, Scheme


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

    def _request(
        self, fmt: str, vk: bytes, proof: bytes, public: bytes | None, ctx: Context
    ) -> dict[str, Any]:
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
        return ctx.sidecar().request("plonk.normalize", format=fmt, **params)

    def parse(self, fmt: str, proof: bytes, vk: ParsedVk, public: bytes | None, ctx: Context) -> Statement:
        r = self._request(fmt, vk.native, proof, public, ctx)
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
        # plonk.normalize verifies as it decodes: a returned statement is a verified one
        return Statement(full_vk, _hex(r, "proof"), pubs, recursion_eligible=False, verified=True)

    def start_batch(
        self, items: Sequence[Statement], ctx: Context
    ) -> Callable[[], list[NormalizeError | None]]:
        res = self.verify_batch(items, ctx)
        return lambda: res

    def verify_batch(self, items: Sequence[Statement], ctx: Context) -> list[NormalizeError | None]:
        return [None for _ in items]


def _hex(r: dict[str, Any], key: str, raw: Any = None) -> bytes:
    v = r.get(key) if key else raw
    if not isinstance(v, str):
        raise NormalizeError(Code.INTERNAL, "sidecar", f"response field {key or 'item'} is not a hex string")
    try:
        return bytes.fromhex(v.removeprefix("0x"))
    except ValueError:
        raise NormalizeError(Code.INTERNAL, "sidecar", f"response field {key or 'item'} is not hex") from None


VERIFIER = PlonkVerifier()
