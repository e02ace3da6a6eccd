// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {StatementHash} from "../src/StatementHash.sol";

contract StatementHashHarness {
    function pubsHash(uint256[] memory pubs) external pure returns (bytes32) {
        return StatementHash.pubsHash(pubs);
    }

    function statementHash(uint8 version, uint8 scheme, bytes32 vkHash, bytes32 pubsHash_)
        external
        pure
        returns (bytes32)
    {
        return StatementHash.statementHash(version, scheme, vkHash, pubsHash_);
    }
}

contract StatementHashTest is Test {
    StatementHashHarness h = new StatementHashHarness();

    /// Every case of tests/vectors/statement_hash.json (made by normalizers/statement.py).
    function test_vectors() public view {
        string memory json = vm.readFile("tests/vectors/statement_hash.json");
        uint256 n;
        for (; vm.keyExistsJson(json, string.concat(".cases[", vm.toString(n), "]")); ++n) {
            string memory p = string.concat(".cases[", vm.toString(n), "]");
            uint8 version = uint8(vm.parseJsonUint(json, string.concat(p, ".envelope_version")));
            uint8 scheme = uint8(vm.parseJsonUint(json, string.concat(p, ".scheme")));
            bytes memory vk = vm.parseJsonBytes(json, string.concat(p, ".canonical_vk"));
            bytes32 vkHash = vm.parseJsonBytes32(json, string.concat(p, ".vk_hash"));
            bytes32[] memory raw = vm.parseJsonBytes32Array(json, string.concat(p, ".public_inputs"));
            uint256[] memory pubs = new uint256[](raw.length);
            for (uint256 i; i < raw.length; ++i) {
                pubs[i] = uint256(raw[i]);
            }
            assertEq(StatementHash.vkHash(scheme, vk), vkHash, "vk_hash");
            bytes32 ph = h.pubsHash(pubs);
            assertEq(ph, vm.parseJsonBytes32(json, string.concat(p, ".pubs_hash")), "pubs_hash");
            assertEq(
                h.statementHash(version, scheme, vkHash, ph),
                vm.parseJsonBytes32(json, string.concat(p, ".statement_hash")),
                "statement_hash"
            );
        }
        assertGt(n, 3, "too few statement-hash vectors");
    }

    function test_rejectsNonCanonicalPublicInput() public {
        uint256[] memory pubs = new uint256[](2);
        pubs[0] = 1;
        pubs[1] = StatementHash.BN254_R;
        vm.expectRevert(abi.encodeWithSelector(StatementHash.NonCanonicalPublicInput.selector, 1));
        h.pubsHash(pubs);
    }

    function test_rejectsVersionZero() public {
        vm.expectRevert(StatementHash.InvalidEnvelopeVersion.selector);
        h.statementHash(0, 1, bytes32(0), bytes32(0));
    }
}
