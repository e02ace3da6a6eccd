// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {MerkleTree} from "./utils/MerkleTree.sol";
import {SheafRegistry} from "../src/SheafRegistry.sol";
import {IAggregationProofVerifier} from "../src/IAggregationProofVerifier.sol";
import {ISheafRegistry} from "../src/ISheafRegistry.sol";
import {ISheafInference} from "../src/ISheafInference.sol";
import {SheafInference} from "../src/SheafInference.sol";
import {ExampleInferenceConsumer} from "../src/ExampleInferenceConsumer.sol";
import {ExampleConsumer} from "../src/ExampleConsumer.sol";
import {StatementHash} from "../src/StatementHash.sol";
import {Merkle} from "../src/Merkle.sol";

/// Cheatcodes the minimal Test.sol stand-in does not declare.
interface VmJson {
    function parseJsonBool(string calldata json, string calldata key) external pure returns (bool);
    function parseJsonUintArray(string calldata json, string calldata key)
        external
        pure
        returns (uint256[] memory);
}

/// Mock recursive verifier: accepts iff proof == abi.encode(keccak256(abi.encode(root, leafCount))), so a
/// RECURSIVE aggregation exists only for the leaves the test chose.
contract HashLockAggregationVerifier is IAggregationProofVerifier {
    error BadProof();

    function verifyAggregation(bytes32 root, uint256 leafCount, bytes calldata proof)
        external
        pure
        returns (bytes4)
    {
        if (keccak256(proof) != keccak256(abi.encode(keccak256(abi.encode(root, leafCount))))) {
            revert BadProof();
        }
        return IAggregationProofVerifier.verifyAggregation.selector;
    }
}

