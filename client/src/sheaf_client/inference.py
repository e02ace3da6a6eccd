"""Whole-inference verification on the client side (docs/inference.md): model specs, their id, and
the receipt check, computed locally. The spec is SheafInference.sol / the repo's sheaf/inference.py;
tests/client/test_client_inference.py holds this module equal to them (the committed vectors
tests/vectors/model_id.json, random models and every refusal), as statement.py is held equal to
the statement hash. The package stays standalone (no import of the server's code).

    model_id       = keccak256(abi.encode(keccak256("sheaf/model/v1"), SliceSpec[] slices))
    inference_hash = keccak256(keccak256("sheaf/inference/v1") || model_id || stmt_0 || ... || stmt_{n-1})

`verify_receipt(model, receipt, ...)` answers what `SheafInference.verifyInference` answers (same
error names and slice indices), plus the app's own checks of `ExampleInferenceConsumer`
(`InputMismatch`, `OutputLengthMismatch`, `OutputMismatch`). Inclusion: each slice's Merkle path
must lead to the root the receipt states; pass `included=` to check against the chain instead (the
registry's verifyProofAggregationKind), which is what makes the answer trustless.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sheaf_client.statement import BN254_R, keccak256, statement_hash
from sheaf_client.types import AggregationKind, ProofStatus, Scheme, StatusUpdate, _enum, from_hex, to_hex

MODEL_ID_TAG = keccak256(b"sheaf/model/v1")
INFERENCE_TAG = keccak256(b"sheaf/inference/v1")
MAX_SLICES = 64


class InferenceError(ValueError):
    """A refusal named like the contract's custom error (`error`), with its arguments (`args_`)."""

    def __init__(self, error: str, *args_: int | bytes) -> None:
        shown = ", ".join(a.hex() if isinstance(a, bytes) else str(a) for a in args_)
        super().__init__(f"{error}({shown})")
        self.error = error
        self.args_ = args_


@dataclass(frozen=True)
class SliceSpec:
    """One slice of a model (ISheafInference.SliceSpec). An unproven slice has only proven=False."""

    proven: bool
    scheme: int = 0
    vk_hash: str = "0x" + "00" * 32
    public_input_count: int = 0
    in_commit_index: int = 0
    out_commit_index: int = 0
    output_indices: tuple[int, ...] = ()

    @classmethod
    def unproven(cls) -> SliceSpec:
        return cls(proven=False)

    @classmethod
    def from_pb(cls, m: Any) -> SliceSpec:
        return cls(
            bool(m.proven),
            int(m.scheme),
            to_hex(bytes(m.vk_hash) or bytes(32)),
            int(m.public_input_count),
            int(m.in_commit_index),
            int(m.out_commit_index),
            tuple(int(x) for x in m.output_indices),
        )

    def abi(self) -> tuple[bool, int, bytes, int, int, int, list[int]]:
        """The ABI tuple for web3 / eth-abi."""
        return (
            self.proven,
            self.scheme,
            from_hex(self.vk_hash),
            self.public_input_count,
            self.in_commit_index,
            self.out_commit_index,
            list(self.output_indices),
        )


@dataclass(frozen=True)
class SliceInput:
    """One slice of an inference to submit; None in `submit_inference` for an unproven slice."""

    format: str
    proof: bytes
    vk: bytes | None = None
    vk_hash: bytes | str | None = None
    public: bytes | None = None
    settings: bytes | None = None
    scheme: Scheme | str | None = None  # default: the model's scheme for that slice


@dataclass(frozen=True)
class InferenceSubmitted:
    inference_id: str
    inference_hash: str
    duplicate: bool
    status: ProofStatus
    proof_ids: tuple[str, ...]  # "" for an unproven slice

    @classmethod
    def from_pb(cls, m: Any) -> InferenceSubmitted:
        return cls(
            m.inference_id,
            to_hex(m.inference_hash),
            bool(m.duplicate),
            _enum(ProofStatus, m.status),
            tuple(m.proof_ids),
        )


@dataclass(frozen=True)
class InferenceStatus:
    inference_id: str
    model_id: str
    domain_id: int
    inference_hash: str
    status: ProofStatus
    slices: tuple[StatusUpdate | None, ...]  # None for an unproven slice

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @classmethod
    def from_pb(cls, m: Any) -> InferenceStatus:
        return cls(
            m.inference_id,
            to_hex(m.model_id),
            int(m.domain_id),
            to_hex(m.inference_hash),
            _enum(ProofStatus, m.status),
            tuple(StatusUpdate.from_pb(s) if s.proof_id else None for s in m.slices),
        )


