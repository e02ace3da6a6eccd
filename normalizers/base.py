"""The one interface every scheme implements, in the spirit of zkVerify's `Verifier` trait
(pallets/verifiers/traits): the caller (`normalizers.api.Normalizer`) never names a concrete
scheme; a scheme is one module plus one line in `normalizers.registry`.

Mapping to zkVerify's trait:
    validate_vk  -> `SchemeVerifier.validate_vk` (strict decode + curve/subgroup checks -> `ParsedVk`)
    verify_proof -> `SchemeVerifier.batch().submit(...)` -> `Pending.result()` (a verified `Statement`)
    pubs_bytes   -> `Statement.public_inputs` (32-byte big-endian scalars, hashed by statement.pubs_hash)
    vk_hash      -> `ParsedVk.vk_hash`

Unlike the trait, proofs are submitted to a `Batch` and resolved later: Groth16 proofs are checked
as one RLC batch in the sidecar, and gnark decodes are kept in flight in the sidecar while Python
parses the next input. How a scheme batches is its own business; the caller only submits, flushes
once and reads results.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar, Protocol

from normalizers.errors import NormalizeError
from normalizers.limits import Limits
from normalizers.sidecar import VerifierSidecar
from normalizers.statement import Scheme
from normalizers.statement import vk_hash as _vk_hash
from sheaf.lru import LRU


@dataclass(frozen=True)
class ParsedVk:
    """A validated verifying key: `canonical` is what `vk_hash` hashes (docs/envelope.md)."""

    scheme: Scheme
    canonical: bytes
    n_public: int
    # Scheme-private extras needed to verify (e.g. ezkl vk.key + settings bytes); never hashed
    # unless they are part of `canonical`.
    native: bytes = b""
    settings: bytes = b""
    commitments: int = 0  # gnark Groth16: BSB22 commitments (proofs then need the sidecar's decode)

    @cached_property
    def vk_hash(self) -> bytes:
        return _vk_hash(self.scheme, self.canonical)


@dataclass(frozen=True)
class Statement:
    vk: ParsedVk
    proof: bytes  # canonical proof bytes
    public_inputs: tuple[bytes, ...]  # each 32 bytes big-endian, < r
    producer_version: str = ""
    recursion_eligible: bool = False
    native_proof: bytes = b""  # what the native verifier wants, when it differs from `proof`


@dataclass
class Context:
    """Long-lived resources a scheme may use, owned by one `Normalizer`: limits, the SRS path, the
    sidecar process and the validated-vk cache (keyed by a digest of the raw vk + settings bytes:
    vk checks such as the G2 subgroup test cost ms, and proofs for one circuit share one vk)."""

    limits: Limits
    srs_path: str | None = None
    sidecar_bin: str | None = None
    groth16_backend: str = "sidecar"  # or "groth16py" (in-process arkworks, one proof at a time)
    vk_cache_size: int = 256  # also bounds each scheme's per-vk caches
    chunk_size: int = 128  # proofs per batched verification (Groth16 RLC batch)
    vks: LRU[bytes, ParsedVk] = field(init=False, repr=False)
    _sidecar: VerifierSidecar | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.vks = LRU(self.vk_cache_size)

    def cached_vk(
        self, scheme: Scheme, fmt: str, vk: bytes, settings: bytes | None, validate: Callable[[], ParsedVk]
    ) -> ParsedVk:
        """The validated key for these raw bytes, from the cache or `validate()` (then cached)."""
        return self.vks.get_or_put(vk_cache_key(scheme, fmt, vk, settings), validate)

    def sidecar(self) -> VerifierSidecar:
        with self._lock:
            if self._sidecar is None:
                self._sidecar = VerifierSidecar(self.sidecar_bin)
            return self._sidecar

    def close(self) -> None:
        with self._lock:
            sc, self._sidecar = self._sidecar, None
        if sc is not None:
            sc.close()
        self.vks.clear()


def vk_cache_key(scheme: Scheme, fmt: str, vk: bytes, settings: bytes | None) -> bytes:
    return hashlib.sha256(
        f"{scheme.label}/{fmt}/".encode()
        + hashlib.sha256(vk).digest()
        + hashlib.sha256(settings or b"").digest()
    ).digest()


class Pending:
    """One submitted proof. `result()` blocks until it is decided and returns its verified
    `Statement` or raises its `NormalizeError`; the outcome is computed once and kept."""

    __slots__ = ("_done", "_err", "_lock", "_resolve", "_st")

    def __init__(self, resolve: Callable[[], Statement]) -> None:
        self._resolve: Callable[[], Statement] | None = resolve
        self._st: Statement | None = None
        self._err: NormalizeError | None = None
        self._lock = threading.Lock()

    @classmethod
    def verified(cls, st: Statement) -> Pending:
        return cls(lambda: st)

    @classmethod
    def failed(cls, err: NormalizeError) -> Pending:
        def fail() -> Statement:
            raise err

        return cls(fail)

    def result(self) -> Statement:
        with self._lock:
            if self._resolve is not None:
                resolve, self._resolve = self._resolve, None
                try:
                    self._st = resolve()
                except NormalizeError as e:
                    self._err = e
        if self._err is not None:
            raise self._err
        assert self._st is not None
        return self._st


class Batch(Protocol):
    """The proofs of one `normalize`/`normalize_many` call for one scheme."""

    def submit(
        self, fmt: str, proof: bytes, vk: bytes, public: bytes | None, settings: bytes | None
    ) -> Pending:
        """Decode one proof strictly (or put its decode in flight) and queue its verification.
        Raises NormalizeError for an input rejected before verification; the returned Pending
        carries every later outcome. `fmt` is one of `sheaf.schemes.formats_of(scheme)`."""
        ...

    def flush(self) -> None:
        """Start verifying whatever is still queued (after the last submit). Optional for
        correctness: `Pending.result()` starts its own batch if needed."""
        ...


class SchemeVerifier(Protocol):
    """One proof system over all its producers' formats. Made once per Normalizer by the factory
    registered in `normalizers.registry` (`factory(ctx)`); may keep bounded caches (sheaf.lru.LRU),
    released by `close`. Thread-safe: one instance serves concurrent batches."""

    scheme: ClassVar[Scheme]

    def validate_vk(self, fmt: str, vk: bytes, settings: bytes | None) -> ParsedVk:
        """Strictly decode and validate a verifying key alone (curve/subgroup checks included)
        into its canonical form, as `normalize` would hash it."""
        ...

    def batch(self) -> Batch:
        """A new batch for one call's proofs (batches are not shared between calls)."""
        ...

    def close(self) -> None:
        """Release caches and their resources (e.g. memfds)."""
        ...
