// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAggregationProofVerifier} from "./IAggregationProofVerifier.sol";

/// gnark's exported Groth16 verifier for a circuit with 3 public inputs (reverts on failure).
interface IGnarkGroth16Verifier3 {
    function verifyProof(bytes calldata proof, uint256[3] calldata input) external view;
}

/// @title Groth16AggregationAdapter
/// @notice Puts a gnark-exported Groth16 verifier behind IAggregationProofVerifier. Public-input layout
///   (what the recursion circuit must expose, in this order): [root >> 128, root & (2^128 - 1), leafCount]
///   (a 256-bit keccak root does not fit one BN254 scalar, so it is split into two 128-bit limbs).
///   `proof` is gnark's MarshalSolidity proof bytes, passed through unchanged: 256 bytes without commitments,
///   384 with one BSB22 commitment + PoK (gnark/aggregation's outer circuit; the verifier checks the length).
///   Deployed with the generated verifier by deploy/recursive.py (`sheaf-deploy deploy --recursive-batch N`).
contract Groth16AggregationAdapter is IAggregationProofVerifier {
    IGnarkGroth16Verifier3 public immutable verifier;

    error ZeroAddress();

    constructor(IGnarkGroth16Verifier3 verifier_) {
        if (address(verifier_) == address(0)) revert ZeroAddress();
        verifier = verifier_;
    }

    function publicInputs(bytes32 root, uint256 leafCount) public pure returns (uint256[3] memory input) {
        input[0] = uint256(root) >> 128;
        input[1] = uint256(root) & type(uint128).max;
        input[2] = leafCount;
    }

    function verifyAggregation(bytes32 root, uint256 leafCount, bytes calldata proof)
        external
        view
        returns (bytes4)
    {
        verifier.verifyProof(proof, publicInputs(root, leafCount)); // reverts on an invalid proof
        return IAggregationProofVerifier.verifyAggregation.selector;
    }
}
