"""Typed results: Python enums (by name) and frozen dataclasses with 0x-hex strings for hashes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class ProofStatus(IntEnum):
    """Values equal the proto enum numbers (sheaf.v1.ProofStatus)."""

    UNSPECIFIED = 0
    RECEIVED = 1
    VALID = 2
    QUEUED = 3
    AGGREGATING = 4
    SUBMITTED = 5
    FINALIZED = 6
    REJECTED = 7
    FAILED = 8

    @property
    def terminal(self) -> bool:
        return self in (ProofStatus.FINALIZED, ProofStatus.REJECTED, ProofStatus.FAILED)


class AggregationKind(IntEnum):
    """Values equal the registry's kind byte (SheafRegistry.KIND_*) and the proto enum."""

    UNSPECIFIED = 0
    RECURSIVE = 1
    ATTESTED = 2


class Scheme(IntEnum):
    """Value = the scheme byte of the statement hash and the proto enum number."""

    UNSPECIFIED = 0
    GROTH16 = 1
    PLONK = 2
    HALO2 = 3

    @property
    def label(self) -> str:
        """The lowercase name the SubmitProof request takes ("groth16", ...)."""
        return self.name.lower()

    @classmethod
    def parse(cls, value: Scheme | str | int) -> Scheme:
        if isinstance(value, str):
            try:
                s = cls[value.upper()]
            except KeyError:
                raise ValueError(f"unknown scheme {value!r:.40}") from None
        else:
            s = cls(value)
        if s is cls.UNSPECIFIED:
            raise ValueError("scheme must be GROTH16, PLONK or HALO2")
        return s


def _enum(cls: type[Any], v: int) -> Any:
    try:
        return cls(v)
    except ValueError:  # a newer server's value: keep it visible as UNSPECIFIED rather than crash
        return cls(0)


def to_hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _opt_hex(b: bytes) -> str | None:
    return to_hex(b) if b else None


def from_hex(s: str | bytes) -> bytes:
    """bytes as-is; a hex string with or without 0x."""
    if isinstance(s, bytes | bytearray):
        return bytes(s)
    return bytes.fromhex(s.removeprefix("0x").removeprefix("0X"))


@dataclass(frozen=True)
class SubmitResult:
    proof_id: str
    statement_hash: str  # 0x-hex, 32 bytes
    duplicate: bool  # the same statement was already accepted in this domain
    status: ProofStatus

    @classmethod
    def from_pb(cls, m: Any) -> SubmitResult:
        return cls(m.proof_id, to_hex(m.statement_hash), bool(m.duplicate), _enum(ProofStatus, m.status))


@dataclass(frozen=True)
class StatusUpdate:
    proof_id: str
    status: ProofStatus
    reason_code: str  # set for REJECTED / FAILED (stable code, e.g. VERIFICATION_FAILED)
    message: str
    aggregation_id: int  # 0 until the batch has its on-chain id
    domain_id: int
    tx_hash: str | None  # 0x-hex once SUBMITTED
    updated_unix_ms: int
    scheme: Scheme
    vk_hash: str | None
    batch_id: int = 0  # the aggregator's batch holding the proof (0 before it is batched)
    # while the batch is proved recursively: the prover's progress, e.g. "level 1 of 2, 3 of 4 jobs
    # done" (recursion tree) or "attempt 1 of 3" (flat circuit); None otherwise (GetProofStatus only)
    progress: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @classmethod
    def from_pb(cls, m: Any) -> StatusUpdate:
        return cls(
            proof_id=m.proof_id,
            status=_enum(ProofStatus, m.status),
            reason_code=m.reason_code,
            message=m.message,
            aggregation_id=int(m.aggregation_id),
            domain_id=int(m.domain_id),
            tx_hash=_opt_hex(m.tx_hash),
            updated_unix_ms=int(m.updated_unix_ms),
            scheme=_enum(Scheme, m.scheme),
            vk_hash=_opt_hex(m.vk_hash),
            batch_id=int(m.batch_id),
            progress=m.progress if m.HasField("progress") else None,
        )


