// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Test, Vm} from "./utils/Test.sol";
import {SheafRegistry} from "../src/SheafRegistry.sol";
import {IAggregationProofVerifier} from "../src/IAggregationProofVerifier.sol";
import {Merkle} from "../src/Merkle.sol";

/// Hash-lock verifier for the invariant run: accepts `proof == abi.encode(keccak256(root, leafCount))`
/// only for pairs the handler proved (stands in for "a valid recursive proof of (root, leafCount) exists").
contract ProvedPairsVerifier is IAggregationProofVerifier {
    address public immutable prover;
    mapping(bytes32 => bool) public proved;

    error BadProof();
    error NotProver();

    constructor(address prover_) {
        prover = prover_;
    }

    function key(bytes32 root, uint256 leafCount) public pure returns (bytes32) {
        return keccak256(abi.encode(root, leafCount));
    }

    function prove(bytes32 root, uint256 leafCount) external {
        if (msg.sender != prover) revert NotProver();
        proved[key(root, leafCount)] = true;
    }

    function verifyAggregation(bytes32 root, uint256 leafCount, bytes calldata proof)
        external
        view
        returns (bytes4)
    {
        bytes32 k = key(root, leafCount);
        if (!proved[k] || keccak256(proof) != keccak256(abi.encode(k))) revert BadProof();
        return IAggregationProofVerifier.verifyAggregation.selector;
    }
}

