"""Groth16 over BN254: snarkjs JSON (parsed strictly here) and gnark binary (decoded by the sidecar).

Canonical encodings (affine, uncompressed, big-endian; G2 as x.c1|x.c0|y.c1|y.c0 like EIP-197):
    vk    = alpha1(64) | beta2(128) | gamma2(128) | delta2(128) | u32 BE n_ic | IC[i](64 each)
    proof = A(64) | B(128) | C(64)
The point at infinity is encoded as all zeros (EIP-196/197), allowed only for IC entries.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from normalizers import bn254
from normalizers.base import Context, ParsedVk, Statement
from normalizers.errors import Code, NormalizeError
from normalizers.jsonstrict import loads
from normalizers.limits import check_count
from normalizers.statement import BN254_P, BN254_R, Scheme

G1_LEN = 64
G2_LEN = 128
PROOF_LEN = G1_LEN + G2_LEN + G1_LEN
VK_FIXED_LEN = G1_LEN + 3 * G2_LEN + 4

_DEC = re.compile(r"0|[1-9][0-9]{0,77}")

SNARKJS_PROOF_KEYS = frozenset({"pi_a", "pi_b", "pi_c", "protocol", "curve"})
SNARKJS_VK_KEYS = frozenset(
    {
        "protocol",
        "curve",
        "nPublic",
        "vk_alpha_1",
        "vk_beta_2",
        "vk_gamma_2",
        "vk_delta_2",
        "vk_alphabeta_12",
        "IC",
    }
)


# ---------------------------------------------------------------- strict snarkjs value decoding


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


def _list(v: Any, field: str, n: int) -> list[Any]:
    if not isinstance(v, list):
        raise NormalizeError(Code.MALFORMED, field, f"expected a list, got {type(v).__name__}")
    if len(v) != n:
        raise NormalizeError(Code.MALFORMED, field, f"expected {n} elements, got {len(v)}")
    return v


def _obj(v: Any, field: str, keys: frozenset[str], optional: frozenset[str] = frozenset()) -> dict[str, Any]:
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
    x_, y_, z_ = _list(v, field, 3)
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
    xs, ys, zs = _list(v, field, 3)
    x = tuple(dec(c, f"{field}[0][{i}]", BN254_P) for i, c in enumerate(_list(xs, f"{field}[0]", 2)))
    y = tuple(dec(c, f"{field}[1][{i}]", BN254_P) for i, c in enumerate(_list(ys, f"{field}[1]", 2)))
    z = tuple(dec(c, f"{field}[2][{i}]", BN254_P) for i, c in enumerate(_list(zs, f"{field}[2]", 2)))
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
    v = loads(field, data, ctx.limits)
    if not isinstance(v, list):
        raise NormalizeError(
            Code.MALFORMED, field, f"expected a JSON list of decimal strings, got {type(v).__name__}"
        )
    check_count(field, len(v), ctx.limits.max_public_inputs)
    return tuple(dec(x, f"{field}[{i}]", BN254_R).to_bytes(32, "big") for i, x in enumerate(v))


def parse_snarkjs_vk(data: bytes, ctx: Context, field: str = "vk") -> ParsedVk:
    v = _obj(loads(field, data, ctx.limits), field, SNARKJS_VK_KEYS, optional=frozenset({"vk_alphabeta_12"}))
    if v["protocol"] != "groth16":
        raise NormalizeError(
            Code.UNSUPPORTED_FORMAT, f"{field}.protocol", f'expected "groth16", got {v["protocol"]!r:.40}'
        )
    if v["curve"] != "bn128":
        raise NormalizeError(
            Code.UNSUPPORTED_FORMAT, f"{field}.curve", f'expected "bn128", got {v["curve"]!r:.40}'
        )
    n_pub = v["nPublic"]
    if not isinstance(n_pub, int) or isinstance(n_pub, bool) or n_pub < 0:
        raise NormalizeError(Code.MALFORMED, f"{field}.nPublic", "expected a non-negative integer")
    check_count(f"{field}.nPublic", n_pub, ctx.limits.max_public_inputs)
    ic = v["IC"]
    if not isinstance(ic, list):
        raise NormalizeError(Code.MALFORMED, f"{field}.IC", "expected a list of G1 points")
    if len(ic) != n_pub + 1:
        raise NormalizeError(
            Code.PUBLIC_INPUT_COUNT, f"{field}.IC", f"has {len(ic)} points, nPublic+1 = {n_pub + 1}"
        )
    if "vk_alphabeta_12" in v:
        # derived value e(alpha, beta): shape-checked, not trusted, not part of the canonical vk
        ab = _list(v["vk_alphabeta_12"], f"{field}.vk_alphabeta_12", 2)
        for i, row in enumerate(ab):
            for j, pair in enumerate(_list(row, f"{field}.vk_alphabeta_12[{i}]", 3)):
                for k, c in enumerate(_list(pair, f"{field}.vk_alphabeta_12[{i}][{j}]", 2)):
                    dec(c, f"{field}.vk_alphabeta_12[{i}][{j}][{k}]", BN254_P)
    parts = [
        snarkjs_g1(v["vk_alpha_1"], f"{field}.vk_alpha_1"),
        snarkjs_g2(v["vk_beta_2"], f"{field}.vk_beta_2", subgroup=True),
        snarkjs_g2(v["vk_gamma_2"], f"{field}.vk_gamma_2", subgroup=True),
        snarkjs_g2(v["vk_delta_2"], f"{field}.vk_delta_2", subgroup=True),
        struct.pack(">I", len(ic)),
        *(snarkjs_g1(p, f"{field}.IC[{i}]", allow_infinity=True) for i, p in enumerate(ic)),
    ]
    return ParsedVk(Scheme.GROTH16, b"".join(parts), n_pub)


def parse_snarkjs_proof(data: bytes, ctx: Context, field: str = "proof") -> bytes:
    v = _obj(loads(field, data, ctx.limits), field, SNARKJS_PROOF_KEYS)
    if v["protocol"] != "groth16":
        raise NormalizeError(
            Code.UNSUPPORTED_FORMAT, f"{field}.protocol", f'expected "groth16", got {v["protocol"]!r:.40}'
        )
    if v["curve"] != "bn128":
        raise NormalizeError(
            Code.UNSUPPORTED_FORMAT, f"{field}.curve", f'expected "bn128", got {v["curve"]!r:.40}'
        )
    # B's subgroup check is done by the verifier backend (gnark decode); see module bn254
    return (
        snarkjs_g1(v["pi_a"], f"{field}.pi_a")
        + snarkjs_g2(v["pi_b"], f"{field}.pi_b", subgroup=False)
        + snarkjs_g1(v["pi_c"], f"{field}.pi_c")
    )


# ---------------------------------------------------------------- canonical form helpers


def vk_n_public(canonical: bytes) -> int:
    (n_ic,) = struct.unpack(">I", canonical[VK_FIXED_LEN - 4 : VK_FIXED_LEN])
    return int(n_ic) - 1


def canonical_vk_to_snarkjs(canonical: bytes) -> dict[str, Any]:
    """For backends that take snarkjs JSON (groth16py)."""

    def g1(b: bytes) -> list[str]:
        x, y = int.from_bytes(b[:32], "big"), int.from_bytes(b[32:64], "big")
        return ["0", "1", "0"] if (x, y) == (0, 0) else [str(x), str(y), "1"]

    def g2(b: bytes) -> list[list[str]]:
        c = [str(int.from_bytes(b[i : i + 32], "big")) for i in range(0, 128, 32)]
        return [[c[1], c[0]], [c[3], c[2]], ["1", "0"]]

    n_ic = vk_n_public(canonical) + 1
    o = G1_LEN + 3 * G2_LEN + 4
    return {
        "protocol": "groth16",
        "curve": "bn128",
        "nPublic": n_ic - 1,
        "vk_alpha_1": g1(canonical[:64]),
        "vk_beta_2": g2(canonical[64:192]),
        "vk_gamma_2": g2(canonical[192:320]),
        "vk_delta_2": g2(canonical[320:448]),
        "IC": [g1(canonical[o + 64 * i : o + 64 * (i + 1)]) for i in range(n_ic)],
    }


# ---------------------------------------------------------------- the scheme verifier


@dataclass
class _GnarkDecoded:
    vk: ParsedVk
    proof: bytes
    public: tuple[bytes, ...]
    commitments: int


class Groth16Verifier:
    scheme = Scheme.GROTH16
    formats = frozenset({"snarkjs", "gnark"})

    def __init__(self) -> None:
        self._py_verifiers: dict[bytes, Any] = {}
        self._py_lock = threading.Lock()
        self._gnark_vks: dict[bytes, tuple[ParsedVk, int]] = {}

    # -- vk
    def parse_vk(self, fmt: str, vk: bytes, settings: bytes | None, ctx: Context) -> ParsedVk:
        if fmt == "snarkjs":
            return parse_snarkjs_vk(vk, ctx)
        if fmt == "gnark":
            return self._gnark_vk(vk, ctx)
        raise NormalizeError(Code.UNSUPPORTED_FORMAT, "format", f"groth16 does not support format {fmt!r}")

    def _gnark_vk(self, vk: bytes, ctx: Context) -> ParsedVk:
        from normalizers.plonk import sidecar_parse_vk

        r = sidecar_parse_vk(ctx, "groth16", vk)
        n_pub = r.get("n_public")
        if not isinstance(n_pub, int):
            raise NormalizeError(Code.INTERNAL, "sidecar", "groth16.parse_vk returned no n_public")
        vk_parsed = ParsedVk(Scheme.GROTH16, _hex(r, "canonical_vk"), n_pub)
        self.remember_gnark_vk(
            vk, vk_parsed, int(r.get("commitments", 0))
        )  # registered keys take the fast path
        return vk_parsed

    # -- proof
    def parse(self, fmt: str, proof: bytes, vk: ParsedVk, public: bytes | None, ctx: Context) -> Statement:
        if fmt == "snarkjs":
            if public is None:
                raise NormalizeError(Code.MALFORMED, "public", "snarkjs Groth16 needs public.json")
            canonical_proof = parse_snarkjs_proof(proof, ctx)
            pubs = snarkjs_public(public, "public", ctx)
            _check_count(vk, pubs)
            return Statement(vk, canonical_proof, pubs, recursion_eligible=True)
        if fmt == "gnark":
            raise NormalizeError(Code.INTERNAL, "format", "gnark Groth16 is normalized together with its vk")
        raise NormalizeError(Code.UNSUPPORTED_FORMAT, "format", f"groth16 does not support format {fmt!r}")

    def submit_gnark(
        self, vk_raw: bytes, proof: bytes, public: bytes | None, ctx: Context
    ) -> Future[dict[str, Any]]:
        """gnark binaries go to the sidecar in one call (it decodes vk, proof and witness together);
        returns at once so many decodes can be in flight."""
        if public is None:
            raise NormalizeError(Code.MALFORMED, "public", "gnark Groth16 needs the public witness")
        return ctx.sidecar().submit(
            "groth16.normalize",
            format="gnark",
            vk=base64.b64encode(vk_raw).decode(),
            proof=base64.b64encode(proof).decode(),
            public=base64.b64encode(public).decode(),
        )

    # -- gnark fast path: a vk already decoded by the sidecar + a RAW (WriteRawTo) proof without
    # commitments is decoded here (it is the canonical bytes plus an empty commitment trailer), and
    # only the batched verify_batch runs in Go, which strictly re-validates every point.
    def _vk_key(self, vk_raw: bytes) -> bytes:
        return hashlib.sha256(vk_raw).digest()

    def remember_gnark_vk(self, vk_raw: bytes, vk: ParsedVk, commitments: int) -> None:
        with self._py_lock:
            self._gnark_vks[self._vk_key(vk_raw)] = (vk, commitments)
            if len(self._gnark_vks) > 1024:
                self._gnark_vks.pop(next(iter(self._gnark_vks)))

    def fast_gnark(self, vk_raw: bytes, proof: bytes, public: bytes | None) -> Statement | None:
        with self._py_lock:
            hit = self._gnark_vks.get(self._vk_key(vk_raw))
        if hit is None or hit[1] != 0 or public is None:
            return None  # first sight of this vk or commitments: the sidecar decodes it
        vk = hit[0]
        if len(proof) == RAW_PROOF_LEN and not proof[0] & 0xC0:
            for off, name, is_g2 in (
                (0, "proof.Ar", False),
                (64, "proof.Bs", True),
                (192, "proof.Krs", False),
            ):
                _raw_point(proof, off, name, is_g2)
            canonical, tail, pok_inf = proof[:256], proof[256:], bytes(64)
        elif len(proof) == COMPRESSED_PROOF_LEN and proof[0] & 0xC0:
            canonical = (
                _compressed_g1(proof[0:32], "proof.Ar")
                + _compressed_g2(proof[32:96], "proof.Bs")
                + _compressed_g1(proof[96:128], "proof.Krs")
            )
            tail, pok_inf = proof[128:], b"\x40" + bytes(31)
        else:
            return None  # let the sidecar name the length/flag problem
        if tail[:4] != bytes(4):
            raise NormalizeError(Code.MALFORMED, "proof.Commitments", "proof has commitments, vk expects 0")
        if tail[4:] != pok_inf:
            raise NormalizeError(
                Code.MALFORMED,
                "proof.CommitmentPok",
                "must be the point at infinity when the proof has no commitments",
            )
        pubs = parse_gnark_public_witness(public)
        _check_count(vk, pubs)
        return Statement(vk, canonical, pubs, recursion_eligible=True)

    def finish_gnark(
        self, fut: Future[dict[str, Any]], ctx: Context, vk_raw: bytes | None = None
    ) -> Statement:
        r = ctx.sidecar().result(fut, "groth16.normalize")
        canonical = _hex(r, "canonical_vk")
        # with a commitment, IC has an extra entry: trust the decoder's count, not len(IC)-1
        n_pub = r.get("n_public")
        if not isinstance(n_pub, int):
            raise NormalizeError(Code.INTERNAL, "sidecar", "groth16.normalize returned no n_public")
        vk = ParsedVk(Scheme.GROTH16, canonical, n_pub)
        pubs = tuple(_hex32(x, f"public_inputs[{i}]") for i, x in enumerate(r.get("public_inputs", [])))
        _check_count(vk, pubs)
        commitments = int(r.get("commitments", 0))
        if vk_raw is not None:
            self.remember_gnark_vk(vk_raw, vk, commitments)
        # groth16.normalize verifies the proof as it decodes (gnark's verifier and the batch verifier)
        return Statement(
            vk,
            _hex(r, "proof"),
            pubs,
            producer_version="",
            recursion_eligible=commitments == 0,
            verified=True,
        )

    def normalize_gnark(self, vk_raw: bytes, proof: bytes, public: bytes | None, ctx: Context) -> Statement:
        fast = self.fast_gnark(vk_raw, proof, public)
        if fast is not None:
            return fast
        return self.finish_gnark(self.submit_gnark(vk_raw, proof, public, ctx), ctx, vk_raw)

    # -- verification
    def verify_batch(self, items: Sequence[Statement], ctx: Context) -> list[NormalizeError | None]:
        return self.start_batch(items, ctx)()

    def start_batch(
        self, items: Sequence[Statement], ctx: Context
    ) -> Callable[[], list[NormalizeError | None]]:
        """Send one verify_batch to the sidecar and return a waiter, so the caller can parse the
        next chunk in Python while Go verifies this one (the two run on different cores)."""
        todo = [k for k, s in enumerate(items) if not s.verified]
        if len(todo) < len(items):
            inner = self.start_batch([items[k] for k in todo], ctx) if todo else list

            def merge() -> list[NormalizeError | None]:
                res: list[NormalizeError | None] = [None] * len(items)
                for k, r in zip(todo, inner(), strict=True):
                    res[k] = r
                return res

            return merge
        if not items:
            return list
        if ctx.groth16_backend == "groth16py":
            res = [self._verify_py(s) for s in items]
            return lambda: res
        sc = ctx.sidecar()
        fut = sc.submit(
            "groth16.verify_batch",
            items=[
                {
                    "canonical_vk": s.vk.canonical.hex(),
                    "proof": s.proof.hex(),
                    "public_inputs": [p.hex() for p in s.public_inputs],
                }
                for s in items
            ],
        )

        def wait() -> list[NormalizeError | None]:
            r = sc.result(fut, "groth16.verify_batch")
            results = r.get("results")
            if not isinstance(results, list) or len(results) != len(items):
                raise NormalizeError(
                    Code.INTERNAL, "sidecar", "verify_batch returned a wrong number of results"
                )
            return [_result(x) for x in results]

        return wait

    def _verify_py(self, s: Statement) -> NormalizeError | None:
        import json

        import groth16py

        key = s.vk.vk_hash
        with self._py_lock:
            ver = self._py_verifiers.get(key)
            if ver is None:
                ver = groth16py.Verifier(
                    groth16py.VerifyingKey.from_snarkjs(json.dumps(canonical_vk_to_snarkjs(s.vk.canonical)))
                )
                self._py_verifiers[key] = ver
        try:
            ok = ver.verify(s.proof, [int.from_bytes(p, "big") for p in s.public_inputs])
        except Exception as e:  # groth16py raises EncodingError for off-subgroup points
            msg = str(e)
            code = Code.NOT_IN_SUBGROUP if "subgroup" in msg.lower() else Code.INVALID_POINT
            return NormalizeError(code, "proof", msg[:200])
        return (
            None if ok else NormalizeError(Code.VERIFICATION_FAILED, "proof", "Groth16 pairing check failed")
        )


RAW_PROOF_LEN = 256 + 4 + 64  # Ar | Bs | Krs | u32 0 commitments | PoK (infinity = zeros)


def _raw_point(b: bytes, off: int, field: str, is_g2: bool) -> None:
    """An uncompressed gnark point: flag bits 00, coordinates < p, on the curve, not infinity."""
    if b[off] & 0xC0:
        raise NormalizeError(
            Code.INVALID_POINT, field, "compressed-point flag inside an uncompressed encoding"
        )
    n = 4 if is_g2 else 2
    c = [int.from_bytes(b[off + 32 * i : off + 32 * (i + 1)], "big") for i in range(n)]
    if any(x >= BN254_P for x in c):
        raise NormalizeError(Code.NON_CANONICAL_SCALAR, field, "coordinate is not reduced modulo p")
    if not any(c):
        raise NormalizeError(Code.POINT_AT_INFINITY, field, "the point at infinity is not allowed here")
    ok = bn254.g2_on_curve((c[1], c[0]), (c[3], c[2])) if is_g2 else bn254.g1_on_curve(c[0], c[1])
    if not ok:
        raise NormalizeError(
            Code.INVALID_POINT, field, "point is not on the curve" + (" (twist)" if is_g2 else "")
        )


COMPRESSED_PROOF_LEN = 32 + 64 + 32 + 4 + 32


def _fp(b: bytes, field: str) -> int:
    x = int.from_bytes(b, "big")
    if x >= BN254_P:
        raise NormalizeError(Code.NON_CANONICAL_SCALAR, field, "coordinate is not reduced modulo p")
    return x


def _largest(y: int) -> bool:
    return y > (BN254_P - 1) // 2


def _compressed_g1(b: bytes, field: str) -> bytes:
    """gnark-crypto compressed G1 (flags 0b10 smallest y / 0b11 largest y); infinity forbidden."""
    flag = b[0] & 0xC0
    if flag == 0x40:
        if any(b[1:]) or b[0] & 0x3F:
            raise NormalizeError(Code.INVALID_POINT, field, "infinity flag with non-zero coordinate bytes")
        raise NormalizeError(Code.POINT_AT_INFINITY, field, "the point at infinity is not allowed here")
    if flag not in (0x80, 0xC0):
        raise NormalizeError(
            Code.INVALID_POINT, field, "uncompressed-point flag inside a compressed encoding"
        )
    x = _fp(bytes([b[0] & 0x3F]) + b[1:], field)
    y2 = (x * x * x + 3) % BN254_P
    y = pow(y2, (BN254_P + 1) // 4, BN254_P)
    if y * y % BN254_P != y2:
        raise NormalizeError(
            Code.INVALID_POINT, field, "compressed G1 x-coordinate has no point on the curve"
        )
    if _largest(y) != (flag == 0xC0):
        y = (BN254_P - y) % BN254_P
    if x == 0 and y == 0:
        raise NormalizeError(Code.INVALID_POINT, field, "compressed encoding of (0,0)")
    return x.to_bytes(32, "big") + y.to_bytes(32, "big")


def _compressed_g2(b: bytes, field: str) -> bytes:
    """gnark-crypto compressed G2: X.A1 | X.A0 with the flags on A1; y's sign by A1 (A0 if A1 = 0)."""
    flag = b[0] & 0xC0
    if flag == 0x40:
        if any(b[1:]) or b[0] & 0x3F:
            raise NormalizeError(Code.INVALID_POINT, field, "infinity flag with non-zero coordinate bytes")
        raise NormalizeError(Code.POINT_AT_INFINITY, field, "the point at infinity is not allowed here")
    if flag not in (0x80, 0xC0):
        raise NormalizeError(
            Code.INVALID_POINT, field, "uncompressed-point flag inside a compressed encoding"
        )
    x1 = _fp(bytes([b[0] & 0x3F]) + b[1:32], field)
    x0 = _fp(b[32:64], field)
    x: bn254.Fp2 = (x0, x1)
    y = bn254.f2_sqrt(bn254.f2_add(bn254.f2_mul(bn254.f2_sqr(x), x), bn254.B2))
    if y is None:
        raise NormalizeError(
            Code.INVALID_POINT, field, "compressed G2 x-coordinate has no point on the twist"
        )
    largest = _largest(y[0]) if y[1] == 0 else _largest(y[1])
    if largest != (flag == 0xC0):
        y = ((BN254_P - y[0]) % BN254_P, (BN254_P - y[1]) % BN254_P)
    return b"".join(c.to_bytes(32, "big") for c in (x1, x0, y[1], y[0]))


