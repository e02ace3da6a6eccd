// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IAggregationProofVerifier
/// @notice Plug-in point for the recursive path of SheafRegistry. An implementation checks a proof that
///   every leaf of the keccak Merkle tree with root `root` and `leafCount` leaves is the statement hash
///   of a valid proof (see docs/contracts.md for the public-input layout the recursion circuit uses).
/// @dev MUST revert when the proof does not verify, and MUST return the function selector
///   (`IAggregationProofVerifier.verifyAggregation.selector`) when it does: the registry rejects any
///   other return value, so an address without code or a verifier that "returns false" never accepts.
interface IAggregationProofVerifier {
    function verifyAggregation(bytes32 root, uint256 leafCount, bytes calldata proof)
        external
        view
        returns (bytes4 magic);
}
