// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {SheafRegistry} from "../src/SheafRegistry.sol";
import {ISheafRegistry} from "../src/ISheafRegistry.sol";
import {StatementHash} from "../src/StatementHash.sol";
import {SheafInclusion} from "../src/SheafInclusion.sol";

/// A dapp as docs/sdk.md shows it: accepts a model output once its statement is in an aggregation.
contract InclusionHarness {
    using SheafInclusion for ISheafRegistry;

    ISheafRegistry immutable registry;
    bytes32 immutable vkHash;

    constructor(ISheafRegistry r, bytes32 vk) {
        registry = r;
        vkHash = vk;
    }

    function accept(uint256[] calldata pubs, SheafInclusion.Receipt calldata r, uint8 requiredKind)
        external
        view
        returns (bytes32 stmt, uint8 kind)
    {
        return registry.requireStatement(SheafInclusion.GROTH16, vkHash, pubs, r, requiredKind);
    }

    function check(bytes32 leaf, SheafInclusion.Receipt calldata r) external view returns (bool, uint8) {
        return registry.check(leaf, r);
    }
}

contract SheafInclusionTest is Test {
    uint256 constant DOMAIN = 7;
    /// Attestation deadline used by the tests (forge starts at timestamp 1; <= MAX_ATTESTATION_TTL ahead).
    uint256 constant DL = 2 hours;
    bytes32 constant VK = keccak256("a model's verifying key");
    SheafRegistry reg;
    InclusionHarness app;
    uint256[] pubs;
    bytes32[] leaves; // 3 leaves: the app's statement at index 2 (promoted row node), two others
    bytes32 root;

    function setUp() public {
        reg = new SheafRegistry(address(this));
        reg.createDomain(DOMAIN, address(this));
        uint256[2] memory keys = [uint256(0xA11), uint256(0xB22)];
        for (uint256 i; i < 2; ++i) {
            reg.addOperator(vm.addr(keys[i]));
        }
        reg.setThreshold(2);
        app = new InclusionHarness(reg, VK);
        pubs.push(33);
        pubs.push(7);
        leaves.push(keccak256("other 0"));
        leaves.push(keccak256("other 1"));
        leaves.push(StatementHash.statementHash(SheafInclusion.GROTH16, VK, pubs));
        // Merkle.sol's tree: leaves hashed, pairs hashed, the odd last node promoted
        bytes32 h0 = keccak256(abi.encodePacked(leaves[0]));
        bytes32 h1 = keccak256(abi.encodePacked(leaves[1]));
        root = keccak256(
            abi.encodePacked(keccak256(abi.encodePacked(h0, h1)), keccak256(abi.encodePacked(leaves[2])))
        );
        bytes32 d = reg.aggregationDigest(DOMAIN, 1, root, 3, DL);
        bytes[] memory sigs = new bytes[](2);
        (uint256 lo, uint256 hi) =
            vm.addr(keys[0]) < vm.addr(keys[1]) ? (keys[0], keys[1]) : (keys[1], keys[0]);
        sigs[0] = _sig(lo, d);
        sigs[1] = _sig(hi, d);
        reg.submitAttestedAggregation(DOMAIN, 1, root, 3, DL, sigs);
    }

    function _sig(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function _receipt(uint256 index) internal view returns (SheafInclusion.Receipt memory r) {
        r.domainId = DOMAIN;
        r.aggregationId = 1;
        r.leafCount = 3;
        r.index = index;
        if (index == 2) {
            r.merklePath = new bytes32[](1);
            r.merklePath[0] = keccak256(
                abi.encodePacked(
                    keccak256(abi.encodePacked(leaves[0])), keccak256(abi.encodePacked(leaves[1]))
                )
            );
        }
    }

    function test_accepts_an_included_statement() public view {
        (bytes32 stmt, uint8 kind) = app.accept(pubs, _receipt(2), SheafInclusion.ANY_KIND);
        assertEq(stmt, leaves[2]);
        assertEq(uint256(kind), uint256(SheafInclusion.ATTESTED));
        (stmt, kind) = app.accept(pubs, _receipt(2), SheafInclusion.ATTESTED);
        assertEq(uint256(kind), 2);
        (bool ok, uint8 k) = app.check(leaves[2], _receipt(2));
        assertTrue(ok);
        assertEq(uint256(k), 2);
    }

    function test_other_public_inputs_are_not_included() public {
        uint256[] memory other = new uint256[](2);
        other[0] = 34;
        other[1] = 7;
        bytes32 s = StatementHash.statementHash(SheafInclusion.GROTH16, VK, other);
        vm.expectRevert(abi.encodeWithSelector(SheafInclusion.NotIncluded.selector, s));
        app.accept(other, _receipt(2), SheafInclusion.ANY_KIND);
    }

    function test_wrong_index_or_path_is_not_included() public view {
        (bool ok, uint8 k) = app.check(leaves[2], _receipt(1));
        assertFalse(ok);
        assertEq(uint256(k), 0);
        SheafInclusion.Receipt memory r = _receipt(2);
        r.merklePath[0] = bytes32(uint256(r.merklePath[0]) ^ 1);
        (ok,) = app.check(leaves[2], r);
        assertFalse(ok);
        r = _receipt(2);
        r.aggregationId = 2; // no such aggregation
        (ok,) = app.check(leaves[2], r);
        assertFalse(ok);
    }

    function test_required_kind_is_enforced() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                SheafInclusion.WrongKind.selector, SheafInclusion.RECURSIVE, SheafInclusion.ATTESTED
            )
        );
        app.accept(pubs, _receipt(2), SheafInclusion.RECURSIVE);
        vm.expectRevert(abi.encodeWithSelector(SheafInclusion.InvalidRequiredKind.selector, uint8(3)));
        app.accept(pubs, _receipt(2), 3);
    }

    function test_non_canonical_public_input_reverts() public {
        uint256[] memory bad = new uint256[](1);
        bad[0] = StatementHash.BN254_R;
        vm.expectRevert(abi.encodeWithSelector(StatementHash.NonCanonicalPublicInput.selector, uint256(0)));
        app.accept(bad, _receipt(2), SheafInclusion.ANY_KIND);
    }
}