def parse_gnark_public_witness(b: bytes) -> tuple[bytes, ...]:
    """witness.MarshalBinary of a public witness: u32 nbPublic | u32 nbSecret=0 | u32 len | 32-byte BE."""
    if len(b) < 12:
        raise NormalizeError(
            Code.INVALID_LENGTH, "public", f"{len(b)} bytes is shorter than the witness header"
        )
    n_pub, n_sec, n = struct.unpack(">III", b[:12])
    if n_sec != 0:
        raise NormalizeError(
            Code.MALFORMED, "public.nbSecret", f"a public witness must have nbSecret = 0, got {n_sec}"
        )
    if n != n_pub:
        raise NormalizeError(Code.MALFORMED, "public.len", f"vector length {n} != nbPublic {n_pub}")
    if len(b) != 12 + 32 * n:
        raise NormalizeError(
            Code.INVALID_LENGTH, "public", f"{len(b)} bytes, {n} elements need {12 + 32 * n}"
        )
    out = tuple(b[12 + 32 * i : 44 + 32 * i] for i in range(n))
    for i, x in enumerate(out):
        if int.from_bytes(x, "big") >= BN254_R:
            raise NormalizeError(
                Code.NON_CANONICAL_SCALAR, f"public[{i}]", "public input is not reduced modulo r"
            )
    return out


