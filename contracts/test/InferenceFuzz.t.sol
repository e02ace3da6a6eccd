// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {InferenceFixture} from "./SheafInference.t.sol";
import {ISheafInference} from "../src/ISheafInference.sol";

/// Property tests over random models: any valid spec registers, round-trips through getModel, and any
/// linked run of it, aggregated, is accepted with the output, segments and mask the spec implies.
contract InferenceFuzzTest is InferenceFixture {
    function _rand(uint256 seed, uint256 i, string memory what) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed, i, what)));
    }

    /// A random valid spec: 1..10 slices, random proven pattern (at least one proven), schemes 1..3,
    /// 2..5 public inputs with random distinct commitment positions, a random non-empty output set.
    function _randomSpec(uint256 seed) internal pure returns (ISheafInference.SliceSpec[] memory s) {
        uint256 n = 1 + seed % 10;
        s = new ISheafInference.SliceSpec[](n);
        uint256 last = type(uint256).max;
        for (uint256 i; i < n; ++i) {
            if (_rand(seed, i, "proven") % 3 == 0 && !(i == n - 1 && last == type(uint256).max)) continue;
            s[i] = _randomSlice(seed, i);
            last = i;
        }
        // outputs on the last proven slice: a random non-empty subset of its positions, ascending
        uint256 c = s[last].publicInputCount;
        // forge-lint: disable-next-line(incorrect-shift)
        uint256 bits = 1 + _rand(seed, last, "outs") % ((1 << c) - 1);
        uint256 k;
        uint16[] memory outs = new uint16[](c);
        for (uint256 j; j < c; ++j) {
            // forge-lint: disable-next-line(unsafe-typecast)
            if ((bits >> j) & 1 == 1) outs[k++] = uint16(j);
        }
        assembly {
            mstore(outs, k)
        }
        s[last].outputIndices = outs;
    }

    function _randomSlice(uint256 seed, uint256 i)
        internal
        pure
        returns (ISheafInference.SliceSpec memory s)
    {
        uint256 count = 2 + _rand(seed, i, "count") % 4;
        uint256 inIdx = _rand(seed, i, "in") % count;
        s.proven = true;
        // all casts below are in range: scheme 1..3, count 2..5, indices < count
        // forge-lint: disable-next-line(unsafe-typecast)
        s.scheme = uint8(1 + _rand(seed, i, "scheme") % 3);
        s.vkHash = keccak256(abi.encode("vk", seed, i));
        // forge-lint: disable-next-line(unsafe-typecast)
        s.publicInputCount = uint16(count);
        // forge-lint: disable-next-line(unsafe-typecast)
        s.inCommitIndex = uint16(inIdx);
        // forge-lint: disable-next-line(unsafe-typecast)
        s.outCommitIndex = uint16((inIdx + 1 + _rand(seed, i, "out") % (count - 1)) % count);
    }

    /// Random public inputs for a linked run: slice i's commitments are c_i -> c_{i+1}.
    function _randomRun(ISheafInference.SliceSpec[] memory s, uint256 seed)
        internal
        pure
        returns (uint256[][] memory pubs)
    {
        pubs = new uint256[][](s.length);
        for (uint256 i; i < s.length; ++i) {
            if (!s[i].proven) continue;
            uint256[] memory p = new uint256[](s[i].publicInputCount);
            for (uint256 j; j < p.length; ++j) {
                p[j] = _rand(seed, i * 100 + j, "pub") % R;
            }
            p[s[i].inCommitIndex] = _commit(seed, i);
            p[s[i].outCommitIndex] = _commit(seed, i + 1);
            pubs[i] = p;
        }
    }

    function testFuzz_randomModel_registersRoundTripsAndVerifies(uint256 seed) public {
        ISheafInference.SliceSpec[] memory spec = _randomSpec(seed);
        bytes32 id = inf.registerModel(spec);
        assertEq(id, inf.modelIdOf(spec));
        assertEq(keccak256(abi.encode(inf.getModel(id))), keccak256(abi.encode(spec)), "getModel round trip");

        uint256[][] memory pubs = _randomRun(spec, seed);
        // forge-lint: disable-next-line(unsafe-typecast)
        ISheafInference.SliceProof[] memory proofs = _postAll(spec, pubs, uint8(1 + seed % 2));
        ISheafInference.InferenceResult memory r = inf.verifyInference(id, DOMAIN, 0, proofs);

        _checkResult(spec, pubs, r, seed, id);

        // an app demanding the other kind refuses at the first proven slice
        uint256 first;
        while (!spec[first].proven) {
            ++first;
        }
        // forge-lint: disable-next-line(unsafe-typecast)
        uint8 other = uint8(2 - seed % 2);
        vm.expectRevert(
            abi.encodeWithSelector(ISheafInference.SliceWrongKind.selector, first, other, 1 + seed % 2)
        );
        inf.verifyInference(id, DOMAIN, other, proofs);
    }

    function _checkResult(
        ISheafInference.SliceSpec[] memory spec,
        uint256[][] memory pubs,
        ISheafInference.InferenceResult memory r,
        uint256 seed,
        bytes32 id
    ) internal view {
        // what the spec implies
        uint256 mask;
        uint256 segments;
        uint256 last;
        for (uint256 i; i < spec.length; ++i) {
            if (!spec[i].proven) continue;
            // forge-lint: disable-next-line(incorrect-shift)
            mask |= 1 << i;
            if (i == 0 || !spec[i - 1].proven) {
                assertEq(r.segments[segments].first, i, "segment first");
                assertEq(r.segments[segments].inCommit, _commit(seed, i), "segment inCommit");
                ++segments;
            }
            if (i + 1 == spec.length || !spec[i + 1].proven) {
                assertEq(r.segments[segments - 1].last, i, "segment last");
                assertEq(r.segments[segments - 1].outCommit, _commit(seed, i + 1), "segment outCommit");
            }
            assertEq(uint256(r.kinds[i]), 1 + seed % 2, "kind");
            last = i;
        }
        assertEq(r.segments.length, segments);
        assertEq(r.provenMask, mask);
        assertEq(r.outputSlice, last);
        // forge-lint: disable-next-line(incorrect-shift)
        assertEq(r.fullyProven, mask == (1 << spec.length) - 1);
        uint16[] memory outs = spec[last].outputIndices;
        assertEq(r.output.length, outs.length);
        for (uint256 k; k < outs.length; ++k) {
            assertEq(r.output[k], pubs[last][outs[k]], "output value");
        }
        assertEq(r.inferenceHash, keccak256(abi.encodePacked(inf.INFERENCE_TAG(), id, _stmts(spec, pubs))));
    }

    /// Changing one commitment of a slice that has a proven neighbour (re-aggregated, so inclusion
    /// holds) is always refused as a broken link at the right slice.
    function testFuzz_randomModel_anyRelinkIsRefused(uint256 seed, uint256 pick) public {
        ISheafInference.SliceSpec[] memory spec = _randomSpec(seed);
        bytes32 id = inf.registerModel(spec);
        uint256[][] memory pubs = _randomRun(spec, seed);
        // pick a boundary i-1 -> i with both proven
        uint256 n = spec.length;
        uint256 b = type(uint256).max;
        for (uint256 t; t < n; ++t) {
            uint256 i = (pick % n + t) % n;
            if (i > 0 && spec[i].proven && spec[i - 1].proven) {
                b = i;
                break;
            }
        }
        vm.assume(b != type(uint256).max);
        uint256 newIn = (pubs[b][spec[b].inCommitIndex] + 1 + pick % 1000) % R;
        vm.assume(newIn != pubs[b - 1][spec[b - 1].outCommitIndex]);
        // slice b proven on another input (its other public inputs kept), aggregated like the rest
        pubs[b][spec[b].inCommitIndex] = newIn;
        ISheafInference.SliceProof[] memory proofs = _postAll(spec, pubs, 2);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISheafInference.BrokenLink.selector, b, pubs[b - 1][spec[b - 1].outCommitIndex], newIn
            )
        );
        inf.verifyInference(id, DOMAIN, 2, proofs);
    }
}
