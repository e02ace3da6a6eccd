"""The records a proof passes through in the aggregator, and the states it and its batch take.

A proof has one record per stage; each stage adds what the previous one could not know:

1. `Submission`: the request as received over gRPC or HTTP. Untrusted: the key may be given by
   hash only, the auth fields are unchecked.
2. `normalizers.api.ProofInput`: the native proof with its verifying key resolved (scheme, format,
   proof, vk, public, settings). What a verifier checks (ours, an operator's) and what the
   recursive prover turns into a leaf. The normalizers' own input type: the aggregator has no copy.
3. `Verdict`: what native verification says about it (statement hash, vk hash, eligibility for
   the recursive circuit).
4. `NewProof`: verified, authenticated and routed (domain, kind): what the group-commit writer
   persists. The submitter is acked only after its transaction commits (`SubmitAck`).
5. `ProofRow`: the durable proof with its lifecycle (`Status`, reason, batch and leaf index).

Batches are `BatchRow`s (state `BatchState`), status history is `Event`s (what WatchProof tails),
a FINALIZED proof's receipt is an `Inclusion`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from normalizers.api import ProofInput


class Status(IntEnum):
    # Values equal sheaf.v1.ProofStatus.
    RECEIVED = 1
    VALID = 2
    QUEUED = 3
    AGGREGATING = 4
    SUBMITTED = 5
    FINALIZED = 6
    REJECTED = 7
    FAILED = 8


class BatchState:
    PENDING = "pending"  # persisted with its root and aggregation id, collecting signatures
    SIGNED = "signed"  # k signatures collected, not yet confirmed sent
    SUBMITTED = "submitted"  # transaction sent (tx_hash known), waiting for confirmations
    FINALIZED = "finalized"
    FAILED = "failed"  # abandoned (operators refused); its proofs went back to the queue


KIND_ATTESTED = "attested"
KIND_RECURSIVE = "recursive"


def make_proof_id(domain_id: int, statement_hash: bytes) -> str:
    return f"{domain_id}-{statement_hash.hex()}"


@dataclass(frozen=True)
class ChainInfo:
    chain_id: int
    registry: str  # checksummed address


@dataclass(frozen=True)
class Submission:
    """Stage 1: a prover's request, unchecked. Exactly one of vk / vk_hash is expected."""

    scheme: str
    format: str
    proof: bytes
    vk: bytes | None
    vk_hash: bytes | None
    public: bytes | None
    settings: bytes | None
    domain_id: int = 0
    prover: str = ""
    signature: bytes = b""
    nonce: int = 0
    # the client's network address as the front end saw it (gRPC peer, HTTP remote): the identity
    # quotas bind to when the prover is not allowlisted (aggregator.ingest.quota_key)
    source: str = ""


@dataclass(frozen=True)
class Verdict:
    """Stage 3: a proof that verified natively."""

    statement_hash: bytes
    vk_hash: bytes
    scheme: str
    recursion_eligible: bool  # the normalizer's flag: Groth16 without a Pedersen commitment
    n_public: int = 0  # public inputs (the recursive circuit takes exactly P)
    public_inputs: tuple[bytes, ...] = ()  # 32-byte words (whole inferences link slices by them)


@dataclass(frozen=True)
class NewProof:
    """Stage 4: verified and routed, waiting for the group commit."""

    domain_id: int
    statement_hash: bytes
    vk_hash: bytes
    kind: str
    scheme: str
    format: str
    proof: bytes
    vk: bytes
    public: bytes | None
    settings: bytes | None
    prover: str | None = None

    @property
    def proof_id(self) -> str:
        return make_proof_id(self.domain_id, self.statement_hash)


@dataclass(frozen=True)
class ProofRow:
    """Stage 5: a durable proof and where it is in its lifecycle."""

    proof_id: str
    domain_id: int
    statement_hash: bytes
    vk_hash: bytes
    kind: str
    scheme: str
    format: str
    proof: bytes
    vk: bytes
    public: bytes | None
    settings: bytes | None
    status: Status
    reason_code: str
    message: str
    batch_id: int | None
    leaf_index: int | None
    updated_ms: int

    @property
    def input(self) -> ProofInput:
        """Stage 2 again: what an operator re-verifies and the recursive prover takes."""
        return ProofInput(self.scheme, self.format, self.proof, self.vk, self.public, self.settings)


@dataclass(frozen=True)
class InsertResult:
    """The store's answer for one NewProof of a group commit."""

    proof_id: str
    duplicate: bool
    status: Status


@dataclass(frozen=True)
class SubmitAck:
    """The answer to a Submission, sent once its NewProof is durable."""

    proof_id: str
    statement_hash: bytes
    duplicate: bool
    status: Status


@dataclass(frozen=True)
class BatchRow:
    batch_id: int
    domain_id: int
    kind: str
    aggregation_id: int | None
    root: bytes
    leaf_count: int
    state: str
    tx_hash: bytes | None
    block_number: int | None
    block_hash: bytes | None
    reason: str
    created_ms: int


@dataclass(frozen=True)
class Event:
    seq: int
    proof_id: str
    status: Status
    reason_code: str
    message: str
    ts_ms: int


@dataclass(frozen=True)
class Inclusion:
    proof_id: str
    domain_id: int
    aggregation_id: int
    kind: str
    root: bytes
    leaf: bytes
    path: list[bytes]
    leaf_count: int
    index: int
    tx_hash: bytes
    block_number: int
