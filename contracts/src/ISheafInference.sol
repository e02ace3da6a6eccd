// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ISheafInference
/// @notice What an application needs to accept a whole model's result across its slices (docs/inference.md).
///   A model is an ordered list of slices; each slice is either proven (its statements are aggregated in a
///   SheafRegistry) or runs unproven. Its id is derived from its spec, so a changed spec is a new model.
interface ISheafInference {
    /// One slice of a model. For an unproven slice every field but `proven` is zero / empty.
    struct SliceSpec {
        /// true: the slice's proofs are aggregated; false: it runs unproven (nothing to check on-chain)
        bool proven;
        /// statement-hash scheme byte: 1 Groth16, 2 PLONK, 3 Halo2
        uint8 scheme;
        /// keccak256("sheaf/vk" || u8 scheme || canonical_vk), as in the statement hash
        bytes32 vkHash;
        /// exact number of public inputs of the slice's proofs
        uint16 publicInputCount;
        /// position of the input-tensor commitment among the public inputs
        uint16 inCommitIndex;
        /// position of the output-tensor commitment among the public inputs
        uint16 outCommitIndex;
        /// positions of the model's output values; only on the output slice (the last proven one),
        /// strictly ascending
        uint16[] outputIndices;
    }

    /// What the caller supplies per slice (one entry per slice of the model, in order).
    /// For an unproven slice every field must be zero / empty.
    struct SliceProof {
        /// the slice proof's public inputs, 32-byte words, each < r (BN254)
        uint256[] publicInputs;
        /// aggregation of the registry (in the call's domain) that holds the slice's statement hash
        uint256 aggregationId;
        /// Merkle path of the statement hash in that aggregation (aggregator's inclusion proof)
        bytes32[] merklePath;
        uint256 leafCount;
        uint256 index;
    }

    /// A maximal run of consecutive proven slices, linked by commitment.
    struct Segment {
        uint256 first;
        uint256 last;
        /// input commitment of slice `first`
        uint256 inCommit;
        /// output commitment of slice `last`
        uint256 outCommit;
    }

    struct InferenceResult {
        /// keccak256(INFERENCE_TAG || modelId || stmt_0 || ... || stmt_{n-1}) (zero word for unproven
        /// slices): identifies this inference, for replay protection
        bytes32 inferenceHash;
        /// the output slice's public inputs at its registered output positions
        uint256[] output;
        /// index of the slice the output comes from (the last proven slice)
        uint256 outputSlice;
        /// bit i set iff slice i is proven (a property of the model, repeated for convenience)
        uint256 provenMask;
        /// true iff every slice is proven: one segment from the model's input to its output
        bool fullyProven;
        /// the proven segments, in order; an unproven slice separates two segments
        Segment[] segments;
        /// per slice: the kind of the aggregation its statement was found in (0 for unproven slices)
        uint8[] kinds;
    }

    event ModelRegistered(bytes32 indexed modelId, address indexed registrant, SliceSpec[] slices);

    // registration
    error NoSlices();
    error TooManySlices(uint256 count, uint256 max);
    error NoProvenSlice();
    error InvalidScheme(uint256 slice, uint8 scheme);
    error ZeroVkHash(uint256 slice);
    error ZeroPublicInputCount(uint256 slice);
    error CommitIndexOutOfRange(uint256 slice, uint256 index, uint256 publicInputCount);
    error SameInOutCommit(uint256 slice);
    error OutputIndexOutOfRange(uint256 slice, uint256 index, uint256 publicInputCount);
    error OutputIndicesNotAscending(uint256 slice, uint256 position);
    error OutputOnNonOutputSlice(uint256 slice);
    error NoOutput(uint256 slice);
    error UnprovenSliceNotEmpty(uint256 slice);
    error ModelAlreadyRegistered(bytes32 modelId);

    // verification
    error UnknownModel(bytes32 modelId);
    error InvalidRequiredKind(uint8 kind);
    error SliceCountMismatch(uint256 expected, uint256 got);
    error UnprovenSliceHasProof(uint256 slice);
    error PublicInputCountMismatch(uint256 slice, uint256 expected, uint256 got);
    error NonCanonicalPublicInput(uint256 slice, uint256 index);
    error SliceNotIncluded(uint256 slice, bytes32 statementHash);
    error SliceWrongKind(uint256 slice, uint8 required, uint8 got);
    error BrokenLink(uint256 slice, uint256 previousOutCommit, uint256 inCommit);

    /// @notice Register a model (anyone may: the id is derived from the spec). Reverts
    ///   ModelAlreadyRegistered if it exists, or a validation error naming the offending slice.
    function registerModel(SliceSpec[] calldata slices) external returns (bytes32 modelId);

    /// @notice keccak256(abi.encode(MODEL_ID_TAG, slices)), MODEL_ID_TAG = keccak256("sheaf/model/v1").
    function modelIdOf(SliceSpec[] calldata slices) external pure returns (bytes32);

    function isRegistered(bytes32 modelId) external view returns (bool);

    function getModel(bytes32 modelId) external view returns (SliceSpec[] memory slices);

    /// @notice Accept a model's result across its slices or revert naming the failing slice: every proven
    ///   slice's statement (recomputed from the model's scheme and vk hash and the supplied public inputs)
    ///   is included in an aggregation of `domainId` of kind `requiredKind` (0 any, 1 RECURSIVE,
    ///   2 ATTESTED), adjacent proven slices link (out commitment of i == in commitment of i+1), and the
    ///   output is read from the output slice at its registered positions.
    function verifyInference(
        bytes32 modelId,
        uint256 domainId,
        uint8 requiredKind,
        SliceProof[] calldata proofs
    ) external view returns (InferenceResult memory result);
}