@dataclass(frozen=True)
class ReceiptSlice:
    """One entry of verifyInference's `proofs` (all empty for an unproven slice) and where it is."""

    proven: bool
    proof_id: str = ""
    public_inputs: tuple[int, ...] = ()
    aggregation_id: int = 0
    merkle_path: tuple[str, ...] = ()
    leaf_count: int = 0
    index: int = 0
    kind: AggregationKind = AggregationKind.UNSPECIFIED
    statement_hash: str = ""
    root: str = ""
    tx_hash: str = ""
    block_number: int = 0

    def abi(self) -> tuple[list[int], int, list[bytes], int, int]:
        """ISheafInference.SliceProof for web3 / eth-abi."""
        return (
            list(self.public_inputs),
            self.aggregation_id,
            [from_hex(p) for p in self.merkle_path],
            self.leaf_count,
            self.index,
        )


@dataclass(frozen=True)
class InferenceReceipt:
    inference_id: str
    model_id: str
    domain_id: int
    inference_hash: str
    slices: tuple[ReceiptSlice, ...]
    output: tuple[int, ...]
    output_slice: int
    input_commitment: int
    registry: str
    chain_id: int

    def proofs_abi(self) -> list[tuple[list[int], int, list[bytes], int, int]]:
        """verifyInference's / acceptInference's `proofs` argument."""
        return [s.abi() for s in self.slices]

    @classmethod
    def from_pb(cls, m: Any) -> InferenceReceipt:
        def word(b: bytes) -> int:
            return int.from_bytes(b, "big")

        slices = tuple(
            ReceiptSlice(
                True,
                s.proof_id,
                tuple(word(p) for p in s.public_inputs),
                int(s.aggregation_id),
                tuple(to_hex(p) for p in s.merkle_path),
                int(s.leaf_count),
                int(s.index),
                _enum(AggregationKind, s.kind),
                to_hex(s.statement_hash),
                to_hex(s.root),
                to_hex(s.tx_hash),
                int(s.block_number),
            )
            if s.proven
            else ReceiptSlice(False)
            for s in m.slices
        )
        return cls(
            m.inference_id,
            to_hex(m.model_id),
            int(m.domain_id),
            to_hex(m.inference_hash),
            slices,
            tuple(word(v) for v in m.output),
            int(m.output_slice),
            word(m.input_commitment),
            m.registry,
            int(m.chain_id),
        )


@dataclass(frozen=True)
class Segment:
    first: int
    last: int
    in_commit: int
    out_commit: int


@dataclass(frozen=True)
class InferenceResult:
    """What verifyInference returns."""

    inference_hash: str
    output: tuple[int, ...]
    output_slice: int
    proven_mask: int
    fully_proven: bool
    segments: tuple[Segment, ...]
    kinds: tuple[int, ...] = field(default=())


# ------------------------------------------------------------------------------------------ model id


def _w(v: int) -> bytes:
    return v.to_bytes(32, "big")


def encode_model(slices: Sequence[SliceSpec]) -> bytes:
    """abi.encode(MODEL_ID_TAG, SliceSpec[] slices)."""
    bodies = []
    for s in slices:
        vk = from_hex(s.vk_hash)
        if len(vk) != 32:
            raise ValueError("vk_hash must be 32 bytes")
        head = (
            _w(int(s.proven))
            + _w(s.scheme)
            + vk
            + _w(s.public_input_count)
            + _w(s.in_commit_index)
            + _w(s.out_commit_index)
            + _w(7 * 32)
        )
        bodies.append(head + _w(len(s.output_indices)) + b"".join(_w(i) for i in s.output_indices))
    offsets, at = b"", 32 * len(bodies)
    for b in bodies:
        offsets += _w(at)
        at += len(b)
    return MODEL_ID_TAG + _w(0x40) + _w(len(bodies)) + offsets + b"".join(bodies)


def model_id(slices: Sequence[SliceSpec]) -> str:
    """0x-hex model id: SheafInference.modelIdOf(slices)."""
    return to_hex(keccak256(encode_model(slices)))


# ------------------------------------------------------------------------------------ receipt check


def merkle_verify(root: bytes, leaf: bytes, path: Sequence[bytes], leaf_count: int, index: int) -> bool:
    """The registry's Merkle check (Substrate binary_merkle_tree layout, as contracts/src/Merkle.sol)."""
    if not 0 <= index < leaf_count or len(leaf) != 32 or any(len(p) != 32 for p in path):
        return False
    h, width, pos, used = keccak256(leaf), leaf_count, index, 0
    while width > 1:
        if pos % 2 == 1 or pos + 1 < width:
            if used == len(path):
                return False
            h = keccak256(path[used] + h) if pos % 2 == 1 else keccak256(h + path[used])
            used += 1
        pos //= 2
        width = (width + 1) // 2
    return used == len(path) and h == root


# (aggregation_id, leaf, path, leaf_count, index) -> kind found (1 RECURSIVE, 2 ATTESTED) or 0
InclusionCheck = Callable[[int, bytes, Sequence[bytes], int, int], int]


