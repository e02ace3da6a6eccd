// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ISheafRegistry} from "./ISheafRegistry.sol";
import {StatementHash} from "./StatementHash.sol";

/// @title ExampleConsumer
/// @notice The application pattern: accept an ML inference result only when the statement it is part of
///   (this model's vk, these public inputs) was included in a verified aggregation of the required kind.
///   The app recomputes the statement hash from data it understands (the public inputs), so it never
///   trusts an opaque leaf supplied by the caller.
contract ExampleConsumer {
    ISheafRegistry public immutable registry;
    uint256 public immutable domainId;
    /// 0: any kind; 1 (RECURSIVE) or 2 (ATTESTED): only that kind.
    uint8 public immutable requiredKind;
    uint8 public immutable scheme;
    bytes32 public immutable vkHash;

    /// statement hash => accepted
    mapping(bytes32 => bool) public accepted;

    event ResultAccepted(
        bytes32 indexed statementHash, uint256 indexed aggregationId, uint8 kind, uint256[] publicInputs
    );

    error ZeroAddress();
    error InvalidRequiredKind(uint8 kind);
    error NotIncluded(bytes32 statementHash);
    error WrongKind(uint8 required, uint8 got);
    error AlreadyAccepted(bytes32 statementHash);

    constructor(
        ISheafRegistry registry_,
        uint256 domainId_,
        uint8 requiredKind_,
        uint8 scheme_,
        bytes32 vkHash_
    ) {
        if (address(registry_) == address(0)) revert ZeroAddress();
        if (requiredKind_ > 2) revert InvalidRequiredKind(requiredKind_);
        registry = registry_;
        domainId = domainId_;
        requiredKind = requiredKind_;
        scheme = scheme_;
        vkHash = vkHash_;
    }

    /// @param publicInputs the proof's public inputs (model inputs/outputs as field elements), each < r
    function acceptResult(
        uint256[] calldata publicInputs,
        uint256 aggregationId,
        bytes32[] calldata merklePath,
        uint256 leafCount,
        uint256 index
    ) external returns (bytes32 statementHash) {
        statementHash = StatementHash.statementHash(scheme, vkHash, publicInputs);
        if (accepted[statementHash]) revert AlreadyAccepted(statementHash);
        (bool ok, uint8 kind) = registry.verifyProofAggregationKind(
            domainId, aggregationId, statementHash, merklePath, leafCount, index
        );
        if (!ok) revert NotIncluded(statementHash);
        if (requiredKind != 0 && kind != requiredKind) revert WrongKind(requiredKind, kind);
        accepted[statementHash] = true;
        emit ResultAccepted(statementHash, aggregationId, kind, publicInputs);
    }
}
