"""The one small interface every scheme implements (in the style of zkVerify's pallets/verifiers).

A scheme module parses a producer's files into a `Statement` (canonical vk, canonical proof,
32-byte public inputs) and checks a batch of statements. Adding a scheme = one new module exposing
a `SchemeVerifier` and one line in `normalizers.api.SCHEMES`.

Mapping to zkVerify's `Verifier` trait: `validate_vk` = `parse_vk` (strict decode + curve/subgroup
checks, returns the canonical `ParsedVk`), `verify_proof` = `verify_batch`/`start_batch` (batched
because Groth16 verification is done as one RLC batch), `pubs_bytes` = `Statement.public_inputs`
(32-byte big-endian scalars, hashed by `statement.pubs_hash`), `vk_hash` = `ParsedVk.vk_hash`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from normalizers.errors import NormalizeError
from normalizers.limits import Limits
from normalizers.statement import Scheme
from normalizers.statement import vk_hash as _vk_hash

if TYPE_CHECKING:
    from normalizers.sidecar import Sidecar


@dataclass(frozen=True)
class ParsedVk:
    scheme: Scheme
    canonical: bytes
    n_public: int
    # Scheme-private extras needed to verify (e.g. ezkl vk.key + settings bytes); never hashed
    # unless they are part of `canonical`.
    native: bytes = b""
    settings: bytes = b""

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
    verified: bool = False  # already verified while decoding (sidecar groth16.normalize / plonk.normalize)


@dataclass
class Context:
    """Long-lived resources a scheme may use; owned by `Normalizer`."""

    limits: Limits
    srs_path: str | None = None
    sidecar_bin: str | None = None
    groth16_backend: str = "sidecar"  # or "groth16py" (in-process arkworks, one proof at a time)
    _sidecar: Sidecar | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def sidecar(self) -> Sidecar:
        with self._lock:
            if self._sidecar is None:
                from normalizers.sidecar import Sidecar

                self._sidecar = Sidecar(self.sidecar_bin)
            return self._sidecar

    def close(self) -> None:
        with self._lock:
            sc, self._sidecar = self._sidecar, None
        if sc is not None:
            sc.close()


class SchemeVerifier(Protocol):
    scheme: Scheme
    formats: frozenset[str]

    def parse_vk(self, fmt: str, vk: bytes, settings: bytes | None, ctx: Context) -> ParsedVk:
        """Strictly decode and validate a verifying key (curve/subgroup checks included)."""
        ...

    def parse(self, fmt: str, proof: bytes, vk: ParsedVk, public: bytes | None, ctx: Context) -> Statement:
        """Strictly decode proof + public inputs against an already-validated vk."""
        ...

    def verify_batch(self, items: Sequence[Statement], ctx: Context) -> list[NormalizeError | None]:
        """Verify each statement; None = valid. Must not raise for a bad proof."""
        ...

    def start_batch(
        self, items: Sequence[Statement], ctx: Context
    ) -> Callable[[], list[NormalizeError | None]]:
        """Start verifying (possibly in another process) and return a waiter for the results."""
        ...