/// Drives SheafRegistry from a fixed cast of actors and keeps a model of it. Every action is a
/// low-level call (never reverts itself); the model predicts whether each call succeeds, and
/// violations are latched in flags that the invariants read.
contract RegistryHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    uint8 internal constant RECURSIVE = 1;
    uint8 internal constant ATTESTED = 2;
    uint256 internal constant N_DOMAINS = 5; // 1..3 created in the constructor, 4..5 by createDomain
    uint256 internal constant N_KEYS = 5;
    uint256 internal constant DL = 2 hours; // attestation deadline (forge starts at timestamp 1)

    address internal constant OWNER_A = address(0xA11CE);
    address internal constant OWNER_B = address(0xB0B);
    address internal constant SUB1 = address(0x5001);
    address internal constant SUB2 = address(0x5002);
    address internal constant STRANGER = address(0xBAD);

    SheafRegistry public immutable reg;
    ProvedPairsVerifier public immutable verifier;

    // ------------------------------------------------------------------ model (ghost state)
    address public ghostOwner = OWNER_A;
    address public ghostPending;
    bool public ghostPaused;
    bool public ghostVerifierSet = true;
    uint256 public ghostThreshold = 2;
    uint256 public ghostOps; // bitmask over operator keys 0..4
    mapping(uint256 => bool) public ghostExists;
    mapping(uint256 => address) public ghostSubmitter;
    mapping(uint256 => uint256) public ghostLast;
    uint256 public ghostMin = 1; // minThreshold
    uint256 public ghostDelay; // configDelay
    uint256 public ghostOwnershipEta;
    uint256 public ghostNextChange = 1;

    /// a queued configuration change (admin fn 2, 3, 4, 5, 10, 11 with its arg), applicable from eta
    struct Pending {
        uint8 fn;
        uint256 arg;
        uint256 eta;
        bool live;
    }

    mapping(uint256 => Pending) public ghostChanges;

    /// what each successful submission rested on, for the invariants to re-check independently
    struct Rec {
        uint8 kind;
        bytes32 root;
        uint256 leafCount;
        address sender;
        address submitterAtTime; // RECURSIVE: the model's submitter of the domain when it was accepted
        uint256 thresholdAtTime; // ATTESTED: the model's threshold and operator set then
        uint256 opsAtTime;
        uint256 deadline; // ATTESTED: the signed deadline, and the block time it was accepted at
        uint256 acceptedAt;
        bytes[] sigs;
    }

    mapping(uint256 => mapping(uint256 => Rec)) internal _recs;
    bytes[] internal _calldata; // every accepted submission, for replays
    uint8[] internal _calldataKind;
    uint256[] internal _calldataDomain;
    uint256[] internal _calldataId;
    bytes32[][] internal _batches;

    // ------------------------------------------------------------------ latched violations
    bool public modelMismatch; // a call succeeded where the model says it must fail, or vice versa
    bool public replayChangedState;
    bool public pausedSubmissionChangedState;
    bool public configChangedByNonOwner;
    bool public submissionChangedConfig;
    string public lastMismatch;

    // ------------------------------------------------------------------ coverage counters
    uint256 public nRecursiveOk;
    uint256 public nRecursiveRefused;
    uint256 public nAttestedOk;
    uint256 public nAttestedRefused;
    uint256 public nReplays;
    uint256 public nAdminOk;
    uint256 public nAdminRefused;
    uint256 public nOwnershipMoves;
    uint256 public nExpiredRefused;
    uint256 public nQueued; // config changes queued under a non-zero delay
    uint256 public nExecuted;
    uint256 public nEarlyRefused; // executions and ownership acceptances refused before their eta

    constructor() {
        reg = new SheafRegistry(OWNER_A);
        verifier = new ProvedPairsVerifier(address(this));
        vm.startPrank(OWNER_A);
        reg.createDomain(1, SUB1);
        reg.createDomain(2, SUB2);
        reg.createDomain(3, address(0)); // ATTESTED-only
        for (uint256 i; i < 4; ++i) {
            reg.addOperator(vm.addr(opKey(i)));
        }
        reg.setThreshold(2);
        reg.setAggregationVerifier(verifier);
        vm.stopPrank();
        (ghostExists[1], ghostExists[2], ghostExists[3]) = (true, true, true);
        (ghostSubmitter[1], ghostSubmitter[2]) = (SUB1, SUB2);
        ghostOps = 0x0F;
        ghostNextChange = reg.nextChangeId(); // the setup's changes applied at once (delay 0)
    }

    // ------------------------------------------------------------------ views for the invariants

    function opKey(uint256 i) public pure returns (uint256) {
        return 0xC0FFEE00 + i;
    }

    function record(uint256 d, uint256 id) external view returns (Rec memory) {
        return _recs[d][id];
    }

    function actors() public pure returns (address[5] memory) {
        return [OWNER_A, OWNER_B, SUB1, SUB2, STRANGER];
    }

    function batchCount() external view returns (uint256) {
        return _batches.length;
    }

    function recordedCount() external view returns (uint256) {
        return _calldata.length;
    }

    // ------------------------------------------------------------------ actions: proving

    /// A recursive proof of a fresh batch now exists (the verifier will accept its pair).
    function prove(uint256 seed) external {
        if (_batches.length >= 24) return;
        bytes32[] memory leaves = _makeLeaves(seed);
        verifier.prove(_root(leaves), leaves.length);
        _batches.push(leaves);
    }

    // ------------------------------------------------------------------ actions: submissions

    function submitRecursive(
        uint256 actorSeed,
        uint256 domainSeed,
        uint256 batchSeed,
        uint256 idSeed,
        uint8 mode
    ) external {
        uint256 d = _domain(domainSeed);
        // mostly the domain's own submitter (else nothing would ever succeed), sometimes anyone
        address actor =
            ghostSubmitter[d] != address(0) && actorSeed % 3 != 0 ? ghostSubmitter[d] : _actor(actorSeed);
        uint256 id = _id(d, idSeed);
        bytes32[] memory leaves;
        bool proved;
        if (_batches.length == 0 || mode % 5 == 4) {
            leaves = _makeLeaves(uint256(keccak256(abi.encode("unproven", batchSeed))));
        } else {
            leaves = _batches[batchSeed % _batches.length];
            proved = true;
        }
        bytes32 root = _root(leaves);
        bytes memory proof = abi.encode(verifier.key(root, leaves.length));
        bytes memory cd = mode % 2 == 0
            ? abi.encodeCall(SheafRegistry.submitRecursiveAggregation, (d, id, leaves, proof))
            : abi.encodeCall(
                SheafRegistry.submitRecursiveAggregationRoot, (d, id, root, leaves.length, proof)
            );
        bool expected = ghostExists[d] && !ghostPaused && ghostSubmitter[d] != address(0)
            && actor == ghostSubmitter[d] && id == ghostLast[d] + 1 && ghostVerifierSet && proved;
        bool ok = _submit(actor, cd, expected, "recursive");
        if (ok) {
            ++nRecursiveOk;
            Rec storage r = _accept(d, id, RECURSIVE, cd);
            (r.root, r.leafCount, r.sender) = (root, leaves.length, actor);
            r.submitterAtTime = ghostSubmitter[d];
        } else {
            ++nRecursiveRefused;
        }
    }

    /// keyMask picks the signing keys (bit i: opKey(i)); tamper != 0 signs another domain or id than posted.
    function submitAttested(
        uint256 actorSeed,
        uint256 domainSeed,
        uint256 batchSeed,
        uint256 idSeed,
        uint8 keyMask,
        uint8 tamper
    ) external {
        uint256 d = _domain(domainSeed);
        bytes32[] memory leaves =
            _batches.length == 0 ? _makeLeaves(batchSeed) : _batches[batchSeed % _batches.length];
        _attested(
            _actor(actorSeed),
            d,
            _id(d, idSeed),
            _root(leaves),
            leaves.length,
            keyMask,
            tamper % 8,
            batchSeed >> 16
        );
    }

    /// Moves the block time forward (deadlines expire, queued changes mature).
    function warp(uint256 secs) external {
        vm.warp(block.timestamp + secs % 3 days);
    }

    /// within the TTL most of the time; else already expired, or beyond MAX_ATTESTATION_TTL
    function _deadline(uint256 seed) internal view returns (uint256) {
        uint256 c = seed % 5;
        if (c == 3) return block.timestamp - 1 - (seed >> 8) % block.timestamp;
        if (c == 4) return block.timestamp + reg.MAX_ATTESTATION_TTL() + 1 + (seed >> 8) % 1000;
        return block.timestamp + (seed >> 8) % (reg.MAX_ATTESTATION_TTL() + 1);
    }

    /// tamper 1: signed for another id, 2: another domain, 3: another leaf count, 4: another deadline;
    /// else not tampered
    function _attested(
        address actor,
        uint256 d,
        uint256 id,
        bytes32 root,
        uint256 n,
        uint8 keyMask,
        uint8 tamper,
        uint256 deadlineSeed
    ) internal {
        bytes[] memory sigs;
        bool expected;
        uint256 dl = _deadline(deadlineSeed);
        bool timely = dl >= block.timestamp && dl - block.timestamp <= reg.MAX_ATTESTATION_TTL();
        {
            uint256 used;
            (sigs, used) = _sign(
                keyMask,
                reg.aggregationDigest(
                    tamper == 2 ? d + 1 : d,
                    tamper == 1 ? id + 1 : id,
                    root,
                    tamper == 3 ? n + 1 : n,
                    tamper == 4 ? dl + 1 : dl
                )
            );
            expected = ghostExists[d] && !ghostPaused && id == ghostLast[d] + 1 && ghostThreshold != 0
                && sigs.length >= ghostThreshold && (used & ~ghostOps) == 0 && (tamper == 0 || tamper > 4)
                && timely;
        }
        bytes memory cd = abi.encodeCall(SheafRegistry.submitAttestedAggregation, (d, id, root, n, dl, sigs));
        if (!_submit(actor, cd, expected, "attested")) {
            ++nAttestedRefused;
            if (!timely) ++nExpiredRefused;
            return;
        }
        ++nAttestedOk;
        Rec storage r = _accept(d, id, ATTESTED, cd);
        (r.root, r.leafCount, r.sender) = (root, n, actor);
        r.thresholdAtTime = ghostThreshold;
        r.opsAtTime = ghostOps;
        (r.deadline, r.acceptedAt) = (dl, block.timestamp);
        for (uint256 i; i < sigs.length; ++i) {
            r.sigs.push(sigs[i]);
        }
    }

    /// Re-post an accepted submission's calldata, unchanged but for its (domainId, aggregationId) words,
    /// at another id or domain and/or from another sender. RECURSIVE calldata is never sent by the target
    /// domain's own submitter: re-recording proven leaves in its own domain is that submitter's right
    /// (docs/contracts.md). ATTESTED calldata may come from anyone, but never at its own (domain, id).
    function replay(uint256 which, uint256 actorSeed, uint256 domainSeed, uint256 idSeed) external {
        if (_calldata.length == 0) return;
        uint256 w = which % _calldata.length;
        uint256 d = _domain(domainSeed);
        uint256 id = idSeed % 3 == 0 ? (idSeed >> 8) % 8 : ghostLast[d] + 1;
        if (_calldataKind[w] == ATTESTED && d == _calldataDomain[w] && id == _calldataId[w]) ++id;
        address actor = _actor(actorSeed);
        for (uint256 i = 1; _calldataKind[w] == RECURSIVE && actor == ghostSubmitter[d]; ++i) {
            actor = _actor(actorSeed + i);
        }
        bytes memory cd = _retarget(_calldata[w], d, id);
        (bytes32 aggBefore, bytes32 cfgBefore) = (_aggHash(), _configHash());
        vm.prank(actor);
        (bool ok,) = address(reg).call(cd);
        if (ok || _aggHash() != aggBefore || _configHash() != cfgBefore) replayChangedState = true;
        ++nReplays;
    }

    // ------------------------------------------------------------------ actions: administration

    /// One admin call by one actor (the current owner half of the time). Configuration setters (fn 2, 3,
    /// 4, 5, 10, 11) queue a change that applies at once under a zero delay, else by fn 12 after its eta.
    function admin(uint256 actorSeed, uint8 fn, uint256 arg) external {
        address actor = actorSeed % 2 == 0 ? ghostOwner : _actor(actorSeed >> 1);
        bool isOwner = actor == ghostOwner;
        fn %= 14;
        bytes memory cd;
        bool expected;
        if (fn == 0) {
            uint256 d = 1 + arg % N_DOMAINS;
            address s = _submitterChoice(arg >> 8);
            cd = abi.encodeCall(SheafRegistry.createDomain, (d, s));
            expected = isOwner && !ghostExists[d];
        } else if (fn == 1) {
            uint256 d = 1 + arg % N_DOMAINS;
            cd = abi.encodeCall(SheafRegistry.setDomainSubmitter, (d, _submitterChoice(arg >> 8)));
            expected = isOwner && ghostExists[d];
        } else if (fn == 2) {
            cd = abi.encodeCall(SheafRegistry.addOperator, (vm.addr(opKey(arg % N_KEYS))));
        } else if (fn == 3) {
            cd = abi.encodeCall(SheafRegistry.removeOperator, (vm.addr(opKey(arg % N_KEYS))));
        } else if (fn == 4) {
            cd = abi.encodeCall(SheafRegistry.setThreshold, (arg % (N_KEYS + 2)));
        } else if (fn == 5) {
            address v = arg % 4 == 0 ? address(0) : address(verifier);
            cd = abi.encodeCall(SheafRegistry.setAggregationVerifier, (IAggregationProofVerifier(v)));
        } else if (fn == 6) {
            cd = abi.encodeCall(SheafRegistry.pause, ());
            expected = isOwner && !ghostPaused;
        } else if (fn == 7) {
            cd = abi.encodeCall(SheafRegistry.unpause, ());
            expected = isOwner && ghostPaused;
        } else if (fn == 8) {
            address to = arg % 6 == 5 ? address(0) : actors()[arg % 5];
            cd = abi.encodeCall(SheafRegistry.transferOwnership, (to));
            expected = isOwner && to != address(0);
        } else if (fn == 9) {
            // the pending owner accepts half of the time, anyone else otherwise
            if (arg % 2 == 0 && ghostPending != address(0)) actor = ghostPending;
            cd = abi.encodeCall(SheafRegistry.acceptOwnership, ());
            expected = actor == ghostPending && block.timestamp >= ghostOwnershipEta;
            if (actor == ghostPending && !expected) ++nEarlyRefused;
        } else if (fn == 10) {
            cd = abi.encodeCall(SheafRegistry.setConfigDelay, (_delayChoice(arg)));
        } else if (fn == 11) {
            cd = abi.encodeCall(SheafRegistry.setMinThreshold, (arg % (N_KEYS + 2)));
        } else if (fn == 12) {
            uint256 id = 1 + arg % ghostNextChange; // sometimes one never queued
            cd = abi.encodeCall(SheafRegistry.executeConfigChange, (id));
            Pending memory p = ghostChanges[id];
            expected = p.live && block.timestamp >= p.eta && _allowed(p.fn, p.arg);
            if (p.live && block.timestamp < p.eta) ++nEarlyRefused;
        } else {
            uint256 id = 1 + arg % ghostNextChange;
            cd = abi.encodeCall(SheafRegistry.cancelConfigChange, (id));
            expected = isOwner && ghostChanges[id].live;
        }
        if (_isConfig(fn)) expected = isOwner && _allowed(fn, arg);
        (address ownerBefore, address pendingBefore) = (ghostOwner, ghostPending);
        bytes32 cfgBefore = _configHash();
        bytes32 aggBefore = _aggHash();
        vm.prank(actor);
        (bool ok,) = address(reg).call(cd);
        if (ok != expected) _mismatch("admin");
        if (_aggHash() != aggBefore) _mismatch("admin changed aggregations");
        if (ok) {
            ++nAdminOk;
            _applyAdmin(fn, arg, actor);
        } else {
            ++nAdminRefused;
        }
        // anyone may execute a matured change (the owner queued it)
        bool authorised = actor == ownerBefore || (fn == 9 && actor == pendingBefore) || fn == 12;
        if (_configHash() != cfgBefore && !authorised) configChangedByNonOwner = true;
        // ownership moves only as transfer (owner kept, pending set) then accept (by that pending)
        if (ghostOwner != ownerBefore) ++nOwnershipMoves;
        if (reg.owner() != ghostOwner || reg.pendingOwner() != ghostPending) _mismatch("ownership");
    }

    function _isConfig(uint8 fn) internal pure returns (bool) {
        return (fn >= 2 && fn <= 5) || fn == 10 || fn == 11;
    }

    function _delayChoice(uint256 arg) internal pure returns (uint256) {
        uint256 c = arg % 4;
        return c == 0 ? 0 : c == 3 ? 30 days + 1 + (arg >> 8) % 100 : (arg >> 8) % 2 days;
    }

    /// the model's rule for a configuration change, against the current model state
    function _allowed(uint8 fn, uint256 arg) internal view returns (bool) {
        uint256 n = _popcount(ghostOps);
        if (fn == 2) return (ghostOps >> (arg % N_KEYS)) & 1 == 0;
        if (fn == 3) return (ghostOps >> (arg % N_KEYS)) & 1 == 1 && n - 1 >= ghostThreshold;
        if (fn == 4) {
            uint256 t = arg % (N_KEYS + 2);
            return t >= ghostMin && t <= n;
        }
        if (fn == 10) return _delayChoice(arg) <= 30 days;
        if (fn == 11) {
            uint256 m = arg % (N_KEYS + 2);
            return m != 0 && (ghostThreshold == 0 || m <= ghostThreshold);
        }
        return true; // 5: any verifier (zero unsets it)
    }

    function _applyAdmin(uint8 fn, uint256 arg, address actor) internal {
        if (_isConfig(fn)) {
            uint256 id = ghostNextChange++;
            if (ghostDelay == 0) {
                _applyConfig(fn, arg);
            } else {
                ghostChanges[id] = Pending(fn, arg, block.timestamp + ghostDelay, true);
                ++nQueued;
            }
        } else if (fn == 0) {
            uint256 d = 1 + arg % N_DOMAINS;
            ghostExists[d] = true;
            ghostSubmitter[d] = _submitterChoice(arg >> 8);
        } else if (fn == 1) {
            ghostSubmitter[1 + arg % N_DOMAINS] = _submitterChoice(arg >> 8);
        } else if (fn == 6) {
            ghostPaused = true;
        } else if (fn == 7) {
            ghostPaused = false;
        } else if (fn == 8) {
            ghostPending = actors()[arg % 5];
            ghostOwnershipEta = block.timestamp + ghostDelay;
        } else if (fn == 9) {
            ghostOwner = actor;
            ghostPending = address(0);
            ghostOwnershipEta = 0;
        } else if (fn == 12) {
            uint256 id = 1 + arg % (ghostNextChange);
            Pending memory p = ghostChanges[id];
            delete ghostChanges[id];
            _applyConfig(p.fn, p.arg);
            ++nExecuted;
        } else {
            delete ghostChanges[1 + arg % ghostNextChange];
        }
    }

    function _applyConfig(uint8 fn, uint256 arg) internal {
        if (fn == 2) {
            ghostOps |= 1 << (arg % N_KEYS);
        } else if (fn == 3) {
            ghostOps &= ~(1 << (arg % N_KEYS));
        } else if (fn == 4) {
            ghostThreshold = arg % (N_KEYS + 2);
        } else if (fn == 5) {
            ghostVerifierSet = arg % 4 != 0;
        } else if (fn == 10) {
            ghostDelay = _delayChoice(arg);
        } else {
            ghostMin = arg % (N_KEYS + 2);
        }
    }

    // ------------------------------------------------------------------ internals

    function _submit(address actor, bytes memory cd, bool expected, string memory what)
        internal
        returns (bool ok)
    {
        bool pausedBefore = reg.paused();
        bytes32 aggBefore = _aggHash();
        bytes32 cfgBefore = _configHash();
        vm.prank(actor);
        (ok,) = address(reg).call(cd);
        if (ok != expected) _mismatch(what);
        if (pausedBefore && (ok || _aggHash() != aggBefore)) pausedSubmissionChangedState = true;
        if (_configHash() != cfgBefore) submissionChangedConfig = true;
    }

    function _accept(uint256 d, uint256 id, uint8 kind, bytes memory cd) internal returns (Rec storage r) {
        ghostLast[d] = id;
        r = _recs[d][id];
        r.kind = kind;
        _calldata.push(cd);
        _calldataKind.push(kind);
        _calldataDomain.push(d);
        _calldataId.push(id);
    }

    function _mismatch(string memory what) internal {
        modelMismatch = true;
        lastMismatch = what;
    }

    /// everything a submission may change: per domain its last id and the aggregations at last and last + 1
    function _aggHash() internal view returns (bytes32 h) {
        for (uint256 d = 1; d <= N_DOMAINS + 1; ++d) {
            uint256 last = reg.getDomain(d).lastAggregationId;
            h = keccak256(abi.encode(h, last, reg.getAggregation(d, last), reg.getAggregation(d, last + 1)));
        }
    }

    /// everything only the owner may change
    function _configHash() internal view returns (bytes32 h) {
        h = keccak256(
            abi.encode(
                reg.owner(),
                reg.pendingOwner(),
                reg.paused(),
                reg.aggregationVerifier(),
                reg.threshold(),
                reg.operatorCount(),
                reg.minThreshold(),
                reg.configDelay(),
                reg.ownershipTransferEta()
            )
        );
        for (uint256 i; i < N_KEYS; ++i) {
            h = keccak256(abi.encode(h, reg.isOperator(vm.addr(opKey(i)))));
        }
        for (uint256 d = 1; d <= N_DOMAINS + 1; ++d) {
            SheafRegistry.Domain memory dom = reg.getDomain(d);
            h = keccak256(abi.encode(h, dom.exists, dom.submitter));
        }
    }

    function _sign(uint8 keyMask, bytes32 digest) internal pure returns (bytes[] memory sigs, uint256 used) {
        used = keyMask & ((1 << N_KEYS) - 1);
        uint256 n = _popcount(used);
        uint256[] memory ks = new uint256[](n);
        uint256 j;
        for (uint256 i; i < N_KEYS; ++i) {
            if ((used >> i) & 1 == 1) ks[j++] = opKey(i);
        }
        for (uint256 a; a < n; ++a) {
            for (uint256 b = a + 1; b < n; ++b) {
                if (vm.addr(ks[b]) < vm.addr(ks[a])) (ks[a], ks[b]) = (ks[b], ks[a]);
            }
        }
        sigs = new bytes[](n);
        for (uint256 i; i < n; ++i) {
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(ks[i], digest);
            sigs[i] = abi.encodePacked(r, s, v);
        }
    }

    function _popcount(uint256 x) internal pure returns (uint256 c) {
        for (; x != 0; x >>= 1) {
            c += x & 1;
        }
    }

    function _domain(uint256 seed) internal pure returns (uint256) {
        return 1 + seed % (N_DOMAINS + 1); // N_DOMAINS + 1 never exists
    }

    function _actor(uint256 seed) internal pure returns (address) {
        return actors()[seed % 5];
    }

    function _submitterChoice(uint256 seed) internal pure returns (address) {
        uint256 c = seed % 4;
        return c == 0 ? address(0) : c == 1 ? SUB1 : c == 2 ? SUB2 : STRANGER;
    }

    /// the next id most of the time; else a used id, a gap, or zero
    function _id(uint256 d, uint256 seed) internal view returns (uint256) {
        uint256 c = seed % 6;
        uint256 next = ghostLast[d] + 1;
        if (c == 3) return next + 1;
        if (c == 4) return next - 1;
        if (c == 5) return (seed >> 8) % 4;
        return next;
    }

    function _makeLeaves(uint256 seed) internal pure returns (bytes32[] memory l) {
        l = new bytes32[](1 + seed % 6);
        for (uint256 i; i < l.length; ++i) {
            l[i] = keccak256(abi.encode("leaf", seed, i));
        }
    }

    function _root(bytes32[] memory l) internal pure returns (bytes32) {
        bytes32[] memory c = new bytes32[](l.length);
        for (uint256 i; i < l.length; ++i) {
            c[i] = l[i];
        }
        return Merkle.root(c);
    }

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
}

