"""Whole-inference verification, the Python spec of contracts/src/SheafInference.sol (docs/inference.md).

A model is an ordered list of slices (`SliceSpec`); its id is

    model_id = keccak256(abi.encode(MODEL_ID_TAG, SliceSpec[] slices))
    MODEL_ID_TAG = keccak256("sheaf/model/v1")
    SliceSpec = (bool proven, uint8 scheme, bytes32 vkHash, uint16 publicInputCount,
                 uint16 inCommitIndex, uint16 outCommitIndex, uint16[] outputIndices)

`verify_inference` is the receipt check: exactly what `SheafInference.verifyInference` accepts and
returns, with the registry's inclusion check behind a parameter, and the same error names (the
Solidity custom errors) and slice indices when it refuses. Pure functions over the shared base only
(sheaf/ is the bottom layer); the statement hash is `sheaf.statement`'s, the one Python definition
(contracts/src/StatementHash.sol computes the same; the committed vectors hold them equal).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sheaf import statement as _statement
from sheaf.hashing import keccak256
from sheaf.schemes import Scheme
from sheaf.statement import BN254_R

__all__ = [
    "ERROR_SIGNATURES",
    "INFERENCE_TAG",
    "KIND_ANY",
    "KIND_ATTESTED",
    "KIND_RECURSIVE",
    "MAX_SCHEME",
    "MAX_SLICES",
    "MODEL_ID_TAG",
    "InclusionCheck",
    "InferenceError",
    "InferenceResult",
    "Segment",
    "SliceProof",
    "SliceSpec",
    "encode_model",
    "inference_hash",
    "model_id",
    "statement_hash",
    "validate_model",
    "verify_inference",
]

MODEL_ID_TAG = keccak256(b"sheaf/model/v1")
INFERENCE_TAG = keccak256(b"sheaf/inference/v1")
MAX_SLICES = 64
MAX_SCHEME = 3  # 1 Groth16, 2 PLONK, 3 Halo2 (sheaf.schemes.Scheme)
KIND_ANY, KIND_RECURSIVE, KIND_ATTESTED = 0, 1, 2
_U16 = 1 << 16


# The contract's custom errors (ISheafInference) and their argument types: every argument is a static
# ABI word, so revert data = selector || args as 32-byte words.
ERROR_SIGNATURES: dict[str, str] = {
    "NoSlices": "NoSlices()",
    "TooManySlices": "TooManySlices(uint256,uint256)",
    "NoProvenSlice": "NoProvenSlice()",
    "InvalidScheme": "InvalidScheme(uint256,uint8)",
    "ZeroVkHash": "ZeroVkHash(uint256)",
    "ZeroPublicInputCount": "ZeroPublicInputCount(uint256)",
    "CommitIndexOutOfRange": "CommitIndexOutOfRange(uint256,uint256,uint256)",
    "SameInOutCommit": "SameInOutCommit(uint256)",
    "OutputIndexOutOfRange": "OutputIndexOutOfRange(uint256,uint256,uint256)",
    "OutputIndicesNotAscending": "OutputIndicesNotAscending(uint256,uint256)",
    "OutputOnNonOutputSlice": "OutputOnNonOutputSlice(uint256)",
    "NoOutput": "NoOutput(uint256)",
    "UnprovenSliceNotEmpty": "UnprovenSliceNotEmpty(uint256)",
    "ModelAlreadyRegistered": "ModelAlreadyRegistered(bytes32)",
    "UnknownModel": "UnknownModel(bytes32)",
    "InvalidRequiredKind": "InvalidRequiredKind(uint8)",
    "SliceCountMismatch": "SliceCountMismatch(uint256,uint256)",
    "UnprovenSliceHasProof": "UnprovenSliceHasProof(uint256)",
    "PublicInputCountMismatch": "PublicInputCountMismatch(uint256,uint256,uint256)",
    "NonCanonicalPublicInput": "NonCanonicalPublicInput(uint256,uint256)",
    "SliceNotIncluded": "SliceNotIncluded(uint256,bytes32)",
    "SliceWrongKind": "SliceWrongKind(uint256,uint8,uint8)",
    "BrokenLink": "BrokenLink(uint256,uint256,uint256)",
}


class InferenceError(ValueError):
    """A refusal, named like the contract's custom error; `args_` are that error's arguments."""

    def __init__(self, error: str, *args_: int | bytes) -> None:
        shown = ", ".join(a.hex() if isinstance(a, bytes) else str(a) for a in args_)
        super().__init__(f"{error}({shown})")
        self.error = error
        self.args_ = args_

    @property
    def signature(self) -> str:
        return ERROR_SIGNATURES[self.error]

    def revert_data(self) -> bytes:
        """The contract's revert data for this error: selector || arguments (32-byte words)."""
        words = b"".join(a if isinstance(a, bytes) else a.to_bytes(32, "big") for a in self.args_)
        return keccak256(self.signature.encode())[:4] + words


