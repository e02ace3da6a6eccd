"""Public API of the normalizers: ProofInput in, Envelope out (docs/envelope.md).

n = Normalizer()                       # owns the gnark sidecar, the ezkl SRS path and the caches
env = n.normalize(ProofInput("groth16", "snarkjs", proof, vk, public=pub))
envs = n.normalize_many(inputs)        # Groth16 verification batched in one sidecar call
canonical_vk, vk_hash = parse_vk("halo2", "ezkl", vk_bytes, settings_bytes, normalizer=n)

Every scheme is reached through the `SchemeVerifier` interface (normalizers.base) of the verifier
that `normalizers.registry` lists for it; nothing here knows a concrete scheme.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from normalizers.base import Batch, Context, ParsedVk, Pending, SchemeVerifier, Statement
from normalizers.errors import Code, NormalizeError
from normalizers.limits import DEFAULT_LIMITS, Limits, check_size
from normalizers.registry import VERIFIERS, VerifierFactory
from normalizers.statement import ENVELOPE_VERSION, statement_hash
from sheaf.paths import default_srs
from sheaf.schemes import PRODUCER_NAMES, SCHEME_NAMES, Producer, Scheme, formats_of

SCHEMES: tuple[str, ...] = SCHEME_NAMES
PRODUCERS: tuple[str, ...] = PRODUCER_NAMES
CURVE = "bn254"

_BY_LABEL: Mapping[str, Scheme] = MappingProxyType({s.label: s for s in Scheme})
_T = TypeVar("_T")


@dataclass(frozen=True)
class ProofInput:
    """Raw file contents as the prover wrote them."""

    scheme: str  # one of SCHEMES: "groth16" | "plonk" | "halo2"
    format: str  # one of sheaf.schemes.formats_of(scheme): "gnark" | "snarkjs" | "ezkl"
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
        # Lazy on purpose: sheaf.v1 is generated from proto/ at `make setup` (never committed), and
        # only callers that want protobuf need it; normalizing works without the generated code.
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


def _envelope(scheme: Scheme, fmt: str, st: Statement) -> Envelope:
    vh = st.vk.vk_hash
    return Envelope(
        scheme=scheme.label,
        curve=CURVE,
        producer_kind=Producer[fmt.upper()].label,
        producer_version=st.producer_version,
        vk_hash=vh,
        public_inputs=st.public_inputs,
        proof=st.proof,
        statement_hash=statement_hash(scheme, vh, st.public_inputs),
        canonical_vk=st.vk.canonical,
        recursion_eligible=st.recursion_eligible,
    )


def _guard(fn: Callable[[], _T]) -> _T:
    """Run a scheme's code: a parser/verifier bug must still surface as a coded error, not a crash."""
    try:
        return fn()
    except NormalizeError:
        raise
    except Exception as e:
        raise NormalizeError(Code.INTERNAL, "input", f"{type(e).__name__}: {e}"[:300]) from e


def _present_or_none(x: bytes | bytearray | memoryview | None) -> bytes | None:
    # empty = absent: protobuf/gRPC callers cannot send None for a bytes field
    return bytes(x) if x else None


@dataclass(frozen=True)
class _Routed:
    """A prechecked input: its scheme, verifier and bytes."""

    scheme: Scheme
    fmt: str
    verifier: SchemeVerifier
    proof: bytes
    vk: bytes
    public: bytes | None
    settings: bytes | None

    def submit(self, batch: Batch) -> Pending:
        return _guard(lambda: batch.submit(self.fmt, self.proof, self.vk, self.public, self.settings))


