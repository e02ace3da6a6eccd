// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title ISheafRegistry
/// @notice What an application needs from the registry: zkVerify-compatible inclusion checks.
interface ISheafRegistry {
    /// @notice Same signature and meaning as zkVerify's Ethereum contract: true iff `leaf` is at `index`
    ///   of aggregation `aggregationId` of `domainId`, whose tree has `leafCount` leaves.
    function verifyProofAggregation(
        uint256 domainId,
        uint256 aggregationId,
        bytes32 leaf,
        bytes32[] calldata merklePath,
        uint256 leafCount,
        uint256 index
    ) external view returns (bool);

    /// @notice As verifyProofAggregation, also returning the aggregation's kind (1 RECURSIVE, 2 ATTESTED;
    ///   0 when `ok` is false) so an application can demand a recursive proof.
    function verifyProofAggregationKind(
        uint256 domainId,
        uint256 aggregationId,
        bytes32 leaf,
        bytes32[] calldata merklePath,
        uint256 leafCount,
        uint256 index
    ) external view returns (bool ok, uint8 kind);
}