/// Shared fixture: a real SheafRegistry (4 operators, threshold 3, ATTESTED aggregations signed with
/// vm.sign; RECURSIVE ones through the hash-lock verifier) and a SheafInference on top of it.
abstract contract InferenceFixture is Test {
    event log_named_uint(string key, uint256 val);

    VmJson internal constant vmj = VmJson(address(uint160(uint256(keccak256("hevm cheat code")))));
    uint256 internal constant R = StatementHash.BN254_R;
    uint256 internal constant DOMAIN = 7;
    uint256 internal constant OTHER_DOMAIN = 8;
    uint256 internal constant DL = 2 hours; // attestation deadline (forge starts at timestamp 1)
    address internal owner = address(0xA11CE);
    address internal stranger = address(0xBAD);

    SheafRegistry internal reg;
    SheafInference internal inf;
    uint256[] internal keys;

    function setUp() public virtual {
        reg = new SheafRegistry(owner);
        inf = new SheafInference(ISheafRegistry(address(reg)));
        vm.startPrank(owner);
        // this contract posts the RECURSIVE aggregations: a domain without a submitter refuses them
        reg.createDomain(DOMAIN, address(this));
        reg.createDomain(OTHER_DOMAIN, address(this));
        for (uint256 i = 1; i <= 4; ++i) {
            keys.push(i * 0x1111);
            reg.addOperator(vm.addr(i * 0x1111));
        }
        reg.setThreshold(3);
        reg.setAggregationVerifier(new HashLockAggregationVerifier());
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ model specs

    function _vk(uint8 scheme, string memory name) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("sheaf/vk", scheme, "example-vk/", name));
    }

    function _slice(uint8 scheme, string memory name, uint16 count, uint16[] memory outs)
        internal
        pure
        returns (ISheafInference.SliceSpec memory)
    {
        return ISheafInference.SliceSpec({
            proven: true,
            scheme: scheme,
            vkHash: _vk(scheme, name),
            publicInputCount: count,
            inCommitIndex: 0,
            outCommitIndex: 1,
            outputIndices: outs
        });
    }

    /// gnark slice: public inputs [in_commit, out_commit]
    function _gnark(uint8 scheme, string memory name)
        internal
        pure
        returns (ISheafInference.SliceSpec memory)
    {
        return _slice(scheme, name, 2, new uint16[](0));
    }

    /// ezkl output slice: [poseidon(input), poseidon(output), nOut output values]
    function _halo2Out(string memory name, uint16 nOut)
        internal
        pure
        returns (ISheafInference.SliceSpec memory)
    {
        uint16[] memory outs = new uint16[](nOut);
        for (uint16 k; k < nOut; ++k) {
            outs[k] = 2 + k;
        }
        return _slice(3, name, 2 + nOut, outs);
    }

    function _unproven() internal pure returns (ISheafInference.SliceSpec memory s) {}

    /// Groth16 -> PLONK -> Halo2 (3 outputs)
    function _three() internal pure returns (ISheafInference.SliceSpec[] memory s) {
        s = new ISheafInference.SliceSpec[](3);
        s[0] = _gnark(1, "m3/0");
        s[1] = _gnark(2, "m3/1");
        s[2] = _halo2Out("m3/2", 3);
    }

    /// 7 gnark slices alternating Groth16/PLONK, then a Halo2 output slice with 2 outputs
    function _eight() internal pure returns (ISheafInference.SliceSpec[] memory s) {
        s = new ISheafInference.SliceSpec[](8);
        for (uint256 i; i < 7; ++i) {
            s[i] = _gnark(i % 2 == 0 ? 1 : 2, string.concat("m8/", vm.toString(i)));
        }
        s[7] = _halo2Out("m8/7", 2);
    }

    /// proven, unproven, proven, proven (output = its out commitment), unproven
    function _partial() internal pure returns (ISheafInference.SliceSpec[] memory s) {
        s = new ISheafInference.SliceSpec[](5);
        s[0] = _gnark(1, "p/0");
        s[2] = _gnark(2, "p/2");
        uint16[] memory outs = new uint16[](1);
        outs[0] = 1;
        s[3] = _slice(1, "p/3", 2, outs);
    }

    // ------------------------------------------------------------------ runs and aggregations

    function _commit(uint256 seed, uint256 i) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode("commit", seed, i))) % R;
    }

    /// Public inputs of a linked run: slice i commits c_i -> c_{i+1}; the output slice carries `outputs`
    /// at its non-commitment output positions. Unproven slices get none.
    function _run(ISheafInference.SliceSpec[] memory spec, uint256 seed, uint256[] memory outputs)
        internal
        pure
        returns (uint256[][] memory pubs)
    {
        pubs = new uint256[][](spec.length);
        for (uint256 i; i < spec.length; ++i) {
            if (!spec[i].proven) continue;
            uint256[] memory p = new uint256[](spec[i].publicInputCount);
            p[spec[i].inCommitIndex] = _commit(seed, i);
            p[spec[i].outCommitIndex] = _commit(seed, i + 1);
            uint16[] memory outs = spec[i].outputIndices;
            for (uint256 k; k < outs.length; ++k) {
                if (outs[k] != spec[i].inCommitIndex && outs[k] != spec[i].outCommitIndex) {
                    p[outs[k]] = outputs[k];
                }
            }
            pubs[i] = p;
        }
    }

    function _outs(uint256 a, uint256 b, uint256 c) internal pure returns (uint256[] memory o) {
        o = new uint256[](3);
        (o[0], o[1], o[2]) = (a, b, c);
    }

    function _stmt(ISheafInference.SliceSpec memory s, uint256[] memory pubs)
        internal
        pure
        returns (bytes32)
    {
        return StatementHash.statementHash(s.scheme, s.vkHash, pubs);
    }

    function _filler(uint256 n, uint256 salt) internal pure returns (bytes32[] memory l) {
        l = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            l[i] = keccak256(abi.encode("unrelated statement", salt, i));
        }
    }

    function _concat(bytes32[] memory a, bytes32[] memory b) internal pure returns (bytes32[] memory c) {
        c = new bytes32[](a.length + b.length);
        for (uint256 i; i < a.length; ++i) {
            c[i] = a[i];
        }
        for (uint256 i; i < b.length; ++i) {
            c[a.length + i] = b[i];
        }
    }

    function _root(bytes32[] memory leaves) internal pure returns (bytes32) {
        bytes32[] memory work = new bytes32[](leaves.length);
        for (uint256 i; i < leaves.length; ++i) {
            work[i] = leaves[i];
        }
        return Merkle.root(work);
    }

    /// zkVerify / Substrate path (as Merkle.t.sol and aggregator/merkle.py build it)
    function _path(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory path) {
        (, path) = MerkleTree.build(leaves, index);
    }

    function _signers(bytes32 digest) internal view returns (bytes[] memory out) {
        uint256[] memory ks = new uint256[](3);
        for (uint256 i; i < 3; ++i) {
            ks[i] = keys[i];
        }
        for (uint256 i; i < 3; ++i) {
            for (uint256 j = i + 1; j < 3; ++j) {
                if (vm.addr(ks[j]) < vm.addr(ks[i])) (ks[i], ks[j]) = (ks[j], ks[i]);
            }
        }
        out = new bytes[](3);
        for (uint256 i; i < 3; ++i) {
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(ks[i], digest);
            out[i] = abi.encodePacked(r, s, v);
        }
    }

    function _attest(uint256 domain, bytes32[] memory leaves) internal returns (uint256 aggId) {
        aggId = reg.nextAggregationId(domain);
        bytes32 root = _root(leaves);
        bytes32 d = reg.aggregationDigest(domain, aggId, root, leaves.length, DL);
        reg.submitAttestedAggregation(domain, aggId, root, leaves.length, DL, _signers(d));
    }

    function _recursive(uint256 domain, bytes32[] memory leaves) internal returns (uint256 aggId) {
        aggId = reg.nextAggregationId(domain);
        bytes memory proof = abi.encode(keccak256(abi.encode(_root(leaves), leaves.length)));
        reg.submitRecursiveAggregation(domain, aggId, leaves, proof);
    }

    function _index(bytes32[] memory leaves, bytes32 leaf) internal pure returns (uint256) {
        for (uint256 i; i < leaves.length; ++i) {
            if (leaves[i] == leaf) return i;
        }
        revert("leaf not in aggregation");
    }

    /// The inclusion proof of `pubs` (a statement of slice `s`) in aggregation `aggId` with `leaves`.
    function _proof(
        ISheafInference.SliceSpec memory s,
        uint256[] memory pubs,
        uint256 aggId,
        bytes32[] memory leaves
    ) internal pure returns (ISheafInference.SliceProof memory p) {
        uint256 idx = _index(leaves, _stmt(s, pubs));
        p = ISheafInference.SliceProof({
            publicInputs: pubs,
            aggregationId: aggId,
            merklePath: _path(leaves, idx),
            leafCount: leaves.length,
            index: idx
        });
    }

    function _stmts(ISheafInference.SliceSpec[] memory spec, uint256[][] memory pubs)
        internal
        pure
        returns (bytes32[] memory all)
    {
        all = new bytes32[](spec.length);
        for (uint256 i; i < spec.length; ++i) {
            if (spec[i].proven) all[i] = _stmt(spec[i], pubs[i]);
        }
    }

    /// The proven slices' statements, in order (what an aggregation holds).
    function _provenStmts(ISheafInference.SliceSpec[] memory spec, uint256[][] memory pubs)
        internal
        pure
        returns (bytes32[] memory l)
    {
        uint256 k;
        for (uint256 i; i < spec.length; ++i) {
            if (spec[i].proven) ++k;
        }
        l = new bytes32[](k);
        k = 0;
        for (uint256 i; i < spec.length; ++i) {
            if (spec[i].proven) l[k++] = _stmt(spec[i], pubs[i]);
        }
    }

    /// Posts the run's statements (among filler leaves) as one aggregation of `kind`; returns the proofs.
    function _postAll(ISheafInference.SliceSpec[] memory spec, uint256[][] memory pubs, uint8 kind)
        internal
        returns (ISheafInference.SliceProof[] memory proofs)
    {
        bytes32[] memory leaves = _concat(_filler(2, spec.length), _provenStmts(spec, pubs));
        uint256 aggId = kind == 1 ? _recursive(DOMAIN, leaves) : _attest(DOMAIN, leaves);
        proofs = new ISheafInference.SliceProof[](spec.length);
        for (uint256 i; i < spec.length; ++i) {
            if (spec[i].proven) proofs[i] = _proof(spec[i], pubs[i], aggId, leaves);
        }
    }

    function _verify(bytes32 id, uint8 kind, ISheafInference.SliceProof[] memory proofs)
        internal
        view
        returns (ISheafInference.InferenceResult memory)
    {
        return inf.verifyInference(id, DOMAIN, kind, proofs);
    }
}