class Normalizer:
    """Thread-safe. Owns one verifier per scheme (made by `verifiers`, default the registry), the
    sidecar and every cache (bounded: `vk_cache_size` validated keys, and as many per-vk entries
    in each scheme's caches); `close` releases them."""

    def __init__(
        self,
        *,
        srs: str | Path | None = None,
        limits: Limits = DEFAULT_LIMITS,
        sidecar_bin: str | None = None,
        groth16_backend: str = "sidecar",
        vk_cache_size: int = 256,
        chunk_size: int = 128,
        verifiers: Mapping[Scheme, VerifierFactory] = VERIFIERS,
    ) -> None:
        if srs is None:
            srs = default_srs()
        self.ctx = Context(
            limits=limits,
            srs_path=str(srs) if srs else None,
            sidecar_bin=sidecar_bin,
            groth16_backend=groth16_backend,
            vk_cache_size=vk_cache_size,
            chunk_size=chunk_size,
        )
        self._verifiers: dict[Scheme, SchemeVerifier] = {s: make(self.ctx) for s, make in verifiers.items()}

    @property
    def chunk_size(self) -> int:
        return self.ctx.chunk_size

    # -- routing and prechecks (scheme-independent)
    def _verifier(self, scheme: object, fmt: object) -> tuple[Scheme, SchemeVerifier]:
        s = _BY_LABEL.get(scheme) if isinstance(scheme, str) else None
        v = self._verifiers.get(s) if s is not None else None
        if s is None or v is None:
            raise NormalizeError(Code.UNSUPPORTED_FORMAT, "scheme", f"unknown scheme {scheme!r:.40}")
        formats = formats_of(s)
        if fmt not in formats:
            raise NormalizeError(
                Code.UNSUPPORTED_FORMAT,
                "format",
                f"{s.label} does not support format {fmt!r:.40} (use {sorted(formats)})",
            )
        return s, v

    def _precheck(self, inp: ProofInput) -> _Routed:
        if not isinstance(inp, ProofInput):
            raise NormalizeError(Code.MALFORMED, "input", "expected a ProofInput")
        s, v = self._verifier(inp.scheme, inp.format)
        for name in ("proof", "vk", "public", "settings"):
            val = getattr(inp, name)
            if val is not None and not isinstance(val, bytes | bytearray | memoryview):
                raise NormalizeError(Code.MALFORMED, name, f"expected bytes, got {type(val).__name__}")
        lim = self.ctx.limits
        check_size("proof", inp.proof, lim.max_proof_bytes)
        check_size("vk", inp.vk, lim.max_vk_bytes)
        if inp.public is not None:
            check_size("public", inp.public, lim.max_public_bytes)
        if inp.settings is not None:
            check_size("settings", inp.settings, lim.max_settings_bytes)
        return _Routed(
            s,
            inp.format,
            v,
            bytes(inp.proof),
            bytes(inp.vk),
            _present_or_none(inp.public),
            _present_or_none(inp.settings),
        )

    # -- the API
    def validate_vk(self, scheme: str, format: str, vk: bytes, settings: bytes | None = None) -> ParsedVk:
        """The validated canonical key (what `normalize` hashes), without a proof; cached."""
        _, v = self._verifier(scheme, format)
        check_size("vk", vk, self.ctx.limits.max_vk_bytes)
        if settings is not None:
            check_size("settings", settings, self.ctx.limits.max_settings_bytes)
        return _guard(lambda: v.validate_vk(format, bytes(vk), _present_or_none(settings)))

    def normalize(self, inp: ProofInput) -> Envelope:
        r = self._precheck(inp)
        batch = _guard(r.verifier.batch)
        pending = r.submit(batch)
        batch.flush()
        return _envelope(r.scheme, r.fmt, _guard(pending.result))

    def normalize_many(self, inputs: Sequence[ProofInput]) -> list[Envelope | NormalizeError]:
        """Submit all, then read the results: each scheme's batch keeps its sidecar work in flight
        while Python parses the next input (Groth16 chunks are verified as one RLC batch each as
        they fill; gnark and PLONK decodes are in flight from submit on)."""
        out: list[Envelope | NormalizeError] = []
        batches: dict[Scheme, Batch] = {}
        submitted: list[tuple[int, Scheme, str, Pending]] = []
        for i, inp in enumerate(inputs):
            out.append(NormalizeError(Code.INTERNAL, "input", "not processed"))
            try:
                r = self._precheck(inp)
                batch = batches.get(r.scheme)
                if batch is None:
                    batch = batches[r.scheme] = _guard(r.verifier.batch)
                submitted.append((i, r.scheme, r.fmt, r.submit(batch)))
            except NormalizeError as e:
                out[i] = e
        for batch in batches.values():
            try:
                _guard(batch.flush)
            except NormalizeError:
                pass  # each pending of that batch reports it when read
        for i, scheme, fmt, pending in submitted:
            try:
                out[i] = _envelope(scheme, fmt, _guard(pending.result))
            except NormalizeError as e:
                out[i] = e
        return out

    async def anormalize(self, inp: ProofInput) -> Envelope:
        return await asyncio.to_thread(self.normalize, inp)

    async def anormalize_many(self, inputs: Sequence[ProofInput]) -> list[Envelope | NormalizeError]:
        return await asyncio.to_thread(self.normalize_many, inputs)

    def close(self) -> None:
        for v in self._verifiers.values():
            v.close()
        self.ctx.close()

    def __enter__(self) -> Normalizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_vk(
    scheme: str,
    format: str,
    vk_bytes: bytes,
    settings: bytes | None = None,
    *,
    normalizer: Normalizer | None = None,
) -> tuple[bytes, bytes]:
    """(canonical_vk, vk_hash) for registering a key by hash: `normalizer.validate_vk`. Without a
    normalizer, a temporary one is made and closed (gnark keys then start a sidecar for the call:
    pass the long-lived one)."""
    if normalizer is not None:
        vk = normalizer.validate_vk(scheme, format, vk_bytes, settings)
    else:
        with Normalizer() as n:
            vk = n.validate_vk(scheme, format, vk_bytes, settings)
    return vk.canonical, vk.vk_hash
