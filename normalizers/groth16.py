"""Groth16 over BN254: snarkjs JSON (parsed strictly here) and gnark binary (decoded by the sidecar).

Canonical encodings (affine, uncompressed, big-endian; G2 as x.c1|x.c0|y.c1|y.c0 like EIP-197):
    vk    = alpha1(64) | beta2(128) | gamma2(128) | delta2(128) | u32 BE n_ic | IC[i](64 each)
    proof = A(64) | B(128) | C(64)
The point at infinity is encoded as all zeros (EIP-196/197), allowed only for IC entries.
"""

from __future__ import annotations

import json
import struct
import threading
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import groth16py

from normalizers import bn254
from normalizers.base import Context, ParsedVk, Pending, Statement, vk_cache_key
from normalizers.errors import Code, NormalizeError
from normalizers.jsonstrict import loads
from normalizers.limits import check_count
from normalizers.sidecar_ops import b64, hex_bytes, item_result, n_public, scalar32
from normalizers.sidecar_ops import parse_vk as sidecar_parse_vk
from normalizers.snarkjs_json import G1_LEN, G2_LEN, array, dec, obj, snarkjs_g1, snarkjs_g2
from normalizers.snarkjs_json import snarkjs_public as snarkjs_public  # re-export (deploy.recursive)
from normalizers.statement import BN254_P, BN254_R, Scheme
from sheaf.lru import LRU

PROOF_LEN = G1_LEN + G2_LEN + G1_LEN
VK_FIXED_LEN = G1_LEN + 3 * G2_LEN + 4

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


# ---------------------------------------------------------------- snarkjs files


def parse_snarkjs_vk(data: bytes, ctx: Context, field: str = "vk") -> ParsedVk:
    v = obj(loads(field, data, ctx.limits), field, SNARKJS_VK_KEYS, optional=frozenset({"vk_alphabeta_12"}))
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
        ab = array(v["vk_alphabeta_12"], f"{field}.vk_alphabeta_12", 2)
        for i, row in enumerate(ab):
            for j, pair in enumerate(array(row, f"{field}.vk_alphabeta_12[{i}]", 3)):
                for k, c in enumerate(array(pair, f"{field}.vk_alphabeta_12[{i}][{j}]", 2)):
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
    v = obj(loads(field, data, ctx.limits), field, SNARKJS_PROOF_KEYS)
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


class Groth16Verifier:
    """Groth16 behind the `SchemeVerifier` interface.

    snarkjs: vk and proof parsed strictly in Python; proofs verified in chunks of `ctx.chunk_size`
    (one sidecar `groth16.verify_batch` RLC batch each, or groth16py in-process).
    gnark: the first proof of a vk goes to the sidecar's `groth16.normalize`, which decodes vk,
    proof and witness together and verifies (kept in flight while Python parses the next input);
    its decoded vk is cached, and later RAW/compressed proofs without commitments for that vk are
    decoded here (fast path) and verified in the chunks like snarkjs proofs (Go strictly
    re-validates every point)."""

    scheme: ClassVar[Scheme] = Scheme.GROTH16

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._py_verifiers: LRU[bytes, groth16py.Verifier] = LRU(ctx.vk_cache_size)  # by vk_hash

    def validate_vk(self, fmt: str, vk: bytes, settings: bytes | None) -> ParsedVk:
        if fmt == "snarkjs":
            return self.ctx.cached_vk(self.scheme, fmt, vk, None, lambda: parse_snarkjs_vk(vk, self.ctx))
        if fmt == "gnark":
            return self.ctx.cached_vk(self.scheme, fmt, vk, None, lambda: self._gnark_vk(vk))
        raise _unsupported(fmt)

    def batch(self) -> _Groth16Batch:
        return _Groth16Batch(self)

    def close(self) -> None:
        self._py_verifiers.clear()

    # -- vk
    def _gnark_vk(self, vk: bytes) -> ParsedVk:
        r = sidecar_parse_vk(self.ctx, "groth16", vk)
        return ParsedVk(
            Scheme.GROTH16,
            hex_bytes(r.get("canonical_vk"), "canonical_vk"),
            n_public(r, "groth16.parse_vk"),
            commitments=int(r.get("commitments", 0)),
        )

    # -- proofs
    def _snarkjs(self, proof: bytes, vk_raw: bytes, public: bytes | None) -> Statement:
        vk = self.validate_vk("snarkjs", vk_raw, None)
        if public is None:
            raise NormalizeError(Code.MALFORMED, "public", "snarkjs Groth16 needs public.json")
        canonical_proof = parse_snarkjs_proof(proof, self.ctx)
        pubs = snarkjs_public(public, "public", self.ctx)
        _check_count(vk, pubs)
        return Statement(vk, canonical_proof, pubs, recursion_eligible=True)

    def _fast_gnark(self, vk_raw: bytes, proof: bytes, public: bytes | None) -> Statement | None:
        """A vk already decoded by the sidecar + a RAW (WriteRawTo) proof without commitments is
        the canonical bytes plus an empty commitment trailer (compressed ones are decompressed
        here); None = the sidecar must decode it (unknown vk, commitments, odd length)."""
        vk = self.ctx.vks.get(vk_cache_key(self.scheme, "gnark", vk_raw, None))
        if vk is None or vk.commitments != 0 or public is None:
            return None
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

    def _decode_gnark(self, vk_raw: bytes, proof: bytes, public: bytes | None) -> Pending:
        """Put one `groth16.normalize` in flight (it decodes and verifies); returns at once."""
        if public is None:
            raise NormalizeError(Code.MALFORMED, "public", "gnark Groth16 needs the public witness")
        sc = self.ctx.sidecar()
        fut = sc.submit(
            "groth16.normalize", format="gnark", vk=b64(vk_raw), proof=b64(proof), public=b64(public)
        )

        def decoded() -> Statement:
            r = sc.result(fut, "groth16.normalize")
            # with a commitment, IC has an extra entry: trust the decoder's count, not len(IC)-1
            commitments = int(r.get("commitments", 0))
            vk = ParsedVk(
                Scheme.GROTH16,
                hex_bytes(r.get("canonical_vk"), "canonical_vk"),
                n_public(r, "groth16.normalize"),
                commitments=commitments,
            )
            raw_pubs = r.get("public_inputs", [])
            if not isinstance(raw_pubs, list):
                raise NormalizeError(Code.INTERNAL, "sidecar", "groth16.normalize returned no public_inputs")
            pubs = tuple(scalar32(x, f"public_inputs[{i}]") for i, x in enumerate(raw_pubs))
            _check_count(vk, pubs)
            self.ctx.vks.put(vk_cache_key(self.scheme, "gnark", vk_raw, None), vk)  # later: fast path
            # groth16.normalize verified the proof as it decoded it
            return Statement(
                vk, hex_bytes(r.get("proof"), "proof"), pubs, recursion_eligible=commitments == 0
            )

        return Pending(decoded)

    # -- verification
    def _start_verify(self, items: Sequence[Statement]) -> Callable[[], list[NormalizeError | None]]:
        """Send one verify_batch to the sidecar and return a waiter, so the caller can parse the
        next chunk in Python while Go verifies this one (the two run on different cores)."""
        if self.ctx.groth16_backend == "groth16py":
            res = [self._verify_py(s) for s in items]
            return lambda: res
        sc = self.ctx.sidecar()
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
            return [item_result(x) for x in results]

        return wait

    def _verify_py(self, s: Statement) -> NormalizeError | None:
        ver = self._py_verifiers.get_or_put(
            s.vk.vk_hash,
            lambda: groth16py.Verifier(
                groth16py.VerifyingKey.from_snarkjs(json.dumps(canonical_vk_to_snarkjs(s.vk.canonical)))
            ),
        )
        try:
            ok = ver.verify(s.proof, [int.from_bytes(p, "big") for p in s.public_inputs])
        except Exception as e:  # groth16py raises EncodingError for off-subgroup points
            msg = str(e)
            code = Code.NOT_IN_SUBGROUP if "subgroup" in msg.lower() else Code.INVALID_POINT
            return NormalizeError(code, "proof", msg[:200])
        return (
            None if ok else NormalizeError(Code.VERIFICATION_FAILED, "proof", "Groth16 pairing check failed")
        )


