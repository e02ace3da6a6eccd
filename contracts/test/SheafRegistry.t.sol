// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test} from "./utils/Test.sol";
import {MerkleTree} from "./utils/MerkleTree.sol";
import {SheafRegistry} from "../src/SheafRegistry.sol";
import {IAggregationProofVerifier} from "../src/IAggregationProofVerifier.sol";
import {ISheafRegistry} from "../src/ISheafRegistry.sol";
import {ExampleConsumer} from "../src/ExampleConsumer.sol";
import {StatementHash} from "../src/StatementHash.sol";
import {Merkle} from "../src/Merkle.sol";

/// Unit-test verifier: accepts iff proof == abi.encode(keccak256(root, leafCount)). The real gnark
/// Groth16 verifier is exercised on anvil (tests/contracts/test_registry_anvil.py).
contract HashLockVerifier is IAggregationProofVerifier {
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

/// A verifier that "returns" instead of reverting (the snarkjs pitfall): must never be accepted.
contract LaxVerifier {
    function verifyAggregation(bytes32, uint256, bytes calldata) external pure returns (bytes4) {
        return bytes4(0);
    }
}

contract SheafRegistryTest is Test {
    event AggregationSubmitted(
        uint256 indexed domainId, uint256 indexed aggregationId, bytes32 root, uint256 leafCount, uint8 kind
    );
    event OperatorAdded(address indexed operator);
    event OperatorRemoved(address indexed operator);
    event ThresholdChanged(uint256 previous, uint256 threshold);
    event DomainCreated(uint256 indexed domainId, address indexed submitter);
    event Paused(address indexed account);
    event Unpaused(address indexed account);
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event AggregationVerifierChanged(address indexed previous, address indexed verifier);
    event log_named_uint(string key, uint256 val);

    uint256 constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;
    uint256 constant N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
    address owner = address(0xA11CE);
    address stranger = address(0xBAD);
    SheafRegistry reg;
    HashLockVerifier hv;
    uint256[] keys;
    uint256 constant DOMAIN = 7;
    /// Attestation deadline used by the tests (forge starts at timestamp 1; <= MAX_ATTESTATION_TTL ahead).
    uint256 constant DL = 2 hours;

    function setUp() public {
        reg = new SheafRegistry(owner);
        hv = new HashLockVerifier();
        vm.startPrank(owner);
        reg.createDomain(DOMAIN, address(this)); // this contract posts the RECURSIVE submissions
        for (uint256 i = 1; i <= 4; ++i) {
            keys.push(i * 0x1111);
            reg.addOperator(vm.addr(i * 0x1111));
        }
        reg.setThreshold(3);
        reg.setAggregationVerifier(hv);
        vm.stopPrank();
    }

    // ------------------------------------------------------------------ helpers

    function _sig(uint256 key, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// signatures of `ks`, sorted by signer address ascending
    function _sigs(uint256[] memory ks, bytes32 digest) internal pure returns (bytes[] memory out) {
        uint256 n = ks.length;
        for (uint256 i; i < n; ++i) {
            for (uint256 j = i + 1; j < n; ++j) {
                if (vm.addr(ks[j]) < vm.addr(ks[i])) (ks[i], ks[j]) = (ks[j], ks[i]);
            }
        }
        out = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            out[i] = _sig(ks[i], digest);
        }
    }

    function _first(uint256 k) internal view returns (uint256[] memory ks) {
        ks = new uint256[](k);
        for (uint256 i; i < k; ++i) {
            ks[i] = keys[i];
        }
    }

    function _leaves(uint256 n) internal pure returns (bytes32[] memory l) {
        l = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            l[i] = keccak256(abi.encode("leaf", i));
        }
    }

    function _root(bytes32[] memory l) internal pure returns (bytes32) {
        bytes32[] memory c = new bytes32[](l.length);
        for (uint256 i; i < l.length; ++i) {
            c[i] = l[i];
        }
        return Merkle.root(c);
    }

    function _attest(uint256 aggId, bytes32 root, uint256 n) internal {
        bytes32 d = reg.aggregationDigest(DOMAIN, aggId, root, n, DL);
        reg.submitAttestedAggregation(DOMAIN, aggId, root, n, DL, _sigs(_first(3), d));
    }

    // ------------------------------------------------------------------ attested path

    function test_attested_acceptsThresholdAndEmits() public {
        bytes32 root = keccak256("r");
        bytes32 d = reg.aggregationDigest(DOMAIN, 1, root, 5, DL);
        bytes[] memory sigs = _sigs(_first(3), d);
        vm.expectEmit(true, true, false, true, address(reg));
        emit AggregationSubmitted(DOMAIN, 1, root, 5, 2);
        vm.prank(stranger); // anyone may relay operator signatures
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, DL, sigs);
        SheafRegistry.Aggregation memory a = reg.getAggregation(DOMAIN, 1);
        assertEq(a.root, root);
        assertEq(uint256(a.leafCount), 5);
        assertEq(uint256(a.kind), 2);
        assertEq(uint256(a.blockNumber), block.number);
        assertEq(reg.nextAggregationId(DOMAIN), 2);
        // all four operators is fine too
        bytes32 d2 = reg.aggregationDigest(DOMAIN, 2, root, 5, DL);
        reg.submitAttestedAggregation(DOMAIN, 2, root, 5, DL, _sigs(_first(4), d2));
    }

    function test_attested_rejectsBelowThreshold() public {
        bytes32 root = keccak256("r");
        bytes32 d = reg.aggregationDigest(DOMAIN, 1, root, 5, DL);
        bytes[] memory sigs = _sigs(_first(2), d);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.InsufficientSignatures.selector, 2, 3));
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, DL, sigs);
    }

    function test_attested_rejectsDuplicateSigner() public {
        bytes32 root = keccak256("r");
        bytes32 d = reg.aggregationDigest(DOMAIN, 1, root, 5, DL);
        bytes[] memory sigs = _sigs(_first(2), d);
        bytes[] memory dup = new bytes[](3);
        dup[0] = sigs[0];
        dup[1] = sigs[1];
        dup[2] = sigs[1];
        address signer = _signerOf(sigs[1], d);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.DuplicateSigner.selector, 2, signer));
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, DL, dup);
    }

    function _signerOf(bytes memory sig, bytes32 d) internal pure returns (address) {
        bytes32 r;
        bytes32 s;
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
        }
        return ecrecover(d, uint8(sig[64]), r, s);
    }

    function test_attested_rejectsUnsortedSigners() public {
        bytes32 root = keccak256("r");
        bytes32 d = reg.aggregationDigest(DOMAIN, 1, root, 5, DL);
        bytes[] memory sigs = _sigs(_first(3), d);
        (sigs[0], sigs[2]) = (sigs[2], sigs[0]);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.SignersNotAscending.selector, 1));
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, DL, sigs);
    }

    function test_attested_rejectsNonOperator() public {
        bytes32 root = keccak256("r");
        bytes32 d = reg.aggregationDigest(DOMAIN, 1, root, 5, DL);
        uint256[] memory ks = _first(3);
        ks[1] = 0xDEAD;
        bytes[] memory sigs = _sigs(ks, d);
        uint256 at = 3;
        for (uint256 i; i < 3; ++i) {
            if (_signerOf(sigs[i], d) == vm.addr(0xDEAD)) at = i;
        }
        assertTrue(at < 3);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.SignerNotOperator.selector, at, vm.addr(0xDEAD)));
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, DL, sigs);
    }

    function test_attested_rejectsHighS() public {
        bytes32 root = keccak256("r");
        bytes32 d = reg.aggregationDigest(DOMAIN, 1, root, 5, DL);
        bytes[] memory sigs = _sigs(_first(3), d);
        // the malleable twin (r, n - s, v ^ 1) recovers the same signer: must still be rejected
        bytes memory s0 = sigs[0];
        bytes32 r;
        uint256 s;
        assembly {
            r := mload(add(s0, 32))
            s := mload(add(s0, 64))
        }
        uint8 v = uint8(s0[64]) == 27 ? 28 : 27;
        assertTrue(N - s > HALF_N);
        assertEq(ecrecover(d, v, r, bytes32(N - s)), _signerOf(s0, d));
        sigs[0] = abi.encodePacked(r, bytes32(N - s), v);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.MalleableSignature.selector, 0));
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, DL, sigs);
    }

    function test_attested_rejectsBadVAndLength() public {
        bytes32 root = keccak256("r");
        bytes32 d = reg.aggregationDigest(DOMAIN, 1, root, 5, DL);
        bytes[] memory sigs = _sigs(_first(3), d);
        bytes memory s1 = sigs[1];
        s1[64] = bytes1(uint8(s1[64]) - 27); // 0/1 style v
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.InvalidSignatureV.selector, 1, uint8(s1[64])));
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, DL, sigs);
        sigs = _sigs(_first(3), d);
        sigs[2] = bytes.concat(sigs[2], hex"00");
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.InvalidSignatureLength.selector, 2, 66));
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, DL, sigs);
    }

    function test_attested_rejectsTamperedFields() public {
        bytes32 root = keccak256("r");
        bytes32 d = reg.aggregationDigest(DOMAIN, 1, root, 5, DL);
        bytes[] memory sigs = _sigs(_first(3), d);
        // a different leaf count or root recovers unrelated addresses: not operators
        vm.expectRevert();
        reg.submitAttestedAggregation(DOMAIN, 1, root, 6, DL, sigs);
        vm.expectRevert();
        reg.submitAttestedAggregation(DOMAIN, 1, keccak256("other"), 5, DL, sigs);
    }

    function test_attested_rejectsGapsAndReplay() public {
        bytes32 root = keccak256("r");
        bytes32 d2 = reg.aggregationDigest(DOMAIN, 2, root, 5, DL);
        bytes[] memory sigs2 = _sigs(_first(3), d2);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.UnexpectedAggregationId.selector, DOMAIN, 1, 2));
        reg.submitAttestedAggregation(DOMAIN, 2, root, 5, DL, sigs2);
        bytes32 d1 = reg.aggregationDigest(DOMAIN, 1, root, 5, DL);
        bytes[] memory sigs1 = _sigs(_first(3), d1);
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, DL, sigs1);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.UnexpectedAggregationId.selector, DOMAIN, 2, 1));
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, DL, sigs1);
    }

    function test_attested_rejectsOtherChainAndOtherRegistry() public {
        bytes32 root = keccak256("r");
        bytes32 d = reg.aggregationDigest(DOMAIN, 1, root, 5, DL);
        bytes[] memory sigs = _sigs(_first(3), d);
        // another registry with the same operators, domain and threshold
        vm.startPrank(owner);
        SheafRegistry other = new SheafRegistry(owner);
        other.createDomain(DOMAIN, address(0));
        for (uint256 i; i < 4; ++i) {
            other.addOperator(vm.addr(keys[i]));
        }
        other.setThreshold(3);
        vm.stopPrank();
        vm.expectRevert();
        other.submitAttestedAggregation(DOMAIN, 1, root, 5, DL, sigs);
        // same registry after a chain split (different chain id)
        uint256 chain = block.chainid;
        vm.chainId(chain + 1);
        assertTrue(reg.domainSeparator() != d);
        vm.expectRevert();
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, DL, sigs);
        vm.chainId(chain);
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, DL, sigs);
    }

    function test_attested_rejectsBadInputs() public {
        bytes[] memory none = new bytes[](0);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.UnknownDomain.selector, 99));
        reg.submitAttestedAggregation(99, 1, keccak256("r"), 1, DL, none);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.InvalidLeafCount.selector, 0));
        reg.submitAttestedAggregation(DOMAIN, 1, keccak256("r"), 0, DL, none);
        vm.expectRevert(SheafRegistry.ZeroRoot.selector);
        reg.submitAttestedAggregation(DOMAIN, 1, bytes32(0), 1, DL, none);
    }

    function test_thresholdNotSet() public {
        vm.prank(owner);
        SheafRegistry fresh = new SheafRegistry(owner);
        vm.prank(owner);
        fresh.createDomain(1, address(0));
        vm.expectRevert(SheafRegistry.ThresholdNotSet.selector);
        fresh.submitAttestedAggregation(1, 1, keccak256("r"), 1, DL, new bytes[](0));
    }

    /// n operators, threshold t, s distinct operator signatures: accepted iff s >= t.
    function testFuzz_attested_threshold(uint8 nOps, uint8 t, uint8 s) public {
        uint256 n = bound(nOps, 1, 8);
        uint256 thr = bound(t, 1, n);
        uint256 sc = bound(s, 0, n);
        vm.startPrank(owner);
        SheafRegistry r = new SheafRegistry(owner);
        r.createDomain(1, address(0));
        uint256[] memory ks = new uint256[](sc);
        for (uint256 i; i < n; ++i) {
            r.addOperator(vm.addr(0xA000 + i));
            if (i < sc) ks[i] = 0xA000 + i;
        }
        r.setThreshold(thr);
        vm.stopPrank();
        bytes32 root = keccak256(abi.encode(n, thr, sc));
        bytes[] memory sigs = _sigs(ks, r.aggregationDigest(1, 1, root, 3, DL));
        if (sc < thr) {
            vm.expectRevert(abi.encodeWithSelector(SheafRegistry.InsufficientSignatures.selector, sc, thr));
        }
        r.submitAttestedAggregation(1, 1, root, 3, DL, sigs);
        assertEq(r.nextAggregationId(1), sc < thr ? 1 : 2);
    }

    // ------------------------------------------------------------------ recursive path

    function test_recursive_leavesBuildsRootAndCallsVerifier() public {
        bytes32[] memory l = _leaves(5);
        bytes32 root = _root(l);
        bytes memory proof = abi.encode(keccak256(abi.encode(root, uint256(5))));
        vm.expectEmit(true, true, false, true, address(reg));
        emit AggregationSubmitted(DOMAIN, 1, root, 5, 1);
        assertEq(reg.submitRecursiveAggregation(DOMAIN, 1, l, proof), root);
        // wrong proof (for another leaf count) reverts with the verifier's error
        bytes32[] memory l4 = _leaves(4);
        vm.expectRevert(HashLockVerifier.BadProof.selector);
        reg.submitRecursiveAggregation(DOMAIN, 2, l4, proof);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.InvalidLeafCount.selector, 0));
        reg.submitRecursiveAggregation(DOMAIN, 2, new bytes32[](0), proof);
    }

    function test_recursive_rootVariant() public {
        bytes32 root = keccak256("root");
        bytes memory proof = abi.encode(keccak256(abi.encode(root, uint256(9))));
        reg.submitRecursiveAggregationRoot(DOMAIN, 1, root, 9, proof);
        assertEq(uint256(reg.getAggregation(DOMAIN, 1).kind), 1);
        vm.expectRevert(HashLockVerifier.BadProof.selector);
        reg.submitRecursiveAggregationRoot(DOMAIN, 2, root, 10, proof);
    }

    function test_recursive_rejectsLaxOrMissingVerifier() public {
        bytes32[] memory l = _leaves(2);
        LaxVerifier lax = new LaxVerifier();
        vm.prank(owner);
        reg.setAggregationVerifier(IAggregationProofVerifier(address(lax)));
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.VerifierRejected.selector, bytes4(0)));
        reg.submitRecursiveAggregation(DOMAIN, 1, l, "");
        vm.prank(owner);
        reg.setAggregationVerifier(IAggregationProofVerifier(address(0)));
        vm.expectRevert(SheafRegistry.VerifierNotSet.selector);
        reg.submitRecursiveAggregation(DOMAIN, 1, l, "");
        // an address without code: the call's return data cannot decode, so it reverts
        vm.prank(owner);
        reg.setAggregationVerifier(IAggregationProofVerifier(address(0x1234)));
        vm.expectRevert();
        reg.submitRecursiveAggregation(DOMAIN, 1, l, "");
    }

    function test_recursive_submitterRestriction() public {
        vm.prank(owner);
        reg.createDomain(8, address(0xCAFE));
        bytes32[] memory l = _leaves(3);
        bytes memory proof = abi.encode(keccak256(abi.encode(_root(l), uint256(3))));
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.NotSubmitter.selector, 8, stranger));
        vm.prank(stranger);
        reg.submitRecursiveAggregation(8, 1, l, proof);
        vm.prank(address(0xCAFE));
        reg.submitRecursiveAggregation(8, 1, l, proof);
    }

    function test_recursive_zeroSubmitterRefusesRecursiveOnly() public {
        vm.prank(owner);
        reg.createDomain(9, address(0));
        bytes32[] memory l = _leaves(3);
        bytes32 root = _root(l);
        bytes memory proof = abi.encode(keccak256(abi.encode(root, uint256(3))));
        address[3] memory callers = [stranger, owner, address(this)];
        for (uint256 i; i < 3; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(abi.encodeWithSelector(SheafRegistry.SubmitterNotSet.selector, 9));
            reg.submitRecursiveAggregation(9, 1, l, proof);
            vm.prank(callers[i]);
            vm.expectRevert(abi.encodeWithSelector(SheafRegistry.SubmitterNotSet.selector, 9));
            reg.submitRecursiveAggregationRoot(9, 1, root, 3, proof);
        }
        // refused before the id and the proof are looked at
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.SubmitterNotSet.selector, 9));
        reg.submitRecursiveAggregationRoot(9, 5, root, 3, "");
        assertEq(reg.nextAggregationId(9), 1);
        // ATTESTED is unaffected
        bytes32 d = reg.aggregationDigest(9, 1, root, 3, DL);
        reg.submitAttestedAggregation(9, 1, root, 3, DL, _sigs(_first(3), d));
        // the owner can close a domain's RECURSIVE route again by clearing its submitter
        vm.prank(owner);
        reg.setDomainSubmitter(DOMAIN, address(0));
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.SubmitterNotSet.selector, DOMAIN));
        reg.submitRecursiveAggregation(DOMAIN, 1, l, proof);
    }

    // ------------------------------------------------------------------ recursive replay (issue 13)
    // The outer recursive proof binds only (root, leafCount), not (chain, registry, domain, id): whoever
    // may post RECURSIVE on a domain can re-post another submission's public calldata there. These tests
    // replay a recorded submission's calldata, unchanged but for the (domainId, aggregationId) words.

    address constant AGG = address(0xA66); // the aggregator's submitter key
    uint256 constant OWN = 20; // submitter AGG
    uint256 constant OPEN = 21; // zero submitter: what `sheaf-deploy configure --domain 21` leaves

    /// AGG records ids 1 (leaves variant) and 2 (root variant) of OWN; returns both calldatas.
    function _recordRecursive() internal returns (bytes memory rec, bytes memory recRoot) {
        vm.startPrank(owner);
        reg.createDomain(OWN, AGG);
        reg.createDomain(OPEN, address(0));
        vm.stopPrank();
        bytes32[] memory l = _leaves(3);
        bytes32 root = _root(l);
        bytes memory proof = abi.encode(keccak256(abi.encode(root, uint256(3))));
        rec = abi.encodeCall(SheafRegistry.submitRecursiveAggregation, (OWN, 1, l, proof));
        recRoot = abi.encodeCall(SheafRegistry.submitRecursiveAggregationRoot, (OWN, 2, root, 3, proof));
        bool ok;
        vm.prank(AGG);
        (ok,) = address(reg).call(rec);
        assertTrue(ok);
        vm.prank(AGG);
        (ok,) = address(reg).call(recRoot);
        assertTrue(ok);
        assertEq(reg.nextAggregationId(OWN), 3);
    }

    /// `recorded` with its (domainId, aggregationId) words (the first two arguments) replaced
    function _retarget(bytes memory recorded, uint256 domainId, uint256 aggId)
        internal
        pure
        returns (bytes memory cd)
    {
        cd = bytes.concat(recorded);
        assembly {
            mstore(add(cd, 36), domainId)
            mstore(add(cd, 68), aggId)
        }
    }

    /// `cd` sent by `from` reverts with exactly `err` and changes nothing: ids and stored aggregations
    function _refused(address from, bytes memory cd, bytes memory err) internal {
        uint256 nOwn = reg.nextAggregationId(OWN);
        uint256 nOpen = reg.nextAggregationId(OPEN);
        vm.prank(from);
        (bool ok, bytes memory ret) = address(reg).call(cd);
        assertFalse(ok, "replayed calldata accepted");
        assertEq(keccak256(ret), keccak256(err), "revert data");
        assertEq(reg.nextAggregationId(OWN), nOwn);
        assertEq(reg.nextAggregationId(OPEN), nOpen);
        assertEq(uint256(reg.getAggregation(OWN, nOwn).kind), 0);
        assertEq(uint256(reg.getAggregation(OPEN, nOpen).kind), 0);
    }

    function _notSubmitter(uint256 domainId, address caller) internal pure returns (bytes memory) {
        return abi.encodeWithSignature("NotSubmitter(uint256,address)", domainId, caller);
    }

    function _submitterNotSet(uint256 domainId) internal pure returns (bytes memory) {
        return abi.encodeWithSignature("SubmitterNotSet(uint256)", domainId);
    }

    function test_replay_outsiderAtNextIdOfSameDomain() public {
        (bytes memory rec, bytes memory recRoot) = _recordRecursive();
        _refused(stranger, _retarget(rec, OWN, 3), _notSubmitter(OWN, stranger));
        _refused(stranger, _retarget(recRoot, OWN, 3), _notSubmitter(OWN, stranger));
        // the owner clears the submitter (before: "anyone may submit"): RECURSIVE closes, for everyone
        vm.prank(owner);
        reg.setDomainSubmitter(OWN, address(0));
        _refused(stranger, _retarget(rec, OWN, 3), _submitterNotSet(OWN));
        _refused(stranger, _retarget(recRoot, OWN, 3), _submitterNotSet(OWN));
        _refused(AGG, _retarget(rec, OWN, 3), _submitterNotSet(OWN));
        // the used ids stay as recorded
        assertEq(reg.getAggregation(OWN, 1).root, reg.getAggregation(OWN, 2).root);
        assertEq(uint256(reg.getAggregation(OWN, 2).kind), 1);
    }

    function test_replay_outsiderAtId1OfZeroSubmitterDomain() public {
        (bytes memory rec, bytes memory recRoot) = _recordRecursive();
        _refused(stranger, _retarget(rec, OPEN, 1), _submitterNotSet(OPEN));
        _refused(stranger, _retarget(recRoot, OPEN, 1), _submitterNotSet(OPEN));
        // nor another domain's submitter, nor the owner: nobody posts RECURSIVE on a zero-submitter domain
        _refused(AGG, _retarget(rec, OPEN, 1), _submitterNotSet(OPEN));
        _refused(owner, _retarget(recRoot, OPEN, 1), _submitterNotSet(OPEN));
        // ATTESTED stays open there: the signatures bind chain, registry, domain and id; anyone relays
        bytes32 root = reg.getAggregation(OWN, 1).root;
        bytes32 d = reg.aggregationDigest(OPEN, 1, root, 3, DL);
        vm.prank(stranger);
        reg.submitAttestedAggregation(OPEN, 1, root, 3, DL, _sigs(_first(3), d));
        assertEq(uint256(reg.getAggregation(OPEN, 1).kind), 2);
        // once the owner names a submitter, that address (only) may post RECURSIVE there
        vm.prank(owner);
        reg.setDomainSubmitter(OPEN, AGG);
        _refused(stranger, _retarget(rec, OPEN, 2), _notSubmitter(OPEN, stranger));
        vm.prank(AGG);
        (bool ok,) = address(reg).call(_retarget(rec, OPEN, 2));
        assertTrue(ok);
        assertEq(uint256(reg.getAggregation(OPEN, 2).kind), 1);
    }

    /// Honest-path gas (gasleft around the call; first submission of a fresh domain, cold slots).
    function test_gas_honestSubmissions() public {
        vm.prank(owner);
        reg.createDomain(30, AGG);
        bytes32[] memory l = _leaves(8);
        bytes32 root = _root(l);
        bytes memory proof = abi.encode(keccak256(abi.encode(root, uint256(8))));
        vm.prank(AGG);
        uint256 g = gasleft();
        reg.submitRecursiveAggregation(30, 1, l, proof);
        emit log_named_uint("gas submitRecursiveAggregation (8 leaves, hash-lock verifier)", g - gasleft());
        vm.prank(AGG);
        g = gasleft();
        reg.submitRecursiveAggregationRoot(30, 2, root, 8, proof);
        emit log_named_uint("gas submitRecursiveAggregationRoot (hash-lock verifier)", g - gasleft());
        bytes[] memory sigs = _sigs(_first(3), reg.aggregationDigest(30, 3, root, 8, DL));
        vm.prank(stranger);
        g = gasleft();
        reg.submitAttestedAggregation(30, 3, root, 8, DL, sigs);
        emit log_named_uint("gas submitAttestedAggregation (3 of 4)", g - gasleft());
        assertEq(reg.nextAggregationId(30), 4);
    }

    // ------------------------------------------------------------------ inclusion

    function testFuzz_inclusionEveryLeaf(uint8 width) public {
        uint256 n = bound(width, 1, 40);
        bytes32[] memory l = _leaves(n);
        bytes32 root = _root(l);
        _attest(1, root, n);
        for (uint256 i; i < n; ++i) {
            bytes32[] memory path = _path(l, i);
            assertTrue(reg.verifyProofAggregation(DOMAIN, 1, l[i], path, n, i));
            (bool ok, uint8 kind) = reg.verifyProofAggregationKind(DOMAIN, 1, l[i], path, n, i);
            assertTrue(ok);
            assertEq(uint256(kind), 2);
            // wrong aggregation id, wrong domain, wrong leaf count, wrong index, wrong leaf
            assertFalse(reg.verifyProofAggregation(DOMAIN, 2, l[i], path, n, i));
            assertFalse(reg.verifyProofAggregation(DOMAIN + 1, 1, l[i], path, n, i));
            assertFalse(reg.verifyProofAggregation(DOMAIN, 1, l[i], path, n + 1, i));
            assertFalse(reg.verifyProofAggregation(DOMAIN, 1, l[i], path, n, (i + 1) % (n + 1)));
            assertFalse(reg.verifyProofAggregation(DOMAIN, 1, keccak256(abi.encode(l[i])), path, n, i));
        }
    }

    function _path(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory path) {
        (, path) = MerkleTree.build(leaves, index);
    }

    // ------------------------------------------------------------------ admin, access control, pause

    function test_onlyOwner() public {
        bytes memory err = abi.encodeWithSelector(SheafRegistry.NotOwner.selector, stranger);
        vm.startPrank(stranger);
        vm.expectRevert(err);
        reg.createDomain(9, address(0));
        vm.expectRevert(err);
        reg.setDomainSubmitter(DOMAIN, stranger);
        vm.expectRevert(err);
        reg.addOperator(stranger);
        vm.expectRevert(err);
        reg.removeOperator(vm.addr(keys[0]));
        vm.expectRevert(err);
        reg.setThreshold(1);
        vm.expectRevert(err);
        reg.setAggregationVerifier(IAggregationProofVerifier(address(0)));
        vm.expectRevert(err);
        reg.pause();
        vm.expectRevert(err);
        reg.unpause();
        vm.expectRevert(err);
        reg.transferOwnership(stranger);
        vm.stopPrank();
    }

    function test_adminEventsAndChecks() public {
        vm.startPrank(owner);
        vm.expectEmit(true, true, false, true, address(reg));
        emit DomainCreated(9, address(0xCAFE));
        reg.createDomain(9, address(0xCAFE));
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.DomainExists.selector, 9));
        reg.createDomain(9, address(0));
        vm.expectRevert(SheafRegistry.InvalidDomainId.selector);
        reg.createDomain(0, address(0));
        vm.expectEmit(true, false, false, true, address(reg));
        emit OperatorAdded(address(0xB0B));
        reg.addOperator(address(0xB0B));
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.OperatorExists.selector, address(0xB0B)));
        reg.addOperator(address(0xB0B));
        vm.expectEmit(false, false, false, true, address(reg));
        emit ThresholdChanged(3, 5);
        reg.setThreshold(5);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.InvalidThreshold.selector, 6, 5));
        reg.setThreshold(6);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.InvalidThreshold.selector, 0, 5));
        reg.setThreshold(0);
        // removing would drop below the threshold
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.InvalidThreshold.selector, 5, 4));
        reg.removeOperator(address(0xB0B));
        reg.setThreshold(4);
        vm.expectEmit(true, false, false, true, address(reg));
        emit OperatorRemoved(address(0xB0B));
        reg.removeOperator(address(0xB0B));
        assertEq(reg.operatorCount(), 4);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.NotAnOperator.selector, address(0xB0B)));
        reg.removeOperator(address(0xB0B));
        vm.expectEmit(true, true, false, true, address(reg));
        emit AggregationVerifierChanged(address(hv), address(0));
        reg.setAggregationVerifier(IAggregationProofVerifier(address(0)));
        vm.stopPrank();
    }

    function test_removedOperatorCannotSign() public {
        vm.startPrank(owner);
        reg.removeOperator(vm.addr(keys[0]));
        vm.stopPrank();
        bytes32 root = keccak256("r");
        bytes32 d = reg.aggregationDigest(DOMAIN, 1, root, 5, DL);
        bytes[] memory sigs = _sigs(_first(3), d);
        vm.expectRevert();
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, DL, sigs);
    }

    function test_pauseBlocksSubmissionsOnly() public {
        bytes32[] memory l = _leaves(2);
        bytes32 root = _root(l);
        _attest(1, root, 2);
        vm.expectEmit(true, false, false, true, address(reg));
        emit Paused(owner);
        vm.prank(owner);
        reg.pause();
        bytes32 d = reg.aggregationDigest(DOMAIN, 2, root, 2, DL);
        bytes[] memory sigs = _sigs(_first(3), d);
        vm.expectRevert(SheafRegistry.IsPaused.selector);
        reg.submitAttestedAggregation(DOMAIN, 2, root, 2, DL, sigs);
        vm.expectRevert(SheafRegistry.IsPaused.selector);
        reg.submitRecursiveAggregation(DOMAIN, 2, l, "");
        vm.expectRevert(SheafRegistry.IsPaused.selector);
        reg.submitRecursiveAggregationRoot(DOMAIN, 2, root, 2, "");
        // reads still work while paused
        assertTrue(reg.verifyProofAggregation(DOMAIN, 1, l[0], _path(l, 0), 2, 0));
        vm.prank(owner);
        vm.expectRevert(SheafRegistry.IsPaused.selector);
        reg.pause();
        vm.expectEmit(true, false, false, true, address(reg));
        emit Unpaused(owner);
        vm.prank(owner);
        reg.unpause();
        vm.prank(owner);
        vm.expectRevert(SheafRegistry.NotPaused.selector);
        reg.unpause();
        reg.submitAttestedAggregation(DOMAIN, 2, root, 2, DL, sigs);
    }

    function test_twoStepOwnership() public {
        vm.expectEmit(true, true, false, true, address(reg));
        emit OwnershipTransferStarted(owner, address(0xB0B));
        vm.prank(owner);
        reg.transferOwnership(address(0xB0B));
        assertEq(reg.owner(), owner); // not yet
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.NotPendingOwner.selector, stranger));
        reg.acceptOwnership();
        vm.expectEmit(true, true, false, true, address(reg));
        emit OwnershipTransferred(owner, address(0xB0B));
        vm.prank(address(0xB0B));
        reg.acceptOwnership();
        assertEq(reg.owner(), address(0xB0B));
        assertEq(reg.pendingOwner(), address(0));
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.NotOwner.selector, owner));
        reg.pause();
        vm.prank(address(0xB0B));
        vm.expectRevert(SheafRegistry.ZeroAddress.selector);
        reg.transferOwnership(address(0));
    }

    // ------------------------------------------------------------------ expiry (issue 13)

    function test_attested_expiresAtDeadline() public {
        bytes32 root = keccak256("r");
        uint256 deadline = block.timestamp + 600;
        bytes[] memory sigs = _sigs(_first(3), reg.aggregationDigest(DOMAIN, 1, root, 5, deadline));
        vm.warp(deadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(SheafRegistry.AttestationExpired.selector, deadline, deadline + 1)
        );
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, deadline, sigs);
        // the same signatures with the deadline moved on recover other signers: not operators
        vm.expectRevert();
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, deadline + 600, sigs);
        vm.warp(deadline); // the deadline itself is still valid
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, deadline, sigs);
        assertEq(reg.getAggregation(DOMAIN, 1).root, root);
    }

    function test_attested_refusesDeadlineBeyondTtl() public {
        bytes32 root = keccak256("r");
        uint256 far = block.timestamp + reg.MAX_ATTESTATION_TTL() + 1;
        bytes[] memory sigs = _sigs(_first(3), reg.aggregationDigest(DOMAIN, 1, root, 5, far));
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.DeadlineTooFar.selector, far, far - 1));
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, far, sigs);
        vm.warp(block.timestamp + 1); // within the TTL one second later
        reg.submitAttestedAggregation(DOMAIN, 1, root, 5, far, sigs);
    }

    // ------------------------------------------------------------------ configuration delay and floor

    event ConfigChangeQueued(
        uint256 indexed changeId, uint8 indexed kind, address target, uint256 value, uint256 eta
    );
    event ConfigChangeExecuted(uint256 indexed changeId);
    event ConfigChangeCancelled(uint256 indexed changeId);
    event MinThresholdChanged(uint256 previous, uint256 minThreshold);
    event ConfigDelayChanged(uint256 previous, uint256 delay);

    function test_configDelay_changesWaitAndAreAnnounced() public {
        vm.prank(owner);
        vm.expectEmit(false, false, false, true, address(reg));
        emit ConfigDelayChanged(0, 2 days);
        reg.setConfigDelay(2 days); // the first delay applies at once (the delay was 0)
        uint256 t0 = block.timestamp;
        uint256 id = reg.nextChangeId();
        vm.expectEmit(true, true, false, true, address(reg));
        emit ConfigChangeQueued(id, reg.CHANGE_REMOVE_OPERATOR(), vm.addr(keys[3]), 0, t0 + 2 days);
        vm.prank(owner);
        assertEq(reg.removeOperator(vm.addr(keys[3])), id);
        assertTrue(reg.isOperator(vm.addr(keys[3]))); // announced, not in effect
        vm.prank(owner);
        uint256 idK = reg.setThreshold(4); // threshold 4 of 4 queued too
        vm.warp(t0 + 2 days - 1);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.ChangeNotReady.selector, id, t0 + 2 days));
        reg.executeConfigChange(id);
        vm.warp(t0 + 2 days);
        vm.expectEmit(true, false, false, true, address(reg));
        emit OperatorRemoved(vm.addr(keys[3]));
        vm.expectEmit(true, false, false, true, address(reg));
        emit ConfigChangeExecuted(id);
        vm.prank(stranger); // anyone may execute a matured change
        reg.executeConfigChange(id);
        assertFalse(reg.isOperator(vm.addr(keys[3])));
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.UnknownChange.selector, id));
        reg.executeConfigChange(id); // once
        // checked again when applied: 4 of 3 operators is refused, the change stays queued
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.InvalidThreshold.selector, 4, 3));
        reg.executeConfigChange(idK);
        assertEq(reg.getConfigChange(idK).kind, reg.CHANGE_THRESHOLD());
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.NotOwner.selector, stranger));
        reg.cancelConfigChange(idK);
        vm.expectEmit(true, false, false, true, address(reg));
        emit ConfigChangeCancelled(idK);
        vm.prank(owner);
        reg.cancelConfigChange(idK);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.UnknownChange.selector, idK));
        reg.executeConfigChange(idK);
        // the delay itself is changed under the delay, and is bounded
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.DelayTooLong.selector, 31 days, 30 days));
        reg.setConfigDelay(31 days);
        vm.prank(owner);
        uint256 idD = reg.setConfigDelay(0);
        assertEq(reg.configDelay(), 2 days);
        vm.warp(block.timestamp + 2 days);
        reg.executeConfigChange(idD);
        assertEq(reg.configDelay(), 0);
    }

    function test_minThreshold_floor() public {
        vm.startPrank(owner);
        vm.expectEmit(false, false, false, true, address(reg));
        emit MinThresholdChanged(1, 2);
        reg.setMinThreshold(2);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.InvalidThreshold.selector, 1, 4));
        reg.setThreshold(1); // below the floor
        reg.setThreshold(2);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.InvalidMinThreshold.selector, 3, 2));
        reg.setMinThreshold(3); // above the threshold
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.InvalidMinThreshold.selector, 0, 2));
        reg.setMinThreshold(0);
        vm.expectRevert(abi.encodeWithSelector(SheafRegistry.InvalidThreshold.selector, 5, 4));
        reg.setThreshold(5); // above n
        vm.stopPrank();
    }

    function test_ownershipTransferWaitsForTheDelay() public {
        vm.startPrank(owner);
        reg.setConfigDelay(1 days);
        reg.transferOwnership(address(0xB0B));
        vm.stopPrank();
        assertEq(reg.ownershipTransferEta(), block.timestamp + 1 days);
        vm.prank(address(0xB0B));
        vm.expectRevert(
            abi.encodeWithSelector(SheafRegistry.OwnershipNotReady.selector, block.timestamp + 1 days)
        );
        reg.acceptOwnership();
        vm.warp(block.timestamp + 1 days);
        vm.prank(address(0xB0B));
        reg.acceptOwnership();
        assertEq(reg.owner(), address(0xB0B));
        assertEq(reg.ownershipTransferEta(), 0);
    }

    // ------------------------------------------------------------------ ExampleConsumer

    function test_consumer_acceptsOnlyIncludedStatementOfRequiredKind() public {
        bytes32 vkHash = keccak256("vk");
        uint256[] memory pubs = new uint256[](2);
        pubs[0] = 42;
        pubs[1] = 7;
        bytes32 stmt = StatementHash.statementHash(1, vkHash, pubs);
        bytes32[] memory l = _leaves(3);
        l[1] = stmt;
        bytes32 root = _root(l);
        _attest(1, root, 3);
        bytes32[] memory path = _path(l, 1);

        ExampleConsumer anyKind = new ExampleConsumer(ISheafRegistry(address(reg)), DOMAIN, 0, 1, vkHash);
        ExampleConsumer recursiveOnly =
            new ExampleConsumer(ISheafRegistry(address(reg)), DOMAIN, 1, 1, vkHash);

        vm.expectRevert(abi.encodeWithSelector(ExampleConsumer.WrongKind.selector, 1, 2));
        recursiveOnly.acceptResult(pubs, 1, path, 3, 1);

        assertEq(anyKind.acceptResult(pubs, 1, path, 3, 1), stmt);
        assertTrue(anyKind.accepted(stmt));
        vm.expectRevert(abi.encodeWithSelector(ExampleConsumer.AlreadyAccepted.selector, stmt));
        anyKind.acceptResult(pubs, 1, path, 3, 1);

        // a different output (public input) is a different statement: not included
        pubs[1] = 8;
        bytes32 other = StatementHash.statementHash(1, vkHash, pubs);
        vm.expectRevert(abi.encodeWithSelector(ExampleConsumer.NotIncluded.selector, other));
        anyKind.acceptResult(pubs, 1, path, 3, 1);
    }
}
