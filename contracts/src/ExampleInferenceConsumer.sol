// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ISheafInference} from "./ISheafInference.sol";

/// @title ExampleInferenceConsumer
/// @notice The application pattern for a whole model: accept a result (this input commitment -> this output)
///   once, only when SheafInference accepts the inference across all slices of the pinned model, every
///   proven slice in an aggregation of the pinned domain and kind. Optionally demands that every slice be
///   proven; otherwise the input commitment is the first proven segment's, which unproven slices before it
///   do not bind to the model's input (docs/inference.md).
contract ExampleInferenceConsumer {
    ISheafInference public immutable inference;
    bytes32 public immutable modelId;
    uint256 public immutable domainId;
    /// 0: any kind; 1 (RECURSIVE) or 2 (ATTESTED): only that kind, for every proven slice.
    uint8 public immutable requiredKind;
    /// true: refuse models with unproven slices at deployment (the result is then one linked chain from
    /// the model's input commitment to its output).
    bool public immutable requireFullyProven;

    /// inference hash => accepted
    mapping(bytes32 => bool) public accepted;

    /// `inputCommitment`: input commitment of the first proven segment (the model's input when fully proven)
    event InferenceAccepted(
        bytes32 indexed modelId,
        bytes32 indexed inferenceHash,
        address indexed caller,
        uint256 inputCommitment,
        uint256[] output,
        uint256 provenMask
    );

    error ZeroAddress();
    error InvalidRequiredKind(uint8 kind);
    error ModelNotRegistered(bytes32 modelId);
    error NotFullyProven(bytes32 modelId);
    error InputMismatch(uint256 claimed, uint256 proven);
    error OutputMismatch(uint256 position, uint256 claimed, uint256 proven);
    error OutputLengthMismatch(uint256 claimed, uint256 proven);
    error AlreadyAccepted(bytes32 inferenceHash);

    constructor(
        ISheafInference inference_,
        bytes32 modelId_,
        uint256 domainId_,
        uint8 requiredKind_,
        bool requireFullyProven_
    ) {
        if (address(inference_) == address(0)) revert ZeroAddress();
        if (requiredKind_ > 2) revert InvalidRequiredKind(requiredKind_);
        if (!inference_.isRegistered(modelId_)) revert ModelNotRegistered(modelId_);
        if (requireFullyProven_) {
            ISheafInference.SliceSpec[] memory slices = inference_.getModel(modelId_);
            for (uint256 i; i < slices.length; ++i) {
                if (!slices[i].proven) revert NotFullyProven(modelId_);
            }
        }
        inference = inference_;
        modelId = modelId_;
        domainId = domainId_;
        requiredKind = requiredKind_;
        requireFullyProven = requireFullyProven_;
    }

    /// @param inputCommitment commitment to the input the caller says the model ran on (the app computes it
    ///   from the input it cares about); must equal the proven one
    /// @param claimedOutput what the caller says the model output; must equal the proven output
    /// @param proofs one entry per slice of the model (empty for unproven slices), from the aggregator
    function acceptInference(
        uint256 inputCommitment,
        uint256[] calldata claimedOutput,
        ISheafInference.SliceProof[] calldata proofs
    ) external returns (bytes32 inferenceHash) {
        ISheafInference.InferenceResult memory r =
            inference.verifyInference(modelId, domainId, requiredKind, proofs);
        uint256 provenInput = r.segments[0].inCommit;
        if (inputCommitment != provenInput) revert InputMismatch(inputCommitment, provenInput);
        uint256 k = r.output.length;
        if (claimedOutput.length != k) revert OutputLengthMismatch(claimedOutput.length, k);
        for (uint256 j; j < k; ++j) {
            if (claimedOutput[j] != r.output[j]) revert OutputMismatch(j, claimedOutput[j], r.output[j]);
        }
        inferenceHash = r.inferenceHash;
        if (accepted[inferenceHash]) revert AlreadyAccepted(inferenceHash);
        accepted[inferenceHash] = true;
        emit InferenceAccepted(modelId, inferenceHash, msg.sender, provenInput, r.output, r.provenMask);
    }
}
