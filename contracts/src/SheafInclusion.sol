// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ISheafRegistry} from "./ISheafRegistry.sol";
import {StatementHash} from "./StatementHash.sol";

/// @title SheafInclusion
/// @notice What a dapp calls to accept a result proven off-chain and aggregated by Sheaf: recompute the
///   statement hash from data the dapp understands (scheme, its verifying key's hash, the public inputs),
///   then check it is a leaf of an aggregation the registry accepted, optionally of a required kind.
///   The receipt fields are the Python client's `InclusionProof` (`registry_args()`) / the HTTP API's
///   inclusion response. Import from a `forge install`ed checkout as
///   `sheaf/contracts/src/SheafInclusion.sol` with the remapping `sheaf/=lib/sheaf/` (docs/sdk.md).
library SheafInclusion {
    /// Kind requirement: any kind, or only that registry kind (SheafRegistry.KIND_*).
    uint8 internal constant ANY_KIND = 0;
    uint8 internal constant RECURSIVE = 1;
    uint8 internal constant ATTESTED = 2;

    /// Scheme byte of the statement hash (proto `Scheme`).
    uint8 internal constant GROTH16 = 1;
    uint8 internal constant PLONK = 2;
    uint8 internal constant HALO2 = 3;

    /// Where a leaf sits: an aggregation of a domain, the leaf's Merkle path, the tree size and index.
    struct Receipt {
        uint256 domainId;
        uint256 aggregationId;
        bytes32[] merklePath;
        uint256 leafCount;
        uint256 index;
    }

    error NotIncluded(bytes32 statementHash);
    error WrongKind(uint8 required, uint8 got);
    error InvalidRequiredKind(uint8 kind);

    /// @notice The registry's answer for `leaf` at `r`: (included, kind); kind 0 when not included.
    function check(ISheafRegistry registry, bytes32 leaf, Receipt memory r)
        internal
        view
        returns (bool ok, uint8 kind)
    {
        return registry.verifyProofAggregationKind(
            r.domainId, r.aggregationId, leaf, r.merklePath, r.leafCount, r.index
        );
    }

    /// @notice Reverts unless `leaf` is included at `r` in an aggregation of `requiredKind` (0: any).
    /// @return kind the aggregation's kind (1 RECURSIVE, 2 ATTESTED)
    function requireIncluded(ISheafRegistry registry, bytes32 leaf, Receipt memory r, uint8 requiredKind)
        internal
        view
        returns (uint8 kind)
    {
        if (requiredKind > ATTESTED) revert InvalidRequiredKind(requiredKind);
        bool ok;
        (ok, kind) = check(registry, leaf, r);
        if (!ok) revert NotIncluded(leaf);
        if (requiredKind != ANY_KIND && kind != requiredKind) revert WrongKind(requiredKind, kind);
    }

    /// @notice The statement (scheme, vkHash, publicInputs) must be included at `r`; reverts otherwise.
    ///   publicInputs: the proof's public inputs as field elements (each < BN254 r, else it reverts with
    ///   StatementHash.NonCanonicalPublicInput).
    /// @return statementHash the recomputed leaf (use it as the result's id, e.g. to refuse replays)
    /// @return kind the aggregation's kind
    function requireStatement(
        ISheafRegistry registry,
        uint8 scheme,
        bytes32 vkHash,
        uint256[] memory publicInputs,
        Receipt memory r,
        uint8 requiredKind
    ) internal view returns (bytes32 statementHash, uint8 kind) {
        statementHash = StatementHash.statementHash(scheme, vkHash, publicInputs);
        kind = requireIncluded(registry, statementHash, r, requiredKind);
    }
}