contract SheafInferenceTest is InferenceFixture {
    event ModelRegistered(
        bytes32 indexed modelId, address indexed registrant, ISheafInference.SliceSpec[] slices
    );
    event InferenceAccepted(
        bytes32 indexed modelId,
        bytes32 indexed inferenceHash,
        address indexed caller,
        uint256 inputCommitment,
        uint256[] output,
        uint256 provenMask
    );

    // ------------------------------------------------------------------ valid chains

    function test_threeSlices_mixedSchemes_attested() public {
        ISheafInference.SliceSpec[] memory spec = _three();
        bytes32 id = inf.registerModel(spec);
        uint256[][] memory pubs = _run(spec, 1, _outs(7, 8, 9));
        ISheafInference.SliceProof[] memory proofs = _postAll(spec, pubs, 2);

        uint256 g = gasleft();
        ISheafInference.InferenceResult memory r = _verify(id, 0, proofs);
        emit log_named_uint("gas verifyInference 3 slices (forge, in-test call)", g - gasleft());

        assertEq(r.output.length, 3);
        (uint256 o0, uint256 o1, uint256 o2) = (r.output[0], r.output[1], r.output[2]);
        assertEq(o0, 7);
        assertEq(o1, 8);
        assertEq(o2, 9);
        assertEq(r.outputSlice, 2);
        assertEq(r.provenMask, 7);
        assertTrue(r.fullyProven);
        assertEq(r.segments.length, 1);
        assertEq(r.segments[0].first, 0);
        assertEq(r.segments[0].last, 2);
        assertEq(r.segments[0].inCommit, _commit(1, 0));
        assertEq(r.segments[0].outCommit, _commit(1, 3));
        for (uint256 i; i < 3; ++i) {
            assertEq(uint256(r.kinds[i]), 2);
        }
        assertEq(r.inferenceHash, keccak256(abi.encodePacked(inf.INFERENCE_TAG(), id, _stmts(spec, pubs))));
        // an app demanding ATTESTED gets the same answer
        assertEq(_verify(id, 2, proofs).inferenceHash, r.inferenceHash);
    }

    function test_eightSlices_recursiveAndAttested() public {
        ISheafInference.SliceSpec[] memory spec = _eight();
        bytes32 id = inf.registerModel(spec);
        uint256[] memory outs = new uint256[](2);
        (outs[0], outs[1]) = (1234, 5678);
        uint256[][] memory pubs = _run(spec, 2, outs);
        // slices 0..3 in a RECURSIVE aggregation, 4..7 in an ATTESTED one
        bytes32[] memory all = _provenStmts(spec, pubs);
        bytes32[] memory lo = new bytes32[](4);
        bytes32[] memory hi = new bytes32[](4);
        for (uint256 i; i < 4; ++i) {
            (lo[i], hi[i]) = (all[i], all[4 + i]);
        }
        lo = _concat(lo, _filler(3, 80));
        uint256 recId = _recursive(DOMAIN, lo);
        uint256 attId = _attest(DOMAIN, hi);
        ISheafInference.SliceProof[] memory proofs = new ISheafInference.SliceProof[](8);
        for (uint256 i; i < 8; ++i) {
            proofs[i] = i < 4 ? _proof(spec[i], pubs[i], recId, lo) : _proof(spec[i], pubs[i], attId, hi);
        }
        uint256 g = gasleft();
        ISheafInference.InferenceResult memory r = _verify(id, 0, proofs);
        emit log_named_uint("gas verifyInference 8 slices (forge, in-test call)", g - gasleft());
        assertEq(r.output.length, 2);
        assertEq(r.output[0], 1234);
        assertEq(r.output[1], 5678);
        assertEq(r.outputSlice, 7);
        assertEq(r.provenMask, 0xff);
        assertTrue(r.fullyProven);
        assertEq(r.segments.length, 1);
        assertEq(r.segments[0].outCommit, _commit(2, 8));
        for (uint256 i; i < 8; ++i) {
            assertEq(uint256(r.kinds[i]), i < 4 ? 1 : 2);
        }
        // an app that accepts only one kind refuses the first slice of the other kind
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.SliceWrongKind.selector, 4, 1, 2));
        inf.verifyInference(id, DOMAIN, 1, proofs);
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.SliceWrongKind.selector, 0, 2, 1));
        inf.verifyInference(id, DOMAIN, 2, proofs);
    }

    function test_eightSlices_allRecursive_acceptedByRecursiveOnlyApp() public {
        ISheafInference.SliceSpec[] memory spec = _eight();
        bytes32 id = inf.registerModel(spec);
        uint256[][] memory pubs = _run(spec, 3, _outs(1, 2, 0));
        ISheafInference.SliceProof[] memory proofs = _postAll(spec, pubs, 1);
        ISheafInference.InferenceResult memory r = _verify(id, 1, proofs);
        assertTrue(r.fullyProven);
        assertEq(r.output[1], 2);
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.SliceWrongKind.selector, 0, 2, 1));
        inf.verifyInference(id, DOMAIN, 2, proofs);
    }

    function test_partialModel_segmentsAcrossUnprovenSlices() public {
        ISheafInference.SliceSpec[] memory spec = _partial();
        bytes32 id = inf.registerModel(spec);
        uint256[][] memory pubs = _run(spec, 4, new uint256[](0));
        // the unproven slice 1 transforms the tensor: slice 2's input is not slice 0's output
        pubs[2][0] = 12345;
        ISheafInference.SliceProof[] memory proofs = _postAll(spec, pubs, 2);
        ISheafInference.InferenceResult memory r = _verify(id, 0, proofs);
        assertFalse(r.fullyProven);
        assertEq(r.provenMask, 0x0d);
        assertEq(r.segments.length, 2);
        assertEq(r.segments[0].first, 0);
        assertEq(r.segments[0].last, 0);
        assertEq(r.segments[1].first, 2);
        assertEq(r.segments[1].last, 3);
        assertEq(r.segments[1].inCommit, 12345);
        assertEq(r.segments[1].outCommit, _commit(4, 4));
        assertEq(r.outputSlice, 3);
        assertEq(r.output.length, 1);
        assertEq(r.output[0], _commit(4, 4));
        assertEq(uint256(r.kinds[1]), 0);
        assertEq(uint256(r.kinds[4]), 0);
        // within a segment the link still holds: break 2 -> 3
        pubs[3][0] = 1;
        ISheafInference.SliceProof[] memory bad = _postAll(spec, pubs, 2);
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.BrokenLink.selector, 3, _commit(4, 3), 1));
        inf.verifyInference(id, DOMAIN, 0, bad);
        pubs[3][0] = _commit(4, 3); // proofs[3] shares this array: restore it
        _verify(id, 0, proofs);
        // an unproven slice's entry must be empty
        proofs[4].aggregationId = 1;
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.UnprovenSliceHasProof.selector, 4));
        inf.verifyInference(id, DOMAIN, 0, proofs);
        proofs[4].aggregationId = 0;
        proofs[1].publicInputs = new uint256[](1);
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.UnprovenSliceHasProof.selector, 1));
        inf.verifyInference(id, DOMAIN, 0, proofs);
    }

    // ------------------------------------------------------------------ refusals (3-slice chain)

    function _threeFixture()
        internal
        returns (
            ISheafInference.SliceSpec[] memory spec,
            bytes32 id,
            uint256[][] memory pubs,
            ISheafInference.SliceProof[] memory proofs
        )
    {
        spec = _three();
        id = inf.registerModel(spec);
        pubs = _run(spec, 5, _outs(70, 80, 90));
        proofs = _postAll(spec, pubs, 2);
        _verify(id, 0, proofs); // the untampered chain is accepted
    }

    function test_refuses_brokenLink_sliceProvenOnAnotherInput() public {
        (
            ISheafInference.SliceSpec[] memory spec,
            bytes32 id,
            uint256[][] memory pubs,
            ISheafInference.SliceProof[] memory proofs
        ) = _threeFixture();
        // slice 1 genuinely proven (and aggregated) on another input
        uint256[] memory other = new uint256[](2);
        (other[0], other[1]) = (_commit(99, 1), pubs[1][1]);
        bytes32[] memory leaves = _filler(1, 99);
        leaves = _concat(leaves, _provenStmts(_oneSlice(spec[1]), _onePubs(other)));
        proofs[1] = _proof(spec[1], other, _attest(DOMAIN, leaves), leaves);
        vm.expectRevert(
            abi.encodeWithSelector(ISheafInference.BrokenLink.selector, 1, _commit(5, 1), _commit(99, 1))
        );
        inf.verifyInference(id, DOMAIN, 0, proofs);
    }

    function _oneSlice(ISheafInference.SliceSpec memory s)
        internal
        pure
        returns (ISheafInference.SliceSpec[] memory a)
    {
        a = new ISheafInference.SliceSpec[](1);
        a[0] = s;
    }

    function _onePubs(uint256[] memory p) internal pure returns (uint256[][] memory a) {
        a = new uint256[][](1);
        a[0] = p;
    }

    function test_refuses_firstSliceProvenOnAnotherInput() public {
        (
            ISheafInference.SliceSpec[] memory spec,
            bytes32 id,
            uint256[][] memory pubs,
            ISheafInference.SliceProof[] memory proofs
        ) = _threeFixture();
        // slice 0 on input x' (included) producing something else: its output does not feed slice 1
        uint256[] memory other = new uint256[](2);
        (other[0], other[1]) = (_commit(98, 0), _commit(98, 1));
        bytes32[] memory leaves = _concat(_filler(2, 98), _provenStmts(_oneSlice(spec[0]), _onePubs(other)));
        proofs[0] = _proof(spec[0], other, _attest(DOMAIN, leaves), leaves);
        vm.expectRevert(
            abi.encodeWithSelector(ISheafInference.BrokenLink.selector, 1, _commit(98, 1), pubs[1][0])
        );
        inf.verifyInference(id, DOMAIN, 0, proofs);
    }

    function test_refuses_missingSlice() public {
        (,,, ISheafInference.SliceProof[] memory proofs) = _threeFixture();
        bytes32 id = inf.modelIdOf(_three());
        ISheafInference.SliceProof[] memory two = new ISheafInference.SliceProof[](2);
        (two[0], two[1]) = (proofs[0], proofs[2]);
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.SliceCountMismatch.selector, 3, 2));
        inf.verifyInference(id, DOMAIN, 0, two);
        // an empty entry in place of a proven slice
        delete proofs[1];
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.PublicInputCountMismatch.selector, 1, 2, 0));
        inf.verifyInference(id, DOMAIN, 0, proofs);
    }

    function test_refuses_sliceOfAnotherModel() public {
        (
            ISheafInference.SliceSpec[] memory spec,
            bytes32 id,
            uint256[][] memory pubs,
            ISheafInference.SliceProof[] memory proofs
        ) = _threeFixture();
        // the same public inputs proven with another vk (another model's slice), aggregated
        ISheafInference.SliceSpec memory foreign = _gnark(2, "another-model/1");
        bytes32[] memory leaves = _concat(_filler(3, 97), _provenStmts(_oneSlice(foreign), _onePubs(pubs[1])));
        proofs[1] = _proof(foreign, pubs[1], _attest(DOMAIN, leaves), leaves);
        // the statement is recomputed with THIS model's vk for slice 1: not in the aggregation
        vm.expectRevert(
            abi.encodeWithSelector(ISheafInference.SliceNotIncluded.selector, 1, _stmt(spec[1], pubs[1]))
        );
        inf.verifyInference(id, DOMAIN, 0, proofs);
    }

    function test_refuses_reorderedSlices() public {
        (
            ISheafInference.SliceSpec[] memory spec,
            bytes32 id,
            uint256[][] memory pubs,
            ISheafInference.SliceProof[] memory proofs
        ) = _threeFixture();
        (proofs[0], proofs[1]) = (proofs[1], proofs[0]);
        vm.expectRevert(
            abi.encodeWithSelector(ISheafInference.SliceNotIncluded.selector, 0, _stmt(spec[0], pubs[1]))
        );
        inf.verifyInference(id, DOMAIN, 0, proofs);
        // a model registered with the slices in another order is another model
        ISheafInference.SliceSpec[] memory swapped = _three();
        (swapped[0], swapped[1]) = (swapped[1], swapped[0]);
        assertTrue(inf.modelIdOf(swapped) != id);
    }

    function test_refuses_claimedOutputNotProducedByLastSlice() public {
        (
            ISheafInference.SliceSpec[] memory spec,
            bytes32 id,
            uint256[][] memory pubs,
            ISheafInference.SliceProof[] memory proofs
        ) = _threeFixture();
        uint256[] memory forged = new uint256[](5);
        for (uint256 j; j < 5; ++j) {
            forged[j] = pubs[2][j];
        }
        forged[3] = 81;
        proofs[2].publicInputs = forged;
        vm.expectRevert(
            abi.encodeWithSelector(ISheafInference.SliceNotIncluded.selector, 2, _stmt(spec[2], forged))
        );
        inf.verifyInference(id, DOMAIN, 0, proofs);
    }

    function test_refuses_kindTheAppRefuses() public {
        (, bytes32 id,, ISheafInference.SliceProof[] memory proofs) = _threeFixture();
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.SliceWrongKind.selector, 0, 1, 2));
        inf.verifyInference(id, DOMAIN, 1, proofs);
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.InvalidRequiredKind.selector, 3));
        inf.verifyInference(id, DOMAIN, 3, proofs);
    }

    function test_refuses_unknownModel() public {
        (,,, ISheafInference.SliceProof[] memory proofs) = _threeFixture();
        ISheafInference.SliceSpec[] memory spec = _three();
        spec[2].outputIndices[2] = 3; // still a valid spec, but not registered
        bytes32 unknown = inf.modelIdOf(spec);
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.UnknownModel.selector, unknown));
        inf.verifyInference(unknown, DOMAIN, 0, proofs);
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.UnknownModel.selector, unknown));
        inf.getModel(unknown);
        assertFalse(inf.isRegistered(unknown));
    }

    function test_refuses_otherDomain_badPath_badInput() public {
        (
            ISheafInference.SliceSpec[] memory spec,
            bytes32 id,
            uint256[][] memory pubs,
            ISheafInference.SliceProof[] memory proofs
        ) = _threeFixture();
        // the same aggregation id in another domain holds nothing
        vm.expectRevert(
            abi.encodeWithSelector(ISheafInference.SliceNotIncluded.selector, 0, _stmt(spec[0], pubs[0]))
        );
        inf.verifyInference(id, OTHER_DOMAIN, 0, proofs);
        // a wrong leaf count / index / path
        proofs[1].leafCount += 1;
        vm.expectRevert(
            abi.encodeWithSelector(ISheafInference.SliceNotIncluded.selector, 1, _stmt(spec[1], pubs[1]))
        );
        inf.verifyInference(id, DOMAIN, 0, proofs);
        proofs[1].leafCount -= 1;
        proofs[1].index ^= 1;
        vm.expectRevert(
            abi.encodeWithSelector(ISheafInference.SliceNotIncluded.selector, 1, _stmt(spec[1], pubs[1]))
        );
        inf.verifyInference(id, DOMAIN, 0, proofs);
        proofs[1].index ^= 1;
        proofs[1].merklePath[0] = bytes32(uint256(proofs[1].merklePath[0]) ^ 1);
        vm.expectRevert(
            abi.encodeWithSelector(ISheafInference.SliceNotIncluded.selector, 1, _stmt(spec[1], pubs[1]))
        );
        inf.verifyInference(id, DOMAIN, 0, proofs);
        proofs[1].merklePath[0] = bytes32(uint256(proofs[1].merklePath[0]) ^ 1);
        // a public input >= r, named by slice and position
        proofs[2].publicInputs[4] = R;
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.NonCanonicalPublicInput.selector, 2, 4));
        inf.verifyInference(id, DOMAIN, 0, proofs);
    }

    /// Any change to any public input of any slice is refused, naming that slice.
    function testFuzz_anyTamperedPublicInputIsRefused(uint8 sliceSeed, uint8 posSeed, uint256 value) public {
        (
            ISheafInference.SliceSpec[] memory spec,
            bytes32 id,
            uint256[][] memory pubs,
            ISheafInference.SliceProof[] memory proofs
        ) = _threeFixture();
        uint256 i = sliceSeed % 3;
        uint256 j = posSeed % pubs[i].length;
        value = bound(value, 0, R - 1);
        vm.assume(value != pubs[i][j]);
        uint256[] memory t = new uint256[](pubs[i].length);
        for (uint256 k; k < t.length; ++k) {
            t[k] = pubs[i][k];
        }
        t[j] = value;
        proofs[i].publicInputs = t;
        vm.expectRevert(
            abi.encodeWithSelector(ISheafInference.SliceNotIncluded.selector, i, _stmt(spec[i], t))
        );
        inf.verifyInference(id, DOMAIN, 0, proofs);
    }

    // ------------------------------------------------------------------ registration

    function test_register_anyoneEmitsStoresOnce() public {
        ISheafInference.SliceSpec[] memory spec = _partial();
        bytes32 id = inf.modelIdOf(spec);
        assertEq(id, keccak256(abi.encode(keccak256("sheaf/model/v1"), spec)));
        vm.expectEmit(true, true, false, true, address(inf));
        emit ModelRegistered(id, stranger, spec);
        vm.prank(stranger);
        assertEq(inf.registerModel(spec), id);
        assertTrue(inf.isRegistered(id));
        assertEq(keccak256(abi.encode(inf.getModel(id))), keccak256(abi.encode(spec)));
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.ModelAlreadyRegistered.selector, id));
        inf.registerModel(spec);
        (uint256 outSlice, uint256 segs, uint256 mask) = inf.validateModel(spec);
        assertEq(outSlice, 3);
        assertEq(segs, 2);
        assertEq(mask, 0x0d);
    }

    function test_register_badSpecs() public {
        ISheafInference.SliceSpec[] memory s = _three();
        s[1].scheme = 4;
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.InvalidScheme.selector, 1, 4));
        inf.registerModel(s);
        s = _three();
        s[0].vkHash = bytes32(0);
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.ZeroVkHash.selector, 0));
        inf.registerModel(s);
        s = _three();
        s[2].outCommitIndex = 5;
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.CommitIndexOutOfRange.selector, 2, 5, 5));
        inf.registerModel(s);
        s = _partial();
        s[1].vkHash = _vk(1, "x");
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.UnprovenSliceNotEmpty.selector, 1));
        inf.registerModel(s);
        s = new ISheafInference.SliceSpec[](2);
        vm.expectRevert(ISheafInference.NoProvenSlice.selector);
        inf.registerModel(s);
        vm.expectRevert(ISheafInference.NoSlices.selector);
        inf.registerModel(new ISheafInference.SliceSpec[](0));
        // the full list (every registration error) is held by the vectors, below
    }

    /// tests/vectors/model_id.json (made by sheaf/inference.py): encoding, id and validation outcome.
    function test_vectors() public {
        string memory json = vm.readFile("tests/vectors/model_id.json");
        assertEq(vm.parseJsonBytes32(json, ".model_id_tag"), inf.MODEL_ID_TAG());
        assertEq(vm.parseJsonBytes32(json, ".inference_tag"), inf.INFERENCE_TAG());
        uint256 n;
        uint256 valid;
        for (; vm.keyExistsJson(json, string.concat(".cases[", vm.toString(n), "]")); ++n) {
            string memory p = string.concat(".cases[", vm.toString(n), "]");
            bytes memory enc = vm.parseJsonBytes(json, string.concat(p, ".encoded"));
            (bytes32 tag, ISheafInference.SliceSpec[] memory slices) =
                abi.decode(enc, (bytes32, ISheafInference.SliceSpec[]));
            assertEq(tag, inf.MODEL_ID_TAG());
            assertEq(keccak256(abi.encode(tag, slices)), keccak256(enc), "canonical encoding");
            assertEq(slices.length, vm.parseJsonUint(json, string.concat(p, ".slice_count")));
            bytes32 id = vm.parseJsonBytes32(json, string.concat(p, ".model_id"));
            assertEq(inf.modelIdOf(slices), id, "model id");
            if (slices.length <= 8) _checkFields(json, p, slices);
            if (vmj.parseJsonBool(json, string.concat(p, ".valid"))) {
                ++valid;
                (uint256 o, uint256 sg, uint256 m) = inf.validateModel(slices);
                assertEq(o, vm.parseJsonUint(json, string.concat(p, ".output_slice")));
                assertEq(sg, vm.parseJsonUint(json, string.concat(p, ".segment_count")));
                assertEq(m, vm.parseJsonUint(json, string.concat(p, ".proven_mask")));
                assertEq(inf.registerModel(slices), id);
            } else {
                vm.expectRevert(vm.parseJsonBytes(json, string.concat(p, ".revert_data")));
                inf.registerModel(slices);
            }
        }
        assertEq(valid, 5);
        assertEq(n, 24);
    }

    /// the JSON's named fields are the decoded struct's (guards against a field-order mismatch)
    function _checkFields(string memory json, string memory p, ISheafInference.SliceSpec[] memory slices)
        internal
        pure
    {
        for (uint256 i; i < slices.length; ++i) {
            string memory q = string.concat(p, ".slices[", vm.toString(i), "]");
            ISheafInference.SliceSpec memory s = slices[i];
            assertEq(s.proven, vmj.parseJsonBool(json, string.concat(q, ".proven")));
            assertEq(uint256(s.scheme), vm.parseJsonUint(json, string.concat(q, ".scheme")));
            assertEq(s.vkHash, vm.parseJsonBytes32(json, string.concat(q, ".vk_hash")));
            assertEq(
                uint256(s.publicInputCount), vm.parseJsonUint(json, string.concat(q, ".public_input_count"))
            );
            assertEq(uint256(s.inCommitIndex), vm.parseJsonUint(json, string.concat(q, ".in_commit_index")));
            assertEq(uint256(s.outCommitIndex), vm.parseJsonUint(json, string.concat(q, ".out_commit_index")));
            uint256[] memory outs = vmj.parseJsonUintArray(json, string.concat(q, ".output_indices"));
            assertEq(s.outputIndices.length, outs.length);
            for (uint256 k; k < outs.length; ++k) {
                assertEq(uint256(s.outputIndices[k]), outs[k]);
            }
        }
    }

    /// docs/inference.md's worked vector.
    function test_workedVector() public view {
        uint16[] memory outs = new uint16[](1);
        outs[0] = 1;
        ISheafInference.SliceSpec[] memory s = new ISheafInference.SliceSpec[](1);
        s[0] = ISheafInference.SliceSpec(true, 1, bytes32(type(uint256).max / 15), 2, 0, 1, outs);
        assertEq(s[0].vkHash, 0x1111111111111111111111111111111111111111111111111111111111111111);
        assertEq(abi.encode(inf.MODEL_ID_TAG(), s).length, 13 * 32);
        assertEq(inf.modelIdOf(s), 0xae720c57f2bee48088da2d99f998fe1a27e5d251269878a071d31eb48527b88b);
    }

    /// The model id changes when any field of any slice changes, and with order and length.
    function testFuzz_modelIdChangesWithAnyField(uint8 sliceSeed, uint8 fieldSeed, uint256 value)
        public
        view
    {
        ISheafInference.SliceSpec[] memory base = _partial();
        ISheafInference.SliceSpec[] memory s = _partial();
        bytes32 id = inf.modelIdOf(base);
        uint256 i = sliceSeed % s.length;
        uint256 f = fieldSeed % 9;
        if (f == 0) {
            s[i].proven = !s[i].proven;
        } else if (f == 1) {
            s[i].scheme = uint8(bound(value, 0, 255));
            vm.assume(s[i].scheme != base[i].scheme);
        } else if (f == 2) {
            s[i].vkHash = bytes32(value);
            vm.assume(s[i].vkHash != base[i].vkHash);
        } else if (f == 3) {
            s[i].publicInputCount = uint16(bound(value, 0, 65535));
            vm.assume(s[i].publicInputCount != base[i].publicInputCount);
        } else if (f == 4) {
            s[i].inCommitIndex = uint16(bound(value, 0, 65535));
            vm.assume(s[i].inCommitIndex != base[i].inCommitIndex);
        } else if (f == 5) {
            s[i].outCommitIndex = uint16(bound(value, 0, 65535));
            vm.assume(s[i].outCommitIndex != base[i].outCommitIndex);
        } else if (f == 6) {
            uint16[] memory o = new uint16[](s[i].outputIndices.length + 1);
            for (uint256 k; k < s[i].outputIndices.length; ++k) {
                o[k] = s[i].outputIndices[k];
            }
            o[o.length - 1] = uint16(bound(value, 0, 65535));
            s[i].outputIndices = o;
        } else if (f == 7) {
            uint256 j = (i + 1 + value % (s.length - 1)) % s.length; // another slice
            vm.assume(keccak256(abi.encode(s[i])) != keccak256(abi.encode(s[j])));
            (s[i], s[j]) = (s[j], s[i]);
        } else {
            assembly {
                mstore(s, sub(mload(s), 1)) // drop the last slice
            }
        }
        assertTrue(inf.modelIdOf(s) != id, "model id did not change");
    }

    // ------------------------------------------------------------------ the app pattern

    function test_consumer_acceptsOnce_checksOutput() public {
        (ISheafInference.SliceSpec[] memory spec, bytes32 id,, ISheafInference.SliceProof[] memory proofs) =
            _threeFixture();
        ExampleInferenceConsumer app = new ExampleInferenceConsumer(inf, id, DOMAIN, 2, true);
        bytes32 h = _verify(id, 0, proofs).inferenceHash;
        vm.expectEmit(true, true, true, true, address(app));
        emit InferenceAccepted(id, h, stranger, _commit(5, 0), _outs(70, 80, 90), 7);
        vm.prank(stranger);
        uint256 g = gasleft();
        assertEq(app.acceptInference(_commit(5, 0), _outs(70, 80, 90), proofs), h);
        emit log_named_uint("gas acceptInference 3 slices (forge, in-test call)", g - gasleft());
        assertTrue(app.accepted(h));
        vm.expectRevert(abi.encodeWithSelector(ExampleInferenceConsumer.AlreadyAccepted.selector, h));
        app.acceptInference(_commit(5, 0), _outs(70, 80, 90), proofs);
        // a claimed output the model did not produce
        vm.expectRevert(abi.encodeWithSelector(ExampleInferenceConsumer.OutputMismatch.selector, 1, 81, 80));
        app.acceptInference(_commit(5, 0), _outs(70, 81, 90), proofs);
        // the right output, but the app asked about another input
        vm.expectRevert(
            abi.encodeWithSelector(
                ExampleInferenceConsumer.InputMismatch.selector, _commit(6, 0), _commit(5, 0)
            )
        );
        app.acceptInference(_commit(6, 0), _outs(70, 80, 90), proofs);
        vm.expectRevert(abi.encodeWithSelector(ExampleInferenceConsumer.OutputLengthMismatch.selector, 0, 3));
        app.acceptInference(_commit(5, 0), new uint256[](0), proofs);
        // verifyInference's refusals reach the caller unchanged
        ExampleInferenceConsumer recursiveOnly = new ExampleInferenceConsumer(inf, id, DOMAIN, 1, false);
        vm.expectRevert(abi.encodeWithSelector(ISheafInference.SliceWrongKind.selector, 0, 1, 2));
        recursiveOnly.acceptInference(_commit(5, 0), _outs(70, 80, 90), proofs);
        assertEq(spec.length, 3);
    }

    function test_consumer_constructorChecks() public {
        bytes32 partialId = inf.registerModel(_partial());
        vm.expectRevert(ExampleInferenceConsumer.ZeroAddress.selector);
        new ExampleInferenceConsumer(ISheafInference(address(0)), partialId, DOMAIN, 0, false);
        vm.expectRevert(abi.encodeWithSelector(ExampleInferenceConsumer.InvalidRequiredKind.selector, 3));
        new ExampleInferenceConsumer(inf, partialId, DOMAIN, 3, false);
        bytes32 unknown = inf.modelIdOf(_three());
        vm.expectRevert(abi.encodeWithSelector(ExampleInferenceConsumer.ModelNotRegistered.selector, unknown));
        new ExampleInferenceConsumer(inf, unknown, DOMAIN, 0, false);
        vm.expectRevert(abi.encodeWithSelector(ExampleInferenceConsumer.NotFullyProven.selector, partialId));
        new ExampleInferenceConsumer(inf, partialId, DOMAIN, 0, true);
        ExampleInferenceConsumer ok = new ExampleInferenceConsumer(inf, partialId, DOMAIN, 0, false);
        assertFalse(ok.requireFullyProven());
        vm.expectRevert(SheafInference.ZeroAddress.selector);
        new SheafInference(ISheafRegistry(address(0)));
    }

    /// Per-slice acceptance (one ExampleConsumer per slice) vs one whole-model call, same aggregation.
    function test_gas_perSliceVsWholeModel() public {
        (ISheafInference.SliceSpec[] memory spec, bytes32 id,, ISheafInference.SliceProof[] memory proofs) =
            _threeFixture();
        uint256 total;
        for (uint256 i; i < 3; ++i) {
            ExampleConsumer c =
                new ExampleConsumer(ISheafRegistry(address(reg)), DOMAIN, 2, spec[i].scheme, spec[i].vkHash);
            ISheafInference.SliceProof memory p = proofs[i];
            uint256 g = gasleft();
            c.acceptResult(p.publicInputs, p.aggregationId, p.merklePath, p.leafCount, p.index);
            total += g - gasleft();
        }
        emit log_named_uint("gas 3 x ExampleConsumer.acceptResult (forge, in-test calls)", total);
        ExampleInferenceConsumer app = new ExampleInferenceConsumer(inf, id, DOMAIN, 2, true);
        uint256 g2 = gasleft();
        app.acceptInference(_commit(5, 0), _outs(70, 80, 90), proofs);
        uint256 whole = g2 - gasleft();
        emit log_named_uint("gas ExampleInferenceConsumer.acceptInference 3 slices (forge)", whole);
        // loose bound: a regression (e.g. a storage write per slice) would break it
        assertTrue(whole < 2 * total, "whole-model acceptance costs more than twice per-slice acceptance");
    }
}
