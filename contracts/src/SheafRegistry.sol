// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IAggregationProofVerifier} from "./IAggregationProofVerifier.sol";
import {ISheafRegistry} from "./ISheafRegistry.sol";
import {Merkle} from "./Merkle.sol";

/// @title SheafRegistry
/// @notice Per-domain sequence of aggregations (keccak Merkle roots of statement hashes), accepted either
///   with a recursive proof posted by the domain's submitter (RECURSIVE) or with k-of-n operator EIP-712
///   signatures relayed by anyone (ATTESTED) before the signed deadline. Apps check inclusion with the
///   zkVerify-compatible `verifyProofAggregation`.
///   Configuration (verifier, operators, threshold, its floor, the delay itself) changes are queued and take
///   effect `configDelay` seconds later (`executeConfigChange`, by anyone), so users can see them coming;
///   with a zero delay (a fresh deployment, before the owner sets one) they apply at once. An ownership
///   transfer is accepted by the new owner no earlier than `configDelay` after it started.
contract SheafRegistry is ISheafRegistry {
    uint8 public constant KIND_RECURSIVE = 1;
    uint8 public constant KIND_ATTESTED = 2;
    /// Upper bound on leaves per aggregation (keeps leafCount in a uint64 and paths <= 32 entries).
    uint256 public constant MAX_LEAVES = 1 << 32;

    /// Longest validity of an attestation: a deadline further than this from the block time is refused.
    uint256 public constant MAX_ATTESTATION_TTL = 1 days;
    /// Longest configuration delay the owner can set (a longer one could lock the configuration).
    uint256 public constant MAX_CONFIG_DELAY = 30 days;

    uint8 public constant CHANGE_VERIFIER = 1;
    uint8 public constant CHANGE_ADD_OPERATOR = 2;
    uint8 public constant CHANGE_REMOVE_OPERATOR = 3;
    uint8 public constant CHANGE_THRESHOLD = 4;
    uint8 public constant CHANGE_MIN_THRESHOLD = 5;
    uint8 public constant CHANGE_DELAY = 6;

    bytes32 public constant AGGREGATION_TYPEHASH = keccak256(
        "Aggregation(uint256 domainId,uint256 aggregationId,bytes32 root,uint256 leafCount,uint256 deadline)"
    );
    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant _NAME_HASH = keccak256("Sheaf");
    bytes32 private constant _VERSION_HASH = keccak256("1");
    /// secp256k1 n / 2: signatures with a larger s are the malleable twin and are rejected.
    uint256 private constant _HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    struct Aggregation {
        bytes32 root;
        uint64 leafCount;
        uint8 kind;
        uint64 blockNumber;
    }

    struct Domain {
        bool exists;
        uint64 lastAggregationId;
        /// Only this address may submit RECURSIVE aggregations; zero: none may (the domain is ATTESTED-only).
        ///   The recursive proof binds only (root, leafCount), so an open recursive route would let anyone
        ///   re-post public calldata at another id or domain.
        address submitter;
    }

    /// A queued configuration change: `kind` (CHANGE_*) with its argument, applicable from `eta`.
    struct ConfigChange {
        uint8 kind;
        uint64 eta;
        address target;
        uint256 value;
    }

    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;

    address public owner;
    address public pendingOwner;
    bool public paused;
    IAggregationProofVerifier public aggregationVerifier;
    uint256 public threshold;
    uint256 public operatorCount;
    /// Floor of the threshold (>= 1): `setThreshold` below it is refused.
    uint256 public minThreshold = 1;
    /// Seconds between queueing a configuration change and its effect (0: immediate).
    uint256 public configDelay;
    /// When the pending ownership transfer may be accepted.
    uint256 public ownershipTransferEta;
    /// Id of the next queued configuration change (ids are never re-used).
    uint256 public nextChangeId = 1;
    mapping(uint256 => ConfigChange) private _changes;
    mapping(address => bool) public isOperator;
    mapping(uint256 => Domain) private _domains;
    mapping(uint256 => mapping(uint256 => Aggregation)) private _aggregations;

    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event Paused(address indexed account);
    event Unpaused(address indexed account);
    event DomainCreated(uint256 indexed domainId, address indexed submitter);
    event DomainSubmitterChanged(
        uint256 indexed domainId, address indexed previous, address indexed submitter
    );
    event OperatorAdded(address indexed operator);
    event OperatorRemoved(address indexed operator);
    event ThresholdChanged(uint256 previous, uint256 threshold);
    event MinThresholdChanged(uint256 previous, uint256 minThreshold);
    event ConfigDelayChanged(uint256 previous, uint256 delay);
    event ConfigChangeQueued(
        uint256 indexed changeId, uint8 indexed kind, address target, uint256 value, uint256 eta
    );
    event ConfigChangeExecuted(uint256 indexed changeId);
    event ConfigChangeCancelled(uint256 indexed changeId);
    event AggregationVerifierChanged(address indexed previous, address indexed verifier);
    event AggregationSubmitted(
        uint256 indexed domainId, uint256 indexed aggregationId, bytes32 root, uint256 leafCount, uint8 kind
    );

    error NotOwner(address caller);
    error NotPendingOwner(address caller);
    error ZeroAddress();
    error IsPaused();
    error NotPaused();
    error InvalidDomainId();
    error DomainExists(uint256 domainId);
    error UnknownDomain(uint256 domainId);
    error NotSubmitter(uint256 domainId, address caller);
    error SubmitterNotSet(uint256 domainId);
    error UnexpectedAggregationId(uint256 domainId, uint256 expected, uint256 got);
    error InvalidLeafCount(uint256 leafCount);
    error ZeroRoot();
    error VerifierNotSet();
    error VerifierRejected(bytes4 returned);
    error OperatorExists(address operator);
    error NotAnOperator(address operator);
    error InvalidThreshold(uint256 threshold, uint256 operatorCount);
    error ThresholdNotSet();
    error InvalidSignatureLength(uint256 index, uint256 length);
    error InvalidSignatureV(uint256 index, uint8 v);
    error MalleableSignature(uint256 index);
    error InvalidSignature(uint256 index);
    error SignerNotOperator(uint256 index, address signer);
    error DuplicateSigner(uint256 index, address signer);
    error SignersNotAscending(uint256 index);
    error InsufficientSignatures(uint256 got, uint256 required);
    error AttestationExpired(uint256 deadline, uint256 timestamp);
    error DeadlineTooFar(uint256 deadline, uint256 latest);
    error InvalidMinThreshold(uint256 minThreshold, uint256 threshold);
    error DelayTooLong(uint256 delay, uint256 max);
    error UnknownChange(uint256 changeId);
    error ChangeNotReady(uint256 changeId, uint256 eta);
    error OwnershipNotReady(uint256 eta);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    modifier whenNotPaused() {
        if (paused) revert IsPaused();
        _;
    }

    constructor(address initialOwner) {
        if (initialOwner == address(0)) revert ZeroAddress();
        owner = initialOwner;
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
        emit OwnershipTransferred(address(0), initialOwner);
    }

    // ------------------------------------------------------------------ ownership and admin

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        pendingOwner = newOwner;
        ownershipTransferEta = block.timestamp + configDelay;
        emit OwnershipTransferStarted(owner, newOwner);
    }

    function acceptOwnership() external {
        if (msg.sender != pendingOwner) revert NotPendingOwner(msg.sender);
        if (block.timestamp < ownershipTransferEta) revert OwnershipNotReady(ownershipTransferEta);
        address previous = owner;
        owner = msg.sender;
        delete pendingOwner;
        delete ownershipTransferEta;
        emit OwnershipTransferred(previous, msg.sender);
    }

    function pause() external onlyOwner {
        if (paused) revert IsPaused();
        paused = true;
        emit Paused(msg.sender);
    }

    function unpause() external onlyOwner {
        if (!paused) revert NotPaused();
        paused = false;
        emit Unpaused(msg.sender);
    }

    function createDomain(uint256 domainId, address submitter) external onlyOwner {
        if (domainId == 0) revert InvalidDomainId();
        Domain storage d = _domains[domainId];
        if (d.exists) revert DomainExists(domainId);
        d.exists = true;
        d.submitter = submitter;
        emit DomainCreated(domainId, submitter);
    }

    function setDomainSubmitter(uint256 domainId, address submitter) external onlyOwner {
        Domain storage d = _existingDomain(domainId);
        emit DomainSubmitterChanged(domainId, d.submitter, submitter);
        d.submitter = submitter;
    }

    // Configuration changes: each setter queues a change (checked now and again when applied) and
    // returns its id; with configDelay == 0 it applies at once.

    function setAggregationVerifier(IAggregationProofVerifier verifier) external onlyOwner returns (uint256) {
        return _queue(CHANGE_VERIFIER, address(verifier), 0);
    }

    function addOperator(address operator) external onlyOwner returns (uint256) {
        return _queue(CHANGE_ADD_OPERATOR, operator, 0);
    }

    /// @dev Fails if it would leave fewer operators than the threshold: lower the threshold first.
    function removeOperator(address operator) external onlyOwner returns (uint256) {
        return _queue(CHANGE_REMOVE_OPERATOR, operator, 0);
    }

    /// @dev minThreshold <= newThreshold <= operatorCount.
    function setThreshold(uint256 newThreshold) external onlyOwner returns (uint256) {
        return _queue(CHANGE_THRESHOLD, address(0), newThreshold);
    }

    /// @dev 1 <= floor, and not above the current threshold (once one is set).
    function setMinThreshold(uint256 floor) external onlyOwner returns (uint256) {
        return _queue(CHANGE_MIN_THRESHOLD, address(0), floor);
    }

    /// @dev A new delay (<= MAX_CONFIG_DELAY) is itself queued under the current one.
    function setConfigDelay(uint256 delay) external onlyOwner returns (uint256) {
        return _queue(CHANGE_DELAY, address(0), delay);
    }

    /// @notice Applies a queued change once its eta has passed; anyone may call it.
    function executeConfigChange(uint256 changeId) external {
        ConfigChange memory c = _changes[changeId];
        if (c.kind == 0) revert UnknownChange(changeId);
        if (block.timestamp < c.eta) revert ChangeNotReady(changeId, c.eta);
        delete _changes[changeId];
        _check(c.kind, c.target, c.value);
        _apply(c.kind, c.target, c.value);
        emit ConfigChangeExecuted(changeId);
    }

    function cancelConfigChange(uint256 changeId) external onlyOwner {
        if (_changes[changeId].kind == 0) revert UnknownChange(changeId);
        delete _changes[changeId];
        emit ConfigChangeCancelled(changeId);
    }

    function getConfigChange(uint256 changeId) external view returns (ConfigChange memory) {
        return _changes[changeId];
    }

    // ------------------------------------------------------------------ submissions

    /// @notice RECURSIVE: the registry computes the root of `leaves` itself and has the verifier check
    ///   `proof` against (root, leafCount). Leaves travel in calldata, so they are public and indexable.
    ///   Both RECURSIVE routes: only the domain's submitter (`NotSubmitter`; `SubmitterNotSet` if none).
    function submitRecursiveAggregation(
        uint256 domainId,
        uint256 aggregationId,
        bytes32[] calldata leaves,
        bytes calldata proof
    ) external whenNotPaused returns (bytes32 root) {
        Domain storage d = _existingDomain(domainId);
        _checkSubmitter(d, domainId);
        _checkNextId(d, domainId, aggregationId);
        uint256 leafCount = leaves.length;
        if (leafCount == 0 || leafCount > MAX_LEAVES) revert InvalidLeafCount(leafCount);
        root = Merkle.rootCalldata(leaves);
        _verifyRecursive(root, leafCount, proof);
        _store(d, domainId, aggregationId, root, leafCount, KIND_RECURSIVE);
    }

    /// @notice RECURSIVE, root variant: the recursive proof itself binds the leaves to `root` (the circuit
    ///   recomputes the keccak tree), so only 32 bytes of leaf data travel; the leaves must be published
    ///   off-chain (the aggregator serves the paths). Cheaper for large batches.
    function submitRecursiveAggregationRoot(
        uint256 domainId,
        uint256 aggregationId,
        bytes32 root,
        uint256 leafCount,
        bytes calldata proof
    ) external whenNotPaused {
        Domain storage d = _existingDomain(domainId);
        _checkSubmitter(d, domainId);
        _checkNextId(d, domainId, aggregationId);
        if (leafCount == 0 || leafCount > MAX_LEAVES) revert InvalidLeafCount(leafCount);
        if (root == bytes32(0)) revert ZeroRoot();
        _verifyRecursive(root, leafCount, proof);
        _store(d, domainId, aggregationId, root, leafCount, KIND_RECURSIVE);
    }

    /// @notice ATTESTED: accepted with at least `threshold` operator signatures over the EIP-712 struct
    ///   Aggregation(domainId, aggregationId, root, leafCount, deadline), up to block time `deadline`
    ///   (`AttestationExpired` after; `DeadlineTooFar` beyond MAX_ATTESTATION_TTL). Signatures are 65 bytes
    ///   (r || s || v) and must be ordered by strictly ascending signer address (O(1) duplicate detection).
    function submitAttestedAggregation(
        uint256 domainId,
        uint256 aggregationId,
        bytes32 root,
        uint256 leafCount,
        uint256 deadline,
        bytes[] calldata signatures
    ) external whenNotPaused {
        Domain storage d = _existingDomain(domainId);
        _checkNextId(d, domainId, aggregationId);
        if (leafCount == 0 || leafCount > MAX_LEAVES) revert InvalidLeafCount(leafCount);
        if (root == bytes32(0)) revert ZeroRoot();
        if (block.timestamp > deadline) revert AttestationExpired(deadline, block.timestamp);
        if (deadline - block.timestamp > MAX_ATTESTATION_TTL) {
            revert DeadlineTooFar(deadline, block.timestamp + MAX_ATTESTATION_TTL);
        }
        uint256 required = threshold;
        if (required == 0) revert ThresholdNotSet();
        if (signatures.length < required) revert InsufficientSignatures(signatures.length, required);
        bytes32 digest = aggregationDigest(domainId, aggregationId, root, leafCount, deadline);
        address last;
        for (uint256 i; i < signatures.length; ++i) {
            address signer = _recover(digest, signatures[i], i);
            if (!isOperator[signer]) revert SignerNotOperator(i, signer);
            if (signer == last) revert DuplicateSigner(i, signer);
            if (signer < last) revert SignersNotAscending(i);
            last = signer;
        }
        _store(d, domainId, aggregationId, root, leafCount, KIND_ATTESTED);
    }

    // ------------------------------------------------------------------ views

    function verifyProofAggregation(
        uint256 domainId,
        uint256 aggregationId,
        bytes32 leaf,
        bytes32[] calldata merklePath,
        uint256 leafCount,
        uint256 index
    ) external view returns (bool) {
        (bool ok,) = _verifyInclusion(domainId, aggregationId, leaf, merklePath, leafCount, index);
        return ok;
    }

    function verifyProofAggregationKind(
        uint256 domainId,
        uint256 aggregationId,
        bytes32 leaf,
        bytes32[] calldata merklePath,
        uint256 leafCount,
        uint256 index
    ) external view returns (bool ok, uint8 kind) {
        return _verifyInclusion(domainId, aggregationId, leaf, merklePath, leafCount, index);
    }

    function getAggregation(uint256 domainId, uint256 aggregationId)
        external
        view
        returns (Aggregation memory)
    {
        return _aggregations[domainId][aggregationId];
    }

    function getDomain(uint256 domainId) external view returns (Domain memory) {
        return _domains[domainId];
    }

    function nextAggregationId(uint256 domainId) external view returns (uint256) {
        Domain storage d = _existingDomain(domainId);
        return uint256(d.lastAggregationId) + 1;
    }

    function domainSeparator() public view returns (bytes32) {
        return block.chainid == _cachedChainId ? _cachedDomainSeparator : _buildDomainSeparator();
    }

    function aggregationDigest(
        uint256 domainId,
        uint256 aggregationId,
        bytes32 root,
        uint256 leafCount,
        uint256 deadline
    ) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(AGGREGATION_TYPEHASH, domainId, aggregationId, root, leafCount, deadline)
        );
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    // ------------------------------------------------------------------ internals

    function _queue(uint8 kind, address target, uint256 value) private returns (uint256 changeId) {
        _check(kind, target, value);
        changeId = nextChangeId++;
        uint256 eta = block.timestamp + configDelay;
        emit ConfigChangeQueued(changeId, kind, target, value, eta);
        if (configDelay == 0) {
            _apply(kind, target, value);
            emit ConfigChangeExecuted(changeId);
        } else {
            // forge-lint: disable-next-line(unsafe-typecast)
            _changes[changeId] = ConfigChange({kind: kind, eta: uint64(eta), target: target, value: value});
        }
    }

    /// The rules of each change, against the state at queueing and again when it is applied.
    function _check(uint8 kind, address target, uint256 value) private view {
        if (kind == CHANGE_ADD_OPERATOR) {
            if (target == address(0)) revert ZeroAddress();
            if (isOperator[target]) revert OperatorExists(target);
        } else if (kind == CHANGE_REMOVE_OPERATOR) {
            if (!isOperator[target]) revert NotAnOperator(target);
            if (operatorCount - 1 < threshold) revert InvalidThreshold(threshold, operatorCount - 1);
        } else if (kind == CHANGE_THRESHOLD) {
            if (value < minThreshold || value > operatorCount) revert InvalidThreshold(value, operatorCount);
        } else if (kind == CHANGE_MIN_THRESHOLD) {
            if (value == 0 || (threshold != 0 && value > threshold)) {
                revert InvalidMinThreshold(value, threshold);
            }
        } else if (kind == CHANGE_DELAY) {
            if (value > MAX_CONFIG_DELAY) revert DelayTooLong(value, MAX_CONFIG_DELAY);
        }
    }

    function _apply(uint8 kind, address target, uint256 value) private {
        if (kind == CHANGE_VERIFIER) {
            emit AggregationVerifierChanged(address(aggregationVerifier), target);
            aggregationVerifier = IAggregationProofVerifier(target);
        } else if (kind == CHANGE_ADD_OPERATOR) {
            isOperator[target] = true;
            ++operatorCount;
            emit OperatorAdded(target);
        } else if (kind == CHANGE_REMOVE_OPERATOR) {
            isOperator[target] = false;
            --operatorCount;
            emit OperatorRemoved(target);
        } else if (kind == CHANGE_THRESHOLD) {
            emit ThresholdChanged(threshold, value);
            threshold = value;
        } else if (kind == CHANGE_MIN_THRESHOLD) {
            emit MinThresholdChanged(minThreshold, value);
            minThreshold = value;
        } else {
            emit ConfigDelayChanged(configDelay, value);
            configDelay = value;
        }
    }

    function _verifyInclusion(
        uint256 domainId,
        uint256 aggregationId,
        bytes32 leaf,
        bytes32[] calldata merklePath,
        uint256 leafCount,
        uint256 index
    ) private view returns (bool, uint8) {
        Aggregation storage a = _aggregations[domainId][aggregationId];
        uint8 kind = a.kind;
        // unknown aggregation (kind 0) or a leaf count other than the stored one: not included
        if (kind == 0 || leafCount != a.leafCount) return (false, 0);
        if (!Merkle.verify(a.root, merklePath, leafCount, index, leaf)) return (false, 0);
        return (true, kind);
    }

    function _verifyRecursive(bytes32 root, uint256 leafCount, bytes calldata proof) private view {
        IAggregationProofVerifier verifier = aggregationVerifier;
        if (address(verifier) == address(0)) revert VerifierNotSet();
        // the verifier reverts on a bad proof; the magic value guards against code-less or lax verifiers
        bytes4 magic = verifier.verifyAggregation(root, leafCount, proof);
        if (magic != IAggregationProofVerifier.verifyAggregation.selector) revert VerifierRejected(magic);
    }

    function _existingDomain(uint256 domainId) private view returns (Domain storage d) {
        d = _domains[domainId];
        if (!d.exists) revert UnknownDomain(domainId);
    }

    /// RECURSIVE routes only: the proof does not bind (chain, registry, domain, id), so the domain's submitter
    ///   is what keeps its calldata from being replayed elsewhere; a domain without one refuses them.
    function _checkSubmitter(Domain storage d, uint256 domainId) private view {
        address submitter = d.submitter;
        if (submitter == address(0)) revert SubmitterNotSet(domainId);
        if (msg.sender != submitter) revert NotSubmitter(domainId, msg.sender);
    }

    function _checkNextId(Domain storage d, uint256 domainId, uint256 aggregationId) private view {
        uint256 expected = uint256(d.lastAggregationId) + 1;
        if (aggregationId != expected) revert UnexpectedAggregationId(domainId, expected, aggregationId);
    }

    function _store(
        Domain storage d,
        uint256 domainId,
        uint256 aggregationId,
        bytes32 root,
        uint256 leafCount,
        uint8 kind
    ) private {
        // both casts are safe: aggregationId == last + 1 and leafCount <= MAX_LEAVES were checked
        // forge-lint: disable-next-line(unsafe-typecast)
        d.lastAggregationId = uint64(aggregationId);
        _aggregations[domainId][aggregationId] = Aggregation({
            root: root,
            // forge-lint: disable-next-line(unsafe-typecast)
            leafCount: uint64(leafCount),
            kind: kind,
            // forge-lint: disable-next-line(unsafe-typecast)
            blockNumber: uint64(block.number)
        });
        emit AggregationSubmitted(domainId, aggregationId, root, leafCount, kind);
    }

    function _recover(bytes32 digest, bytes calldata sig, uint256 i) private pure returns (address signer) {
        if (sig.length != 65) revert InvalidSignatureLength(i, sig.length);
        bytes32 r = bytes32(sig[0:32]);
        bytes32 s = bytes32(sig[32:64]);
        uint8 v = uint8(sig[64]);
        if (v != 27 && v != 28) revert InvalidSignatureV(i, v);
        if (uint256(s) > _HALF_N) revert MalleableSignature(i);
        signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert InvalidSignature(i);
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return
            keccak256(abi.encode(_DOMAIN_TYPEHASH, _NAME_HASH, _VERSION_HASH, block.chainid, address(this)));
    }
}
