// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Test-only reference Merkle tree (zkVerify / Substrate shape, as aggregator/merkle.py builds
///   it): leaves hashed first, pairs hashed left || right, an odd last node promoted. Builds every
///   level (O(n log n)) to give the root and the path of `index`; the tests check src/Merkle.sol
///   and the registry against it.
library MerkleTree {
    function build(bytes32[] memory leaves, uint256 index)
        internal
        pure
        returns (bytes32 root, bytes32[] memory path)
    {
        uint256 n = leaves.length;
        bytes32[] memory row = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            row[i] = keccak256(abi.encodePacked(leaves[i]));
        }
        path = new bytes32[](64);
        uint256 plen;
        uint256 pos = index;
        while (n > 1) {
            if (pos % 2 == 1) path[plen++] = row[pos - 1];
            else if (pos + 1 < n) path[plen++] = row[pos + 1];
            uint256 m;
            for (uint256 i; i + 1 < n; i += 2) {
                row[m++] = keccak256(abi.encodePacked(row[i], row[i + 1]));
            }
            if (n % 2 == 1) row[m++] = row[n - 1];
            n = m;
            pos /= 2;
        }
        assembly {
            mstore(path, plen)
        }
        root = row[0];
    }
}