/// Stateful fuzzing of SheafRegistry through RegistryHandler (the only fuzz target).
/// forge-config: default.invariant.runs = 64
/// forge-config: default.invariant.depth = 32
/// forge-config: default.invariant.fail-on-revert = true
contract SheafRegistryInvariantTest is Test {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    bytes32 internal constant EIP712_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant AGG_TYPEHASH = keccak256(
        "Aggregation(uint256 domainId,uint256 aggregationId,bytes32 root,uint256 leafCount,uint256 deadline)"
    );

    RegistryHandler internal handler;
    SheafRegistry internal reg;
    ProvedPairsVerifier internal verifier;

    function setUp() public {
        handler = new RegistryHandler();
        reg = handler.reg();
        verifier = handler.verifier();
    }

    function targetContracts() public view returns (address[] memory t) {
        t = new address[](1);
        t[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory s) {
        bytes4[] memory sel = new bytes4[](6);
        sel[0] = RegistryHandler.prove.selector;
        sel[1] = RegistryHandler.submitRecursive.selector;
        sel[2] = RegistryHandler.submitAttested.selector;
        sel[3] = RegistryHandler.replay.selector;
        sel[4] = RegistryHandler.admin.selector;
        sel[5] = RegistryHandler.warp.selector;
        s = new FuzzSelector[](1);
        s[0] = FuzzSelector(address(handler), sel);
    }

    // ------------------------------------------------------------------ invariants

    /// Per domain, aggregation ids are 1..last with no gap, nothing stored beyond, and the model agrees.
    function invariant_idsContiguousFromOne() public view {
        for (uint256 d = 1; d <= 6; ++d) {
            SheafRegistry.Domain memory dom = reg.getDomain(d);
            assertEq(dom.exists, handler.ghostExists(d));
            uint256 last = dom.lastAggregationId;
            assertEq(last, handler.ghostLast(d), "last id = model");
            assertEq(uint256(reg.getAggregation(d, 0).kind), 0, "id 0 never used");
            for (uint256 id = 1; id <= last; ++id) {
                SheafRegistry.Aggregation memory a = reg.getAggregation(d, id);
                assertTrue(a.kind == 1 || a.kind == 2, "gap");
                assertTrue(a.root != bytes32(0) && a.leafCount != 0, "empty aggregation");
            }
            assertEq(uint256(reg.getAggregation(d, last + 1).kind), 0, "stored beyond last");
            assertEq(uint256(reg.getAggregation(d, last + 2).kind), 0, "stored beyond last");
            if (dom.exists) assertEq(reg.nextAggregationId(d), last + 1);
        }
    }

    /// Every stored root rests on a proved (root, leafCount) posted by the domain's submitter, or on
    /// >= threshold distinct operator signatures over exactly (chain, registry, domain, id, root, leafCount),
    /// re-checked here with an EIP-712 digest built independently of the registry.
    function invariant_everyRootBackedByProofOrSignatures() public view {
        for (uint256 d = 1; d <= 6; ++d) {
            uint256 last = reg.getDomain(d).lastAggregationId;
            for (uint256 id = 1; id <= last; ++id) {
                SheafRegistry.Aggregation memory a = reg.getAggregation(d, id);
                RegistryHandler.Rec memory r = handler.record(d, id);
                assertEq(uint256(a.kind), uint256(r.kind), "kind");
                assertEq(a.root, r.root, "root");
                assertEq(uint256(a.leafCount), r.leafCount, "leafCount");
                if (a.kind == 1) {
                    assertTrue(verifier.proved(verifier.key(a.root, a.leafCount)), "unproved pair stored");
                    assertTrue(r.submitterAtTime != address(0), "recursive on a zero-submitter domain");
                    assertEq(r.sender, r.submitterAtTime);
                } else {
                    _checkSignatures(d, id, a.root, a.leafCount, r);
                }
            }
        }
    }

    function _checkSignatures(
        uint256 d,
        uint256 id,
        bytes32 root,
        uint256 leafCount,
        RegistryHandler.Rec memory r
    ) internal view {
        bytes32 sep = keccak256(
            abi.encode(
                EIP712_DOMAIN_TYPEHASH, keccak256("Sheaf"), keccak256("1"), block.chainid, address(reg)
            )
        );
        bytes32 digest = keccak256(
            abi.encodePacked(
                "\x19\x01", sep, keccak256(abi.encode(AGG_TYPEHASH, d, id, root, leafCount, r.deadline))
            )
        );
        uint256 seen;
        for (uint256 i; i < r.sigs.length; ++i) {
            bytes memory sig = r.sigs[i];
            bytes32 rr;
            bytes32 ss;
            assembly {
                rr := mload(add(sig, 32))
                ss := mload(add(sig, 64))
            }
            address signer = ecrecover(digest, uint8(sig[64]), rr, ss);
            uint256 k = 5;
            for (uint256 j; j < 5; ++j) {
                if (vm.addr(handler.opKey(j)) == signer) k = j;
            }
            assertTrue(k < 5, "signer is none of the operator keys");
            assertTrue((r.opsAtTime >> k) & 1 == 1, "signer was not an operator");
            assertTrue((seen >> k) & 1 == 0, "signer counted twice");
            seen |= 1 << k;
        }
        assertTrue(r.thresholdAtTime != 0 && r.sigs.length >= r.thresholdAtTime, "below threshold");
        assertTrue(r.acceptedAt <= r.deadline, "accepted after its deadline");
        assertTrue(r.deadline - r.acceptedAt <= reg.MAX_ATTESTATION_TTL(), "deadline beyond the TTL");
    }

    /// Replayed calldata (other id, other domain, or other sender) never changed anything.
    function invariant_noReplay() public view {
        assertFalse(handler.replayChangedState(), "a replay changed state");
    }

    /// While paused, no submission changed anything.
    function invariant_pausedBlocksSubmissions() public view {
        assertFalse(handler.pausedSubmissionChangedState(), "submission accepted while paused");
    }

    /// Config changes only by the owner (or the pending owner accepting); submissions never touch it; and
    /// every call succeeded exactly when the model said it must.
    function invariant_onlyOwnerChangesConfig() public view {
        assertFalse(handler.configChangedByNonOwner(), "config changed by a non-owner");
        assertFalse(handler.submissionChangedConfig(), "a submission changed config");
        assertFalse(handler.modelMismatch(), handler.lastMismatch());
        assertTrue(reg.threshold() <= reg.operatorCount(), "threshold above operator count");
        assertEq(reg.paused(), handler.ghostPaused());
        assertEq(reg.threshold(), handler.ghostThreshold());
        // queued changes took effect exactly when the model applied them (after their delay)
        assertEq(reg.minThreshold(), handler.ghostMin());
        assertEq(reg.configDelay(), handler.ghostDelay());
        assertEq(reg.operatorCount(), _popcount(handler.ghostOps()));
        for (uint256 i; i < 5; ++i) {
            assertEq(reg.isOperator(vm.addr(handler.opKey(i))), (handler.ghostOps() >> i) & 1 == 1);
        }
        assertEq(address(reg.aggregationVerifier()) != address(0), handler.ghostVerifierSet());
        uint256 k = reg.threshold();
        assertTrue(k == 0 || reg.minThreshold() <= k, "threshold below its floor");
        assertTrue(reg.minThreshold() >= 1, "no floor");
    }

    function _popcount(uint256 x) internal pure returns (uint256 c) {
        for (; x != 0; x >>= 1) {
            c += x & 1;
        }
    }

    /// Ownership is two-step: the owner and pending owner are exactly what transfer + accept produced.
    function invariant_ownershipTwoStep() public view {
        assertEq(reg.owner(), handler.ghostOwner());
        assertEq(reg.pendingOwner(), handler.ghostPending());
        assertTrue(reg.owner() != address(0), "no owner");
    }

    // ------------------------------------------------------------------ the handler is not vacuous

    /// A fixed sequence through the handler reaches every kind of success and refusal the invariants
    /// depend on (a handler whose calls all fail would make the invariants above hold trivially).
    function test_handlerReachesEveryOutcome() public {
        handler.prove(1);
        handler.prove(2);
        handler.submitRecursive(1, 0, 0, 0, 0); // SUB1 on domain 1, leaves variant
        handler.submitRecursive(1, 1, 1, 0, 1); // SUB2 on domain 2, root variant
        handler.submitRecursive(1, 2, 0, 0, 0); // domain 3 has no submitter: refused
        handler.submitAttested(4, 2, 0, 0, 0x03, 0); // STRANGER relays 2 signatures on domain 3
        handler.submitAttested(4, 2, 0, 0, 0x01, 0); // below threshold: refused
        handler.submitAttested(4, 2, 0, 0, 0x03, 1); // signed for another id: refused
        assertEq(handler.nRecursiveOk(), 2);
        assertEq(handler.nAttestedOk(), 1);
        assertEq(handler.nRecursiveRefused(), 1);
        assertEq(handler.nAttestedRefused(), 2);
        for (uint256 w; w < 3; ++w) {
            for (uint256 d; d < 6; ++d) {
                handler.replay(w, 4, d, 1);
                handler.replay(w, 2, d, 0);
            }
        }
        handler.admin(0, 6, 0); // owner pauses
        handler.submitRecursive(1, 0, 0, 0, 0);
        handler.admin(3, 7, 0); // OWNER_B (not the owner) cannot unpause
        assertTrue(reg.paused());
        handler.admin(0, 7, 0);
        handler.admin(0, 8, 1); // owner -> pending OWNER_B
        handler.admin(5, 9, 1); // SUB1 cannot accept
        handler.admin(3, 9, 0); // OWNER_B accepts
        assertEq(reg.owner(), address(0xB0B));
        assertEq(handler.nOwnershipMoves(), 1);
        // expiry: a deadline in the past, one beyond the TTL, one signed other than posted: refused
        handler.submitAttested(4, 2, 3 << 16, 0, 0x03, 0);
        handler.submitAttested(4, 2, 4 << 16, 0, 0x03, 0);
        handler.submitAttested(4, 2, 0, 0, 0x03, 4);
        assertEq(handler.nExpiredRefused(), 2);
        // the delay: OWNER_B sets 1 day (applies at once, the delay was 0), then queues threshold 3
        handler.admin(0, 10, 1 | (1 days << 8));
        assertEq(reg.configDelay(), 1 days);
        handler.admin(0, 4, 3); // queued: threshold still 2
        uint256 change = reg.nextChangeId() - 1; // admin(.., 12 or 13, change - 1) picks it
        assertEq(reg.threshold(), 2);
        handler.admin(1, 12, change - 1); // anyone executes it too early: refused
        assertEq(reg.threshold(), 2);
        handler.warp(1 days);
        handler.admin(1, 12, change - 1); // now anyone may
        assertEq(reg.threshold(), 3);
        handler.admin(0, 11, 4); // floor 4 > threshold 3: refused at queueing
        handler.admin(0, 11, 3); // floor 3, queued
        handler.admin(0, 13, change); // ... and cancelled
        handler.warp(1 days);
        handler.admin(1, 12, change); // nothing left to execute
        assertEq(reg.minThreshold(), 1);
        handler.admin(0, 8, 0); // OWNER_B -> pending OWNER_A, acceptable in a day
        handler.admin(0, 9, 0); // too early
        handler.warp(1 days);
        handler.admin(0, 9, 0); // OWNER_A accepts
        assertEq(reg.owner(), address(0xA11CE));
        assertEq(handler.nQueued(), 2);
        assertEq(handler.nExecuted(), 1);
        assertEq(handler.nEarlyRefused(), 2);
        invariant_idsContiguousFromOne();
        invariant_everyRootBackedByProofOrSignatures();
        invariant_noReplay();
        invariant_pausedBlocksSubmissions();
        invariant_onlyOwnerChangesConfig();
        invariant_ownershipTwoStep();
        assertEq(handler.nReplays(), 36);
    }
}
