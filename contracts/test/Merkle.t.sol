// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {MerkleTree} from "./utils/MerkleTree.sol";
import {Merkle} from "../src/Merkle.sol";

contract MerkleHarness {
    function root(bytes32[] calldata leaves) external pure returns (bytes32) {
        return Merkle.rootCalldata(leaves);
    }

    function verify(bytes32 r, bytes32[] calldata path, uint256 leafCount, uint256 index, bytes32 leaf)
        external
        pure
        returns (bool)
    {
        return Merkle.verify(r, path, leafCount, index, leaf);
    }

    /// zkVerify's verifyProofKeccak (Substrate binary_merkle_tree v15), for differential testing.
    function zkVerifyProofKeccak(
        bytes32 r,
        bytes32[] calldata proof,
        uint256 numberOfLeaves,
        uint256 leafIndex,
        bytes32 leaf
    ) external pure returns (bool) {
        require(leafIndex < numberOfLeaves, "IndexOutOfBounds");
        bytes32 computedHash = keccak256(abi.encodePacked(leaf));
        uint256 position = leafIndex;
        uint256 width = numberOfLeaves;
        for (uint256 i; i < proof.length; ++i) {
            if (position % 2 == 1 || position + 1 == width) {
                computedHash = keccak256(abi.encodePacked(proof[i], computedHash));
            } else {
                computedHash = keccak256(abi.encodePacked(computedHash, proof[i]));
            }
            position /= 2;
            width = (width - 1) / 2 + 1;
        }
        return computedHash == r;
    }
}

contract MerkleTest is Test {
    MerkleHarness m = new MerkleHarness();

    /// Reference implementation: builds every level and the path of `index` (test-only, O(n log n)).
    function _tree(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32, bytes32[] memory) {
        return MerkleTree.build(leaves, index);
    }

    function _leaves(uint256 seed, uint256 n) internal pure returns (bytes32[] memory leaves) {
        leaves = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            leaves[i] = keccak256(abi.encode(seed, i));
        }
    }

    /// tests/vectors/merkle.json (made by aggregator/merkle.py): roots and every path of widths 1..33.
    function test_vectors() public view {
        string memory json = vm.readFile("tests/vectors/merkle.json");
        uint256 cases;
        for (; vm.keyExistsJson(json, string.concat(".cases[", vm.toString(cases), "]")); ++cases) {
            string memory p = string.concat(".cases[", vm.toString(cases), "]");
            bytes32[] memory leaves = vm.parseJsonBytes32Array(json, string.concat(p, ".leaves"));
            bytes32 r = vm.parseJsonBytes32(json, string.concat(p, ".root"));
            assertEq(leaves.length, vm.parseJsonUint(json, string.concat(p, ".leaf_count")));
            assertEq(m.root(leaves), r, "root");
            for (uint256 i; i < leaves.length; ++i) {
                bytes32[] memory path =
                    vm.parseJsonBytes32Array(json, string.concat(p, ".paths[", vm.toString(i), "]"));
                assertTrue(m.verify(r, path, leaves.length, i, leaves[i]), "vector path");
                assertTrue(m.zkVerifyProofKeccak(r, path, leaves.length, i, leaves[i]), "zkVerify accepts");
            }
        }
        assertEq(cases, 33);
    }

    function test_emptyTreeReverts() public {
        vm.expectRevert(Merkle.EmptyTree.selector);
        m.root(new bytes32[](0));
    }

    function testFuzz_everyIndexVerifies(uint256 seed, uint8 width) public view {
        uint256 n = bound(width, 1, 70);
        bytes32[] memory leaves = _leaves(seed, n);
        bytes32 r = m.root(leaves);
        for (uint256 i; i < n; ++i) {
            (bytes32 r2, bytes32[] memory path) = _tree(leaves, i);
            assertEq(r, r2);
            assertEq(path.length, Merkle.pathLength(n, i));
            assertTrue(m.verify(r, path, n, i, leaves[i]));
            assertTrue(m.zkVerifyProofKeccak(r, path, n, i, leaves[i]));
        }
    }

    function testFuzz_rejections(uint256 seed, uint8 width, uint8 idx, uint8 other) public view {
        uint256 n = bound(width, 2, 70);
        uint256 i = bound(idx, 0, n - 1);
        bytes32[] memory leaves = _leaves(seed, n);
        (bytes32 r, bytes32[] memory path) = _tree(leaves, i);
        // wrong leaf
        assertFalse(m.verify(r, path, n, i, keccak256(abi.encode(leaves[i]))));
        // wrong index (any other)
        uint256 j = bound(other, 0, n - 1);
        if (j != i) assertFalse(m.verify(r, path, n, j, leaves[i]));
        // index out of range
        assertFalse(m.verify(r, path, n, n, leaves[i]));
        // a changed path entry
        if (path.length > 0) {
            bytes32[] memory bad = new bytes32[](path.length);
            for (uint256 k; k < path.length; ++k) {
                bad[k] = path[k];
            }
            bad[uint256(seed) % path.length] ^= bytes32(uint256(1));
            assertFalse(m.verify(r, bad, n, i, leaves[i]));
            // truncated path
            bytes32[] memory shorter = new bytes32[](path.length - 1);
            for (uint256 k; k + 1 < path.length; ++k) {
                shorter[k] = path[k];
            }
            assertFalse(m.verify(r, shorter, n, i, leaves[i]));
        }
        // extra path entry
        bytes32[] memory longer = new bytes32[](path.length + 1);
        for (uint256 k; k < path.length; ++k) {
            longer[k] = path[k];
        }
        assertFalse(m.verify(r, longer, n, i, leaves[i]));
        // a leaf count whose tree shape differs at this index
        if (Merkle.pathLength(n + 1, i) != path.length) assertFalse(m.verify(r, path, n + 1, i, leaves[i]));
    }
}