def _check_count(vk: ParsedVk, pubs: tuple[bytes, ...]) -> None:
    if len(pubs) != vk.n_public:
        raise NormalizeError(
            Code.PUBLIC_INPUT_COUNT,
            "public",
            f"{len(pubs)} public inputs, the verifying key expects {vk.n_public}",
        )


def _hex(r: dict[str, Any], key: str) -> bytes:
    v = r.get(key)
    if not isinstance(v, str):
        raise NormalizeError(Code.INTERNAL, "sidecar", f"response lacks {key}")
    return bytes.fromhex(v.removeprefix("0x"))


def _hex32(v: Any, field: str) -> bytes:
    if not isinstance(v, str):
        raise NormalizeError(Code.INTERNAL, "sidecar", f"{field} is not a hex string")
    b = bytes.fromhex(v.removeprefix("0x"))
    if len(b) != 32 or int.from_bytes(b, "big") >= BN254_R:
        raise NormalizeError(Code.INTERNAL, "sidecar", f"{field} is not a canonical 32-byte scalar")
    return b


def _result(x: dict[str, Any]) -> NormalizeError | None:
    if x.get("ok") is True:
        return None
    code = str(x.get("code") or "VERIFICATION_FAILED")
    if code not in Code.__members__:
        code = "VERIFICATION_FAILED"
    return NormalizeError(
        code, str(x.get("field") or "proof"), str(x.get("message") or "verification failed")
    )


VERIFIER = Groth16Verifier()
