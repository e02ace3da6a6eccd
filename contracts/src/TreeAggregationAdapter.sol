// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAggregationProofVerifier} from "./IAggregationProofVerifier.sol";
import {IGnarkGroth16Verifier3} from "./Groth16AggregationAdapter.sol";

/// @title TreeAggregationAdapter
/// @notice Puts the recursion tree's top verifiers (gnark/tree, docs/recursion.md) behind
///   IAggregationProofVerifier. A tree of plan (K proofs per leaf job, fan-in F, D merge levels) has
///   one circuit, hence one vk and one exported verifier, per level: level 0 is the leaf circuit, level
///   d >= 1 a merge embedding level d-1's vk. A batch of n proofs is proved with the SHALLOWEST tree
///   that holds it, so its top level is a function of n alone: the smallest d with K * F^d >= n. The
///   adapter recomputes it from leafCount and calls that level's verifier; no level tag travels with
///   the proof. Every level exposes the same public inputs as Groth16AggregationAdapter,
///   [root >> 128, root & (2^128 - 1), leafCount], and `proof` is gnark's 384-byte MarshalSolidity
///   proof (one BSB22 commitment + PoK), passed through unchanged.
/// @dev A deeper-than-necessary top proof (e.g. a merge over one partial child) is refused by the level
///   rule: sound either way, it is the prover's job to use the shallowest tree. Verifiers are set once
///   in the constructor; a new plan or new keys means a new adapter (registry: setAggregationVerifier).
contract TreeAggregationAdapter is IAggregationProofVerifier {
    /// K: user proofs under one leaf job (capacity of a level-0 top).
    uint256 public immutable leafCapacity;
    /// F: children per merge job.
    uint256 public immutable fanIn;
    /// K * F^D: the most proofs one aggregation of this plan holds.
    uint256 public immutable capacity;
    IGnarkGroth16Verifier3[] private _verifiers;

    error ZeroAddress();
    error BadPlan(uint256 leafCapacity, uint256 fanIn, uint256 levels);
    error LeafCountOutOfRange(uint256 leafCount, uint256 capacity);

    /// @param k proofs per leaf job, a power of two in [1, 64]
    /// @param f merge fan-in, a power of two in [2, 64]
    /// @param verifiers_ verifiers_[d] checks a top proof of level d (d = 0..D, D <= 8)
    constructor(uint256 k, uint256 f, IGnarkGroth16Verifier3[] memory verifiers_) {
        uint256 n = verifiers_.length;
        if (!_pow2(k) || k > 64 || !_pow2(f) || f < 2 || f > 64 || n == 0 || n > 9) revert BadPlan(k, f, n);
        uint256 cap = k;
        for (uint256 d = 0; d < n; d++) {
            if (address(verifiers_[d]) == address(0)) revert ZeroAddress();
            _verifiers.push(verifiers_[d]);
            if (d > 0) cap *= f;
        }
        leafCapacity = k;
        fanIn = f;
        capacity = cap;
    }

    function _pow2(uint256 x) private pure returns (bool) {
        return x != 0 && x & (x - 1) == 0;
    }

    /// D + 1: the number of levels (and verifiers).
    function levels() external view returns (uint256) {
        return _verifiers.length;
    }

    function verifierAt(uint256 level) external view returns (IGnarkGroth16Verifier3) {
        return _verifiers[level];
    }

    /// The top level of the shallowest tree over `leafCount` proofs: smallest d with K * F^d >= leafCount.
    function levelOf(uint256 leafCount) public view returns (uint256 level) {
        if (leafCount == 0 || leafCount > capacity) revert LeafCountOutOfRange(leafCount, capacity);
        uint256 cap = leafCapacity;
        while (cap < leafCount) {
            cap *= fanIn;
            level++;
        }
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
        _verifiers[levelOf(leafCount)].verifyProof(proof, publicInputs(root, leafCount)); // reverts if invalid
        return IAggregationProofVerifier.verifyAggregation.selector;
    }
}
