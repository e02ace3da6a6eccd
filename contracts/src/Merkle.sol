// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Merkle
/// @notice Substrate `binary_merkle_tree` with Keccak256, as zkVerify's Ethereum contract uses it:
///   leaves are hashed first (keccak256(leaf)), pairs are keccak256(left || right), and an odd last
///   node of a row is promoted to the next row unhashed. A single leaf's root is keccak256(leaf).
/// Paths are produced bottom-up, with no entry for the levels where the node is promoted, so the
/// leaf count and index determine how a path is consumed (aggregator/merkle.py is the Python twin).
library Merkle {
    error EmptyTree();

    /// @notice Root of `leaves`. Overwrites `leaves` (used as the work area).
    function root(bytes32[] memory leaves) internal pure returns (bytes32 r) {
        uint256 n = leaves.length;
        if (n == 0) revert EmptyTree();
        assembly ("memory-safe") {
            let base := add(leaves, 0x20)
            let end := add(base, mul(n, 0x20))
            for { let p := base } lt(p, end) { p := add(p, 0x20) } { mstore(p, keccak256(p, 0x20)) }
            for {} gt(n, 1) {} {
                let m := 0
                let i := 0
                for {} lt(add(i, 1), n) { i := add(i, 2) } {
                    // scratch space 0x00..0x3f holds the pair
                    mstore(0x00, mload(add(base, mul(i, 0x20))))
                    mstore(0x20, mload(add(base, mul(add(i, 1), 0x20))))
                    mstore(add(base, mul(m, 0x20)), keccak256(0x00, 0x40))
                    m := add(m, 1)
                }
                if lt(i, n) {
                    // odd last node: promoted unhashed
                    mstore(add(base, mul(m, 0x20)), mload(add(base, mul(i, 0x20))))
                    m := add(m, 1)
                }
                n := m
            }
            r := mload(base)
        }
    }

    /// @notice Root of calldata leaves (copies them to memory first).
    function rootCalldata(bytes32[] calldata leaves) internal pure returns (bytes32) {
        bytes32[] memory work = leaves;
        return root(work);
    }

    /// @notice Number of path entries a leaf at `index` of a `leafCount`-leaf tree has.
    function pathLength(uint256 leafCount, uint256 index) internal pure returns (uint256 len) {
        uint256 width = leafCount;
        uint256 position = index;
        while (width > 1) {
            if (position & 1 == 1 || position + 1 < width) ++len;
            position >>= 1;
            width = (width + 1) >> 1;
        }
    }

    /// @notice Inclusion check. Same results as zkVerify's `Merkle.verifyProofKeccak` for well-formed
    /// paths, but strict: a path with any missing or extra entry, or index >= leafCount, is rejected
    /// (returns false) instead of being partially consumed or reverting.
    function verify(bytes32 root_, bytes32[] calldata path, uint256 leafCount, uint256 index, bytes32 leaf)
        internal
        pure
        returns (bool)
    {
        if (index >= leafCount) return false;
        uint256 width = leafCount;
        uint256 position = index;
        uint256 used;
        uint256 plen = path.length;
        bytes32 h = keccak256(abi.encodePacked(leaf));
        while (width > 1) {
            if (position & 1 == 1) {
                if (used == plen) return false;
                h = _hashPair(path[used], h);
                ++used;
            } else if (position + 1 < width) {
                if (used == plen) return false;
                h = _hashPair(h, path[used]);
                ++used;
            } // else: last node of an odd row, promoted without a path entry
            position >>= 1;
            width = (width + 1) >> 1;
        }
        return used == plen && h == root_;
    }

    function _hashPair(bytes32 a, bytes32 b) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            mstore(0x00, a)
            mstore(0x20, b)
            h := keccak256(0x00, 0x40)
        }
    }
}