class _Chunk:
    """Statements verified together by one `_start_verify` (one RLC batch)."""

    def __init__(self, v: Groth16Verifier) -> None:
        self._v = v
        self.items: list[Statement] = []
        self._wait: Callable[[], list[NormalizeError | None]] | None = None
        self._results: list[NormalizeError | None] | None = None
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self._wait is not None

    def start(self) -> None:
        with self._lock:
            if self._wait is None:
                try:
                    self._wait = self._v._start_verify(self.items)
                except NormalizeError as e:  # e.g. no sidecar: every item of the chunk hears it
                    failed: list[NormalizeError | None] = [e] * len(self.items)
                    self._wait = lambda: failed

    def outcome(self, k: int) -> Statement:
        self.start()
        with self._lock:
            if self._results is None:
                assert self._wait is not None
                try:
                    self._results = self._wait()
                except NormalizeError as e:
                    self._results = [e] * len(self.items)
        err = self._results[k]
        if err is not None:
            raise err
        return self.items[k]


class _Groth16Batch:
    """One call's Groth16 proofs: chunks start verifying as they fill (Go verifies a chunk while
    Python parses the next), gnark decodes are in flight from submit on. One thread at a time."""

    def __init__(self, v: Groth16Verifier) -> None:
        self._v = v
        self._chunk = _Chunk(v)

    def submit(
        self, fmt: str, proof: bytes, vk: bytes, public: bytes | None, settings: bytes | None
    ) -> Pending:
        if settings:
            raise NormalizeError(
                Code.MALFORMED, "settings", "settings are only used by ezkl (halo2), not groth16"
            )
        if fmt == "snarkjs":
            return self._queue(self._v._snarkjs(proof, vk, public))
        if fmt == "gnark":
            fast = self._v._fast_gnark(vk, proof, public)
            if fast is not None:
                return self._queue(fast)
            return self._v._decode_gnark(vk, proof, public)
        raise _unsupported(fmt)

    def _queue(self, st: Statement) -> Pending:
        if self._chunk.started:  # a result was read early: later proofs go to a new chunk
            self._chunk = _Chunk(self._v)
        chunk, k = self._chunk, len(self._chunk.items)
        chunk.items.append(st)
        if len(chunk.items) >= self._v.ctx.chunk_size:
            self.flush()
        return Pending(lambda: chunk.outcome(k))

    def flush(self) -> None:
        if self._chunk.items and not self._chunk.started:
            self._chunk.start()
        self._chunk = _Chunk(self._v)


def _unsupported(fmt: str) -> NormalizeError:
    return NormalizeError(Code.UNSUPPORTED_FORMAT, "format", f"groth16 does not support format {fmt!r:.40}")


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