@dataclass(frozen=True)
class Aggregation:
    domain_id: int
    aggregation_id: int
    batch_id: int
    kind: AggregationKind
    root: str
    leaf_count: int
    state: str  # pending | signed | submitted | finalized | failed (BATCH_STATES)
    tx_hash: str | None
    block_number: int
    leaves: tuple[str, ...]  # statement hashes, in leaf order (empty in list_aggregations' pages)
    reason: str = ""  # why a failed batch failed
    created_unix_ms: int = 0

    @classmethod
    def from_pb(cls, m: Any) -> Aggregation:
        return cls(
            domain_id=int(m.domain_id),
            aggregation_id=int(m.aggregation_id),
            batch_id=int(m.batch_id),
            kind=_enum(AggregationKind, m.kind),
            root=to_hex(m.root),
            leaf_count=int(m.leaf_count),
            state=m.state,
            tx_hash=_opt_hex(m.tx_hash),
            block_number=int(m.block_number),
            leaves=tuple(to_hex(x) for x in m.leaves),
            reason=m.reason,
            created_unix_ms=int(m.created_unix_ms),
        )


# The batch states an Aggregation's `state` takes (and list_aggregations' `state` filter): the
# aggregator's spelling, in lower case, as in the HTTP API.
BATCH_STATES = ("pending", "signed", "submitted", "finalized", "failed")


@dataclass(frozen=True)
class ProofSummary:
    """One entry of list_proofs (the fields of GET /v1/proofs' entries)."""

    proof_id: str
    status: ProofStatus
    reason_code: str
    message: str
    domain_id: int
    scheme: Scheme
    format: str  # producer format ("snarkjs", "gnark", "ezkl")
    kind: AggregationKind  # the route it takes: RECURSIVE or ATTESTED
    statement_hash: str
    vk_hash: str
    submitter: str | None  # the authenticated prover's address, None when not authenticated
    batch_id: int | None
    leaf_index: int | None
    aggregation_id: int | None
    tx_hash: str | None  # once SUBMITTED
    created_unix_ms: int
    updated_unix_ms: int

    @classmethod
    def from_pb(cls, m: Any) -> ProofSummary:
        return cls(
            proof_id=m.proof_id,
            status=_enum(ProofStatus, m.status),
            reason_code=m.reason_code,
            message=m.message,
            domain_id=int(m.domain_id),
            scheme=_enum(Scheme, m.scheme),
            format=m.format,
            kind=_enum(AggregationKind, m.kind),
            statement_hash=to_hex(m.statement_hash),
            vk_hash=to_hex(m.vk_hash),
            submitter=m.submitter or None,
            batch_id=int(m.batch_id) or None,
            leaf_index=int(m.leaf_index) if m.HasField("leaf_index") else None,
            aggregation_id=int(m.aggregation_id) or None,
            tx_hash=_opt_hex(m.tx_hash),
            created_unix_ms=int(m.created_unix_ms),
            updated_unix_ms=int(m.updated_unix_ms),
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, newest first; pass `next_cursor` as `cursor` for the next one (None: this
    was the last page)."""

    items: tuple[T, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class InclusionProof:
    """Everything `ISheafRegistry.verifyProofAggregation` takes, plus where to call it."""

    proof_id: str
    domain_id: int
    aggregation_id: int
    kind: AggregationKind
    root: str
    leaf: str  # the statement hash
    merkle_path: tuple[str, ...]
    leaf_count: int
    index: int
    tx_hash: str | None
    block_number: int
    registry: str  # registry contract address
    chain_id: int

    def registry_args(self) -> tuple[int, int, str, list[str], int, int]:
        """(domainId, aggregationId, leaf, merklePath, leafCount, index) for verifyProofAggregation."""
        return (
            self.domain_id,
            self.aggregation_id,
            self.leaf,
            list(self.merkle_path),
            self.leaf_count,
            self.index,
        )

    @classmethod
    def from_pb(cls, m: Any) -> InclusionProof:
        return cls(
            proof_id=m.proof_id,
            domain_id=int(m.domain_id),
            aggregation_id=int(m.aggregation_id),
            kind=_enum(AggregationKind, m.kind),
            root=to_hex(m.root),
            leaf=to_hex(m.leaf),
            merkle_path=tuple(to_hex(x) for x in m.merkle_path),
            leaf_count=int(m.leaf_count),
            index=int(m.index),
            tx_hash=_opt_hex(m.tx_hash),
            block_number=int(m.block_number),
            registry=m.registry,
            chain_id=int(m.chain_id),
        )


@dataclass(frozen=True)
class ProverAuth:
    """A signed submission (when the aggregator requires prover authentication): `signature` is an
    EIP-191 personal_sign signature over `submission_digest(domain_id, statement_hash, nonce)`."""

    prover: str
    signature: bytes
    nonce: int