def receipt_roots(receipt: InferenceReceipt) -> InclusionCheck:
    """Inclusion against the roots the receipt states (consistency only: the chain is not asked)."""
    roots = {(s.aggregation_id, from_hex(s.statement_hash)): s for s in receipt.slices if s.proven}

    def check(agg: int, leaf: bytes, path: Sequence[bytes], n: int, index: int) -> int:
        s = roots.get((agg, leaf))
        if s is None or not merkle_verify(from_hex(s.root), leaf, path, n, index):
            return 0
        return int(s.kind)

    return check


def verify_inference(
    model: Sequence[SliceSpec],
    slices: Sequence[ReceiptSlice],
    required_kind: int,
    included: InclusionCheck,
) -> InferenceResult:
    """SheafInference.verifyInference for a registered model (the model is assumed valid: it was
    registered), or the InferenceError it reverts with."""
    if not 0 <= required_kind <= 2:
        raise InferenceError("InvalidRequiredKind", required_kind)
    n = len(model)
    if len(slices) != n:
        raise InferenceError("SliceCountMismatch", n, len(slices))
    output_slice = max(i for i, s in enumerate(model) if s.proven)
    stmts: list[bytes] = []
    kinds: list[int] = []
    segs: list[Segment] = []
    output: tuple[int, ...] = ()
    prev: int | None = None
    for i, (s, p) in enumerate(zip(model, slices, strict=True)):
        if not s.proven:
            if p.public_inputs or p.merkle_path or p.aggregation_id or p.leaf_count or p.index:
                raise InferenceError("UnprovenSliceHasProof", i)
            stmts.append(bytes(32))
            kinds.append(0)
            prev = None
            continue
        pubs = p.public_inputs
        if len(pubs) != s.public_input_count:
            raise InferenceError("PublicInputCountMismatch", i, s.public_input_count, len(pubs))
        for j, v in enumerate(pubs):
            if not 0 <= v < BN254_R:
                raise InferenceError("NonCanonicalPublicInput", i, j)
        stmt = from_hex(statement_hash(s.scheme, s.vk_hash, list(pubs)))
        kind = included(p.aggregation_id, stmt, [from_hex(x) for x in p.merkle_path], p.leaf_count, p.index)
        if kind == 0:
            raise InferenceError("SliceNotIncluded", i, stmt)
        if required_kind != 0 and kind != required_kind:
            raise InferenceError("SliceWrongKind", i, required_kind, kind)
        in_c, out_c = pubs[s.in_commit_index], pubs[s.out_commit_index]
        if prev is not None:
            if in_c != prev:
                raise InferenceError("BrokenLink", i, prev, in_c)
            segs[-1] = Segment(segs[-1].first, i, segs[-1].in_commit, out_c)
        else:
            segs.append(Segment(i, i, in_c, out_c))
        prev = out_c
        stmts.append(stmt)
        kinds.append(kind)
        if i == output_slice:
            output = tuple(pubs[k] for k in s.output_indices)
    mid = from_hex(model_id(model))
    return InferenceResult(
        to_hex(keccak256(INFERENCE_TAG + mid + b"".join(stmts))),
        output,
        output_slice,
        sum(1 << i for i, s in enumerate(model) if s.proven),
        len(segs) == 1 and segs[0].first == 0 and segs[0].last == n - 1,
        tuple(segs),
        tuple(kinds),
    )


def verify_receipt(
    model: Sequence[SliceSpec],
    receipt: InferenceReceipt,
    *,
    required_kind: AggregationKind | int = 0,
    input_commitment: int | None = None,
    expected_output: Sequence[int] | None = None,
    included: InclusionCheck | None = None,
) -> InferenceResult:
    """Check a receipt off-chain as SheafInference.verifyInference and ExampleInferenceConsumer would:
    the model's id must be the receipt's, then verifyInference's checks (inclusion through `included`,
    default: the receipt's own roots), then the app's: `input_commitment` (InputMismatch) and
    `expected_output` (OutputLengthMismatch / OutputMismatch) when given. Raises InferenceError."""
    mid = model_id(model)
    if mid != receipt.model_id:
        raise InferenceError("ModelMismatch", from_hex(mid), from_hex(receipt.model_id))
    r = verify_inference(model, receipt.slices, int(required_kind), included or receipt_roots(receipt))
    proven_input = r.segments[0].in_commit
    if input_commitment is not None and input_commitment != proven_input:
        raise InferenceError("InputMismatch", input_commitment, proven_input)
    if expected_output is not None:
        if len(expected_output) != len(r.output):
            raise InferenceError("OutputLengthMismatch", len(expected_output), len(r.output))
        for j, (a, b) in enumerate(zip(expected_output, r.output, strict=True)):
            if a != b:
                raise InferenceError("OutputMismatch", j, a, b)
    return r
