"""Public API of the normalizers: ProofInput in, Envelope out (docs/envelope.md).

n = Normalizer()                       # owns the gnark sidecar and the ezkl SRS path
env = n.normalize(ProofInput("groth16", "snarkjs", proof, vk, public=pub))
envs = n.normalize_many(inputs)        # Groth16 verification batched in one sidecar call
canonical_vk, vk_hash = parse_vk("halo2", "ezkl", vk_bytes, settings_bytes)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from normalizers import groth16, halo2, plonk
from normalizers.base import Context, ParsedVk, SchemeVerifier, Statement
from normalizers.errors import Code, NormalizeError
from normalizers.limits import DEFAULT_LIMITS, Limits, check_size
from normalizers.statement import ENVELOPE_VERSION, statement_hash

SCHEMES: dict[str, SchemeVerifier] = {
    "groth16": groth16.VERIFIER,
    "plonk": plonk.VERIFIER,
    "halo2": halo2.VERIFIER,
}
PRODUCERS = ("gnark", "snarkjs", "ezkl")
CURVE = "bn254"


@dataclass(frozen=True)
class ProofInput:
    """Raw file contents as the prover wrote them."""

    scheme: str  # "groth16" | "plonk" | "halo2"
    format: str  # "gnark" | "snarkjs" | "ezkl"
    proof: bytes
    vk: bytes
    public: bytes | None = None
    settings: bytes | None = None


@dataclass(frozen=True)
class Envelope:
    scheme: str
    curve: str
    producer_kind: str
    producer_version: str
    vk_hash: bytes
    public_inputs: tuple[bytes, ...]
    proof: bytes
    statement_hash: bytes
    canonical_vk: bytes = field(repr=False)
    recursion_eligible: bool
    envelope_version: int = ENVELOPE_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "envelope_version": self.envelope_version,
            "scheme": self.scheme,
            "curve": self.curve,
            "producer": {"kind": self.producer_kind, "version": self.producer_version},
            "vk_hash": "0x" + self.vk_hash.hex(),
            "public_inputs": ["0x" + p.hex() for p in self.public_inputs],
            "proof": "0x" + self.proof.hex(),
            "statement_hash": "0x" + self.statement_hash.hex(),
            "recursion_eligible": self.recursion_eligible,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    def to_proto(self) -> Any:
        from sheaf.v1 import envelope_pb2 as pb

        return pb.Envelope(
            envelope_version=self.envelope_version,
            scheme=pb.Scheme.Value(self.scheme.upper()),
            curve=pb.BN254,
            producer=pb.Producer(
                kind=pb.ProducerKind.Value(self.producer_kind.upper()), version=self.producer_version
            ),
            vk_hash=self.vk_hash,
            public_inputs=list(self.public_inputs),
            proof=self.proof,
            statement_hash=self.statement_hash,
        )


def _scheme(inp_scheme: str, fmt: str) -> SchemeVerifier:
    v = SCHEMES.get(inp_scheme)
    if v is None:
        raise NormalizeError(Code.UNSUPPORTED_FORMAT, "scheme", f"unknown scheme {inp_scheme!r:.40}")
    if fmt not in v.formats:
        raise NormalizeError(
            Code.UNSUPPORTED_FORMAT,
            "format",
            f"{inp_scheme} does not support format {fmt!r:.40} (use {sorted(v.formats)})",
        )
    return v


def _envelope(scheme: SchemeVerifier, fmt: str, st: Statement) -> Envelope:
    vh = st.vk.vk_hash
    return Envelope(
        scheme=scheme.scheme.name.lower(),
        curve=CURVE,
        producer_kind=fmt,
        producer_version=st.producer_version,
        vk_hash=vh,
        public_inputs=st.public_inputs,
        proof=st.proof,
        statement_hash=statement_hash(scheme.scheme, vh, st.public_inputs),
        canonical_vk=st.vk.canonical,
        recursion_eligible=st.recursion_eligible,
    )


class Normalizer:
    """Thread-safe. Verifying keys are cached by the hash of their raw bytes (vk checks such as
    the G2 subgroup test cost ms; proofs for one circuit share one vk)."""

    def __init__(
        self,
        *,
        srs: str | Path | None = None,
        limits: Limits = DEFAULT_LIMITS,
        sidecar_bin: str | None = None,
        groth16_backend: str = "sidecar",
        vk_cache_size: int = 256,
        chunk_size: int = 128,
    ) -> None:
        self.chunk_size = chunk_size
        if srs is None:
            srs = _default_srs()
        self.ctx = Context(
            limits=limits,
            srs_path=str(srs) if srs else None,
            sidecar_bin=sidecar_bin,
            groth16_backend=groth16_backend,
        )
        self._vks: OrderedDict[bytes, ParsedVk] = OrderedDict()
        self._vk_lock = threading.Lock()
        self._vk_cache_size = vk_cache_size

    # -- vk
    def _parse_vk(self, v: SchemeVerifier, inp: ProofInput) -> ParsedVk:
        key = hashlib.sha256(
            f"{inp.scheme}/{inp.format}/".encode()
            + hashlib.sha256(inp.vk).digest()
            + hashlib.sha256(inp.settings or b"").digest()
        ).digest()
        with self._vk_lock:
            hit = self._vks.get(key)
            if hit is not None:
                self._vks.move_to_end(key)
                return hit
        vk = v.parse_vk(inp.format, bytes(inp.vk), _b(inp.settings), self.ctx)
        with self._vk_lock:
            self._vks[key] = vk
            while len(self._vks) > self._vk_cache_size:
                self._vks.popitem(last=False)
        return vk

    def _check_sizes(self, inp: ProofInput) -> None:
        lim = self.ctx.limits
        check_size("proof", inp.proof, lim.max_proof_bytes)
        check_size("vk", inp.vk, lim.max_vk_bytes)
        if inp.public is not None:
            check_size("public", inp.public, lim.max_public_bytes)
        if inp.settings is not None:
            check_size("settings", inp.settings, lim.max_settings_bytes)

    def _precheck(self, inp: ProofInput) -> SchemeVerifier:
        if not isinstance(inp, ProofInput):
            raise NormalizeError(Code.MALFORMED, "input", "expected a ProofInput")
        v = _scheme(inp.scheme, inp.format)
        for name in ("proof", "vk", "public", "settings"):
            val = getattr(inp, name)
            if val is not None and not isinstance(val, bytes | bytearray | memoryview):
                raise NormalizeError(Code.MALFORMED, name, f"expected bytes, got {type(val).__name__}")
        if inp.settings and inp.scheme != "halo2":
            raise NormalizeError(
                Code.MALFORMED, "settings", f"settings are only used by ezkl (halo2), not {inp.scheme}"
            )
        self._check_sizes(inp)
        return v

    def parse(self, inp: ProofInput) -> tuple[SchemeVerifier, Statement]:
        """Strict decoding and validation without the final proof verification."""
        v = self._precheck(inp)
        try:
            if isinstance(v, groth16.Groth16Verifier) and inp.format == "gnark":
                return v, v.normalize_gnark(bytes(inp.vk), bytes(inp.proof), _b(inp.public), self.ctx)
            vk = self._parse_vk(v, inp)
            return v, v.parse(inp.format, bytes(inp.proof), vk, _b(inp.public), self.ctx)
        except NormalizeError:
            raise
        except Exception as e:  # a parser bug must still surface as a coded error, not a crash
            raise NormalizeError(Code.INTERNAL, "input", f"{type(e).__name__}: {e}"[:300]) from e

    def normalize(self, inp: ProofInput) -> Envelope:
        v, st = self.parse(inp)
        err = v.verify_batch([st], self.ctx)[0]
        if err is not None:
            raise err
        return _envelope(v, inp.format, st)

    def normalize_many(self, inputs: Sequence[ProofInput]) -> list[Envelope | NormalizeError]:
        """Parse all, verifying in chunks as they fill: Groth16 chunks go to the sidecar as one
        verify_batch each while Python parses the next chunk (Go and Python on separate cores);
        gnark decodes are all put in flight first."""
        out: list[Envelope | NormalizeError | None] = [None] * len(inputs)
        chunks: dict[int, tuple[SchemeVerifier, list[tuple[int, str, Statement]]]] = {}
        waiters: list[tuple[list[tuple[int, str, Statement]], SchemeVerifier, Any]] = []

        def flush(v: SchemeVerifier) -> None:
            items = chunks.pop(id(v), (v, []))[1]
            if items:
                try:
                    waiters.append((items, v, v.start_batch([st for _, _, st in items], self.ctx)))
                except NormalizeError as e:
                    failed = [e] * len(items)
                    waiters.append((items, v, lambda failed=failed: failed))

        def add(i: int, v: SchemeVerifier, fmt: str, st: Statement) -> None:
            group = chunks.setdefault(id(v), (v, []))[1]
            group.append((i, fmt, st))
            if len(group) >= self.chunk_size:
                flush(v)

        decoding: list[tuple[int, bytes, Any]] = []
        pending: list[tuple[int, str, Any]] = []  # PLONK: decoded + verified by the sidecar, in flight
        for i, inp in enumerate(inputs):
            try:
                v = self._precheck(inp)
                if isinstance(v, groth16.Groth16Verifier) and inp.format == "gnark":
                    fast = v.fast_gnark(bytes(inp.vk), bytes(inp.proof), _b(inp.public))
                    if fast is not None:
                        add(i, v, "gnark", fast)
                        continue
                    vk_raw = bytes(inp.vk)
                    decoding.append(
                        (i, vk_raw, v.submit_gnark(vk_raw, bytes(inp.proof), _b(inp.public), self.ctx))
                    )
                    continue
                if isinstance(v, plonk.PlonkVerifier):
                    pending.append(
                        (
                            i,
                            inp.format,
                            v.submit(inp.format, bytes(inp.vk), bytes(inp.proof), _b(inp.public), self.ctx),
                        )
                    )
                    continue
                _, st = self.parse(inp)
            except NormalizeError as e:
                out[i] = e
                continue
            add(i, v, inp.format, st)
        for i, fmt, pfut in pending:
            try:
                add(i, plonk.VERIFIER, fmt, plonk.VERIFIER.finish(pfut, self.ctx))
            except NormalizeError as e:
                out[i] = e
        g16 = groth16.VERIFIER
        for i, vk_raw, fut in decoding:
            try:
                add(i, g16, "gnark", g16.finish_gnark(fut, self.ctx, vk_raw))
            except NormalizeError as e:
                out[i] = e
        for v, _ in list(chunks.values()):
            flush(v)
        for items, v, wait in waiters:
            try:
                results = wait()
            except NormalizeError as e:
                results = [e] * len(items)
            for (i, fmt, st), err in zip(items, results, strict=True):
                out[i] = err if err is not None else _envelope(v, fmt, st)
        return [x if x is not None else NormalizeError(Code.INTERNAL, "input", "not processed") for x in out]

    async def anormalize(self, inp: ProofInput) -> Envelope:
        return await asyncio.to_thread(self.normalize, inp)

    async def anormalize_many(self, inputs: Sequence[ProofInput]) -> list[Envelope | NormalizeError]:
        return await asyncio.to_thread(self.normalize_many, inputs)

    def close(self) -> None:
        self.ctx.close()

    def __enter__(self) -> Normalizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _default_srs() -> str | None:
    """$SHEAF_SRS, else the INSECURE dev SRS if this machine has one (dev/test convenience: a
    production deployment passes its ceremony SRS explicitly)."""
    env = os.environ.get("SHEAF_SRS")
    if env:
        return env
    from provers.srs import dev_srs_path

    p = dev_srs_path()
    return str(p) if p.is_file() else None


def _b(x: bytes | bytearray | memoryview | None) -> bytes | None:
    # empty = absent: protobuf/gRPC callers cannot send None for a bytes field
    return bytes(x) if x else None


_default: Normalizer | None = None
_default_lock = threading.Lock()


def parse_vk(
    scheme: str,
    format: str,
    vk_bytes: bytes,
    settings: bytes | None = None,
    *,
    normalizer: Normalizer | None = None,
) -> tuple[bytes, bytes]:
    """(canonical_vk, vk_hash) for registering a key by hash. Uses a shared Normalizer unless
    one is passed (gnark keys need the sidecar)."""
    global _default
    n = normalizer
    if n is None:
        with _default_lock:
            if _default is None:
                _default = Normalizer()
            n = _default
    v = _scheme(scheme, format)
    check_size("vk", vk_bytes, n.ctx.limits.max_vk_bytes)
    if settings is not None:
        check_size("settings", settings, n.ctx.limits.max_settings_bytes)
    if isinstance(v, plonk.PlonkVerifier):
        vk = v.canonical_vk(format, bytes(vk_bytes), n.ctx)
    else:
        vk = v.parse_vk(format, bytes(vk_bytes), _b(settings), n.ctx)
    return vk.canonical, vk.vk_hash
