// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {IAggregationProofVerifier} from "../src/IAggregationProofVerifier.sol";
import {IGnarkGroth16Verifier3} from "../src/Groth16AggregationAdapter.sol";
import {TreeAggregationAdapter} from "../src/TreeAggregationAdapter.sol";

/// Stand-in for level `level`'s gnark verifier: accepts exactly abi.encode(level, input), so a call
/// routed to another level's verifier, or with other public inputs, reverts. The real gnark verifiers
/// run on anvil (tests/deploy/test_deploy_tree.py).
contract LevelLockVerifier is IGnarkGroth16Verifier3 {
    uint256 public immutable level;

    error BadProof();

    constructor(uint256 level_) {
        level = level_;
    }

    function verifyProof(bytes calldata proof, uint256[3] calldata input) external view {
        if (keccak256(proof) != keccak256(abi.encode(level, input))) revert BadProof();
    }
}

contract TreeAggregationAdapterTest is Test {
    function _adapter(uint256 k, uint256 f, uint256 n) internal returns (TreeAggregationAdapter) {
        IGnarkGroth16Verifier3[] memory vs = new IGnarkGroth16Verifier3[](n);
        for (uint256 d = 0; d < n; d++) {
            vs[d] = new LevelLockVerifier(d);
        }
        return new TreeAggregationAdapter(k, f, vs);
    }

    function _proof(TreeAggregationAdapter a, uint256 level, bytes32 root, uint256 count)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encode(level, a.publicInputs(root, count));
    }

    /// K=2, F=2, D=2: counts 1-2 -> leaf top, 3-4 -> level 1, 5-8 -> level 2; only that level's
    /// verifier is asked, with [root_hi, root_lo, count].
    function testLevelSelection() public {
        TreeAggregationAdapter a = _adapter(2, 2, 3);
        assertEq(a.capacity(), 8);
        assertEq(a.levels(), 3);
        uint8[9] memory want = [0, 0, 0, 1, 1, 2, 2, 2, 2];
        bytes32 root = keccak256("root");
        for (uint256 n = 1; n <= 8; n++) {
            assertEq(a.levelOf(n), want[n]);
            bytes4 magic = a.verifyAggregation(root, n, _proof(a, want[n], root, n));
            assertTrue(magic == IAggregationProofVerifier.verifyAggregation.selector);
            for (uint256 d = 0; d < 3; d++) {
                if (d == want[n]) continue;
                bytes memory other = _proof(a, d, root, n); // another level's proof
                vm.expectRevert(LevelLockVerifier.BadProof.selector);
                a.verifyAggregation(root, n, other);
            }
            bytes memory otherCount = _proof(a, want[n], root, n == 8 ? 7 : n + 1);
            vm.expectRevert(LevelLockVerifier.BadProof.selector);
            a.verifyAggregation(root, n, otherCount);
        }
        uint256[3] memory pubs = a.publicInputs(bytes32(uint256(1) << 200 | 7), 5);
        assertEq(pubs[0], uint256(1) << 72);
        assertEq(pubs[1], 7);
        assertEq(pubs[2], 5);
    }

    function testCountOutOfRange() public {
        TreeAggregationAdapter a = _adapter(4, 4, 3); // capacity 64
        assertEq(a.capacity(), 64);
        assertEq(a.levelOf(64), 2);
        assertEq(a.levelOf(17), 2);
        assertEq(a.levelOf(16), 1);
        vm.expectRevert(abi.encodeWithSelector(TreeAggregationAdapter.LeafCountOutOfRange.selector, 0, 64));
        a.verifyAggregation(bytes32(0), 0, "");
        vm.expectRevert(abi.encodeWithSelector(TreeAggregationAdapter.LeafCountOutOfRange.selector, 65, 64));
        a.verifyAggregation(bytes32(0), 65, "");
    }

    function testBadPlans() public {
        IGnarkGroth16Verifier3[] memory one = new IGnarkGroth16Verifier3[](1);
        one[0] = new LevelLockVerifier(0);
        uint256[2][6] memory bad = [
            [uint256(3), 2],
            [uint256(0), 2],
            [uint256(128), 2],
            [uint256(2), 1],
            [uint256(2), 6],
            [uint256(2), 128]
        ];
        for (uint256 i = 0; i < bad.length; i++) {
            vm.expectRevert(
                abi.encodeWithSelector(TreeAggregationAdapter.BadPlan.selector, bad[i][0], bad[i][1], 1)
            );
            new TreeAggregationAdapter(bad[i][0], bad[i][1], one);
        }
        vm.expectRevert(abi.encodeWithSelector(TreeAggregationAdapter.BadPlan.selector, 2, 2, 0));
        new TreeAggregationAdapter(2, 2, new IGnarkGroth16Verifier3[](0));
        vm.expectRevert(abi.encodeWithSelector(TreeAggregationAdapter.BadPlan.selector, 2, 2, 10));
        new TreeAggregationAdapter(2, 2, new IGnarkGroth16Verifier3[](10));
        IGnarkGroth16Verifier3[] memory hole = new IGnarkGroth16Verifier3[](2);
        hole[0] = one[0];
        vm.expectRevert(TreeAggregationAdapter.ZeroAddress.selector);
        new TreeAggregationAdapter(2, 2, hole);
    }
}