@dataclass(frozen=True)
class SliceSpec:
    proven: bool
    scheme: int = 0
    vk_hash: bytes = bytes(32)
    public_input_count: int = 0
    in_commit_index: int = 0
    out_commit_index: int = 0
    output_indices: tuple[int, ...] = ()

    @classmethod
    def unproven(cls) -> SliceSpec:
        return cls(proven=False)

    def abi(self) -> tuple[bool, int, bytes, int, int, int, list[int]]:
        """The ABI tuple (what web3 / eth-abi take for `ISheafInference.SliceSpec`)."""
        return (
            self.proven,
            self.scheme,
            self.vk_hash,
            self.public_input_count,
            self.in_commit_index,
            self.out_commit_index,
            list(self.output_indices),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON form used by tests/vectors/model_id.json."""
        return {
            "proven": self.proven,
            "scheme": self.scheme,
            "vk_hash": "0x" + self.vk_hash.hex(),
            "public_input_count": self.public_input_count,
            "in_commit_index": self.in_commit_index,
            "out_commit_index": self.out_commit_index,
            "output_indices": list(self.output_indices),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SliceSpec:
        vk = str(d["vk_hash"])
        return cls(
            proven=bool(d["proven"]),
            scheme=int(d["scheme"]),
            vk_hash=bytes.fromhex(vk[2:] if vk.startswith("0x") else vk),
            public_input_count=int(d["public_input_count"]),
            in_commit_index=int(d["in_commit_index"]),
            out_commit_index=int(d["out_commit_index"]),
            output_indices=tuple(int(x) for x in d["output_indices"]),
        )


@dataclass(frozen=True)
class SliceProof:
    """One entry per slice; for an unproven slice every field stays at its default."""

    public_inputs: tuple[int, ...] = ()
    aggregation_id: int = 0
    merkle_path: tuple[bytes, ...] = ()
    leaf_count: int = 0
    index: int = 0

    def abi(self) -> tuple[list[int], int, list[bytes], int, int]:
        """The ABI tuple for `ISheafInference.SliceProof` (verifyInference's argument)."""
        return (
            list(self.public_inputs),
            self.aggregation_id,
            list(self.merkle_path),
            self.leaf_count,
            self.index,
        )


@dataclass(frozen=True)
class Segment:
    first: int
    last: int
    in_commit: int
    out_commit: int


@dataclass(frozen=True)
class InferenceResult:
    inference_hash: bytes
    output: tuple[int, ...]
    output_slice: int
    proven_mask: int
    fully_proven: bool
    segments: tuple[Segment, ...]
    kinds: tuple[int, ...] = field(default=())


# (aggregation_id, leaf, merkle_path, leaf_count, index) -> kind of the aggregation (1 RECURSIVE,
# 2 ATTESTED) if `leaf` is included, else 0: the registry's verifyProofAggregationKind in the call's domain.
InclusionCheck = Callable[[int, bytes, Sequence[bytes], int, int], int]


# ---------------------------------------------------------------------------- model id


def _word(v: int) -> bytes:
    return v.to_bytes(32, "big")


def _encode_slice(s: SliceSpec) -> bytes:
    # a tuple with a dynamic member: 7 head words, the last one the offset (7 * 32) of outputIndices
    head = (
        _word(int(s.proven))
        + _word(s.scheme)
        + s.vk_hash
        + _word(s.public_input_count)
        + _word(s.in_commit_index)
        + _word(s.out_commit_index)
        + _word(7 * 32)
    )
    return head + _word(len(s.output_indices)) + b"".join(_word(i) for i in s.output_indices)


def _check_types(slices: Sequence[SliceSpec]) -> None:
    """What the ABI types themselves allow (the contract could not even be called otherwise)."""
    for i, s in enumerate(slices):
        if not isinstance(s.proven, bool):
            raise TypeError(f"slice {i}: proven must be a bool")
        if not 0 <= s.scheme < 256:
            raise ValueError(f"slice {i}: scheme must fit a uint8")
        if len(s.vk_hash) != 32:
            raise ValueError(f"slice {i}: vk_hash must be 32 bytes")
        for name in ("public_input_count", "in_commit_index", "out_commit_index"):
            if not 0 <= getattr(s, name) < _U16:
                raise ValueError(f"slice {i}: {name} must fit a uint16")
        if not all(0 <= x < _U16 for x in s.output_indices):
            raise ValueError(f"slice {i}: output indices must fit a uint16")


def encode_model(slices: Sequence[SliceSpec]) -> bytes:
    """abi.encode(bytes32 MODEL_ID_TAG, SliceSpec[] slices), byte for byte."""
    _check_types(slices)
    bodies = [_encode_slice(s) for s in slices]
    offsets, at = [], 32 * len(bodies)
    for b in bodies:
        offsets.append(_word(at))
        at += len(b)
    array = _word(len(bodies)) + b"".join(offsets) + b"".join(bodies)
    return MODEL_ID_TAG + _word(0x40) + array


def model_id(slices: Sequence[SliceSpec]) -> bytes:
    """keccak256(abi.encode(MODEL_ID_TAG, slices)) = SheafInference.modelIdOf(slices). Any spec, valid
    or not, has an id; `validate_model` says whether it can be registered."""
    return keccak256(encode_model(slices))


def validate_model(slices: Sequence[SliceSpec]) -> tuple[int, int, int]:
    """Registration's checks, in the contract's order. Returns (output slice = last proven one, number
    of proven segments, proven mask). Raises InferenceError naming the first offending slice."""
    _check_types(slices)
    n = len(slices)
    if n == 0:
        raise InferenceError("NoSlices")
    if n > MAX_SLICES:
        raise InferenceError("TooManySlices", n, MAX_SLICES)
    mask, segments, output_slice, prev = 0, 0, -1, False
    for i, s in enumerate(slices):
        if s.proven:
            mask |= 1 << i
            output_slice = i
            segments += 0 if prev else 1
        prev = s.proven
    if output_slice < 0:
        raise InferenceError("NoProvenSlice")
    for i, s in enumerate(slices):
        if not s.proven:
            if s != SliceSpec.unproven():
                raise InferenceError("UnprovenSliceNotEmpty", i)
            continue
        if not 1 <= s.scheme <= MAX_SCHEME:
            raise InferenceError("InvalidScheme", i, s.scheme)
        if s.vk_hash == bytes(32):
            raise InferenceError("ZeroVkHash", i)
        count = s.public_input_count
        if count == 0:
            raise InferenceError("ZeroPublicInputCount", i)
        for idx in (s.in_commit_index, s.out_commit_index):
            if idx >= count:
                raise InferenceError("CommitIndexOutOfRange", i, idx, count)
        if s.in_commit_index == s.out_commit_index:
            raise InferenceError("SameInOutCommit", i)
        outs = s.output_indices
        if i != output_slice:
            if outs:
                raise InferenceError("OutputOnNonOutputSlice", i)
            continue
        if not outs:
            raise InferenceError("NoOutput", i)
        for k, idx in enumerate(outs):
            if idx >= count:
                raise InferenceError("OutputIndexOutOfRange", i, idx, count)
            if k > 0 and idx <= outs[k - 1]:
                raise InferenceError("OutputIndicesNotAscending", i, k)
    return output_slice, segments, mask


# ---------------------------------------------------------------------------- receipt check


def statement_hash(scheme: int, vk_hash: bytes, public_inputs: Sequence[int]) -> bytes:
    """`sheaf.statement.statement_hash` over integer public inputs (each < r: checked by the caller,
    which names the slice)."""
    return _statement.statement_hash(Scheme(scheme), vk_hash, [_word(p) for p in public_inputs])


def inference_hash(model: bytes, statement_hashes: Sequence[bytes]) -> bytes:
    """keccak256(INFERENCE_TAG || model_id || stmt_0 || ... || stmt_{n-1}), zero words for unproven slices."""
    return keccak256(INFERENCE_TAG + model + b"".join(statement_hashes))


def verify_inference(
    slices: Sequence[SliceSpec],
    proofs: Sequence[SliceProof],
    required_kind: int,
    included: InclusionCheck,
) -> InferenceResult:
    """What `SheafInference.verifyInference(model_id(slices), domain, required_kind, proofs)` returns for
    a registered model, or the InferenceError it reverts with (same name and arguments). `included`
    answers the registry's inclusion check in that domain."""
    output_slice, n_segments, mask = validate_model(slices)
    mid = model_id(slices)
    if not 0 <= required_kind <= KIND_ATTESTED:
        raise InferenceError("InvalidRequiredKind", required_kind)
    n = len(slices)
    if len(proofs) != n:
        raise InferenceError("SliceCountMismatch", n, len(proofs))
    stmts: list[bytes] = []
    kinds: list[int] = []
    segments: list[Segment] = []
    output: tuple[int, ...] = ()
    prev_out: int | None = None  # out commitment of slice i-1 if it is proven
    for i, (s, p) in enumerate(zip(slices, proofs, strict=True)):
        if not s.proven:
            if p.public_inputs or p.merkle_path or p.aggregation_id or p.leaf_count or p.index:
                raise InferenceError("UnprovenSliceHasProof", i)
            stmts.append(bytes(32))
            kinds.append(0)
            prev_out = None
            continue
        pubs = p.public_inputs
        if len(pubs) != s.public_input_count:
            raise InferenceError("PublicInputCountMismatch", i, s.public_input_count, len(pubs))
        for j, v in enumerate(pubs):
            if not 0 <= v < BN254_R:
                raise InferenceError("NonCanonicalPublicInput", i, j)
        stmt = statement_hash(s.scheme, s.vk_hash, pubs)
        kind = included(p.aggregation_id, stmt, p.merkle_path, p.leaf_count, p.index)
        if kind == 0:
            raise InferenceError("SliceNotIncluded", i, stmt)
        if required_kind != KIND_ANY and kind != required_kind:
            raise InferenceError("SliceWrongKind", i, required_kind, kind)
        in_c, out_c = pubs[s.in_commit_index], pubs[s.out_commit_index]
        if prev_out is not None:
            if in_c != prev_out:
                raise InferenceError("BrokenLink", i, prev_out, in_c)
            cur = segments[-1]
            segments[-1] = Segment(cur.first, i, cur.in_commit, out_c)
        else:
            segments.append(Segment(i, i, in_c, out_c))
        prev_out = out_c
        stmts.append(stmt)
        kinds.append(kind)
        if i == output_slice:
            output = tuple(pubs[k] for k in s.output_indices)
    assert len(segments) == n_segments
    return InferenceResult(
        inference_hash=inference_hash(mid, stmts),
        output=output,
        output_slice=output_slice,
        proven_mask=mask,
        fully_proven=n_segments == 1 and segments[0].first == 0 and segments[0].last == n - 1,
        segments=tuple(segments),
        kinds=tuple(kinds),
    )
