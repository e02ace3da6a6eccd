// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ISheafInference} from "./ISheafInference.sol";
import {ISheafRegistry} from "./ISheafRegistry.sol";
import {StatementHash} from "./StatementHash.sol";

/// @title SheafInference
/// @notice Model registry and whole-inference check on top of a SheafRegistry (docs/inference.md).
/// @dev Access control: `registerModel` is deliberately open to anyone. A model id is the hash of its
///   spec and a registered model is immutable (no update, no delete, no owner), so a registrant can only
///   ever add the model its spec describes; nobody can squat, overwrite or front-run another spec's id.
///   The contract holds no other state and no funds. `verifyInference` is a view.
contract SheafInference is ISheafInference {
    /// Domain-separation tag of the model id.
    bytes32 public constant MODEL_ID_TAG = keccak256("sheaf/model/v1");
    /// Domain-separation tag of the inference hash.
    bytes32 public constant INFERENCE_TAG = keccak256("sheaf/inference/v1");
    /// Bound on slices per model (the proven mask is a uint64).
    uint256 public constant MAX_SLICES = 64;
    uint8 public constant KIND_ANY = 0;
    uint8 public constant KIND_RECURSIVE = 1;
    uint8 public constant KIND_ATTESTED = 2;
    uint8 public constant MAX_SCHEME = 3;

    /// One storage slot per model.
    struct Model {
        bool exists;
        uint8 sliceCount;
        uint8 outputSlice;
        uint8 segmentCount;
        uint64 provenMask;
    }

    /// Two storage slots per proven slice (nothing is read for unproven ones).
    struct StoredSlice {
        bool proven;
        uint8 scheme;
        uint16 publicInputCount;
        uint16 inCommitIndex;
        uint16 outCommitIndex;
        bytes32 vkHash;
    }

    /// State of the walk along the slices in verifyInference (a struct: keeps the stack shallow).
    struct Walk {
        bytes32 modelId;
        uint256 domainId;
        uint8 requiredKind;
        uint256 segments;
        bool prevProven;
        uint256 prevOut;
    }

    ISheafRegistry public immutable registry;

    mapping(bytes32 => Model) private _models;
    mapping(bytes32 => StoredSlice[]) private _slices;
    /// output positions of the model's output slice
    mapping(bytes32 => uint16[]) private _outputIndices;

    error ZeroAddress();

    constructor(ISheafRegistry registry_) {
        if (address(registry_) == address(0)) revert ZeroAddress();
        registry = registry_;
    }

    // ------------------------------------------------------------------ registration

    /// @inheritdoc ISheafInference
    function registerModel(SliceSpec[] calldata slices) external returns (bytes32 modelId) {
        (uint256 outputSlice, uint256 segmentCount, uint256 mask) = _validate(slices);
        modelId = modelIdOf(slices);
        Model storage m = _models[modelId];
        if (m.exists) revert ModelAlreadyRegistered(modelId);
        uint256 n = slices.length;
        // all casts are safe: n <= MAX_SLICES = 64 (checked by _validate), so each count fits its type
        // forge-lint: disable-next-line(unsafe-typecast)
        (m.exists, m.sliceCount, m.outputSlice) = (true, uint8(n), uint8(outputSlice));
        // forge-lint: disable-next-line(unsafe-typecast)
        (m.segmentCount, m.provenMask) = (uint8(segmentCount), uint64(mask));
        StoredSlice[] storage stored = _slices[modelId];
        for (uint256 i; i < n; ++i) {
            SliceSpec calldata s = slices[i];
            stored.push(
                StoredSlice({
                    proven: s.proven,
                    scheme: s.scheme,
                    publicInputCount: s.publicInputCount,
                    inCommitIndex: s.inCommitIndex,
                    outCommitIndex: s.outCommitIndex,
                    vkHash: s.vkHash
                })
            );
        }
        _outputIndices[modelId] = slices[outputSlice].outputIndices;
        emit ModelRegistered(modelId, msg.sender, slices);
    }

    /// @inheritdoc ISheafInference
    function modelIdOf(SliceSpec[] calldata slices) public pure returns (bytes32) {
        return keccak256(abi.encode(MODEL_ID_TAG, slices));
    }

    /// @notice Checks a spec without registering it; returns what registration would store.
    function validateModel(SliceSpec[] calldata slices)
        external
        pure
        returns (uint256 outputSlice, uint256 segmentCount, uint256 provenMask)
    {
        return _validate(slices);
    }

    function isRegistered(bytes32 modelId) external view returns (bool) {
        return _models[modelId].exists;
    }

    function getModel(bytes32 modelId) external view returns (SliceSpec[] memory slices) {
        Model memory m = _models[modelId];
        if (!m.exists) revert UnknownModel(modelId);
        StoredSlice[] storage stored = _slices[modelId];
        slices = new SliceSpec[](m.sliceCount);
        for (uint256 i; i < m.sliceCount; ++i) {
            StoredSlice memory s = stored[i];
            slices[i] = SliceSpec({
                proven: s.proven,
                scheme: s.scheme,
                vkHash: s.vkHash,
                publicInputCount: s.publicInputCount,
                inCommitIndex: s.inCommitIndex,
                outCommitIndex: s.outCommitIndex,
                outputIndices: i == m.outputSlice ? _outputIndices[modelId] : new uint16[](0)
            });
        }
    }

    // ------------------------------------------------------------------ verification

    /// @inheritdoc ISheafInference
    function verifyInference(
        bytes32 modelId,
        uint256 domainId,
        uint8 requiredKind,
        SliceProof[] calldata proofs
    ) external view returns (InferenceResult memory r) {
        Model memory m = _models[modelId];
        if (!m.exists) revert UnknownModel(modelId);
        if (requiredKind > KIND_ATTESTED) revert InvalidRequiredKind(requiredKind);
        uint256 n = m.sliceCount;
        if (proofs.length != n) revert SliceCountMismatch(n, proofs.length);

        bytes32[] memory stmts = new bytes32[](n);
        r.kinds = new uint8[](n);
        r.segments = new Segment[](m.segmentCount);
        r.provenMask = m.provenMask;
        r.outputSlice = m.outputSlice;
        Walk memory w = Walk({
            modelId: modelId,
            domainId: domainId,
            requiredKind: requiredKind,
            segments: 0,
            prevProven: false,
            prevOut: 0
        });
        for (uint256 i; i < n; ++i) {
            if ((r.provenMask >> i) & 1 == 0) {
                _requireEmpty(proofs[i], i);
                w.prevProven = false;
            } else {
                stmts[i] = _provenSlice(w, r, proofs[i], i);
            }
        }
        r.fullyProven = m.segmentCount == 1 && r.segments[0].first == 0 && r.segments[0].last == n - 1;
        r.inferenceHash = keccak256(abi.encodePacked(INFERENCE_TAG, modelId, stmts));
    }

    // ------------------------------------------------------------------ internals

    /// An unproven slice's entry must be empty: no input is silently ignored.
    function _requireEmpty(SliceProof calldata p, uint256 i) private pure {
        if (
            p.publicInputs.length != 0 || p.merklePath.length != 0 || p.aggregationId != 0 || p.leafCount != 0
                || p.index != 0
        ) revert UnprovenSliceHasProof(i);
    }

    /// Checks proven slice `i` (inclusion, kind, link to the previous slice), records it in `r`.
    function _provenSlice(Walk memory w, InferenceResult memory r, SliceProof calldata p, uint256 i)
        private
        view
        returns (bytes32 stmt)
    {
        StoredSlice memory s = _slices[w.modelId][i];
        uint8 kind;
        (stmt, kind) = _included(p, s, w, i);
        r.kinds[i] = kind;
        uint256 inCommit = p.publicInputs[s.inCommitIndex];
        uint256 outCommit = p.publicInputs[s.outCommitIndex];
        if (w.prevProven) {
            if (inCommit != w.prevOut) revert BrokenLink(i, w.prevOut, inCommit);
            Segment memory cur = r.segments[w.segments - 1];
            cur.last = i;
            cur.outCommit = outCommit;
        } else {
            r.segments[w.segments] = Segment({first: i, last: i, inCommit: inCommit, outCommit: outCommit});
            ++w.segments;
        }
        w.prevProven = true;
        w.prevOut = outCommit;
        if (i == r.outputSlice) r.output = _outputs(w.modelId, p.publicInputs);
    }

    function _outputs(bytes32 modelId, uint256[] calldata pubs) private view returns (uint256[] memory out) {
        uint16[] storage idx = _outputIndices[modelId];
        uint256 k = idx.length;
        out = new uint256[](k);
        for (uint256 j; j < k; ++j) {
            out[j] = pubs[idx[j]];
        }
    }

    /// Recomputes slice `i`'s statement hash from the model's scheme and vk hash and the supplied public
    /// inputs (never a leaf supplied by the caller) and checks its inclusion and kind.
    function _included(SliceProof calldata p, StoredSlice memory s, Walk memory w, uint256 i)
        private
        view
        returns (bytes32 stmt, uint8 kind)
    {
        stmt = _statement(p.publicInputs, s, i);
        bool ok;
        (ok, kind) = registry.verifyProofAggregationKind(
            w.domainId, p.aggregationId, stmt, p.merklePath, p.leafCount, p.index
        );
        if (!ok) revert SliceNotIncluded(i, stmt);
        if (w.requiredKind != KIND_ANY && kind != w.requiredKind) {
            revert SliceWrongKind(i, w.requiredKind, kind);
        }
    }

    function _statement(uint256[] calldata pubs, StoredSlice memory s, uint256 i)
        private
        pure
        returns (bytes32)
    {
        if (pubs.length != s.publicInputCount) {
            revert PublicInputCountMismatch(i, s.publicInputCount, pubs.length);
        }
        return
            StatementHash.statementHash(
                StatementHash.ENVELOPE_VERSION, s.scheme, s.vkHash, _pubsHash(pubs, i)
            );
    }

    /// keccak256 of the public inputs as 32-byte words, each checked < r (naming slice and position).
    function _pubsHash(uint256[] calldata pubs, uint256 slice) private pure returns (bytes32 h) {
        uint256 len = pubs.length;
        for (uint256 j; j < len; ++j) {
            if (pubs[j] >= StatementHash.BN254_R) revert NonCanonicalPublicInput(slice, j);
        }
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            calldatacopy(ptr, pubs.offset, mul(len, 0x20))
            h := keccak256(ptr, mul(len, 0x20))
        }
    }

    /// Checks a spec; returns the output slice (last proven), the number of proven segments and the mask.
    function _validate(SliceSpec[] calldata slices)
        private
        pure
        returns (uint256 outputSlice, uint256 segmentCount, uint256 mask)
    {
        uint256 n = slices.length;
        if (n == 0) revert NoSlices();
        if (n > MAX_SLICES) revert TooManySlices(n, MAX_SLICES);
        bool found;
        bool prevProven;
        for (uint256 i; i < n; ++i) {
            if (slices[i].proven) {
                // forge-lint: disable-next-line(incorrect-shift)
                mask |= 1 << i;
                outputSlice = i;
                found = true;
                if (!prevProven) ++segmentCount;
            }
            prevProven = slices[i].proven;
        }
        if (!found) revert NoProvenSlice();
        for (uint256 i; i < n; ++i) {
            SliceSpec calldata s = slices[i];
            if (!s.proven) {
                if (
                    s.scheme != 0 || s.vkHash != bytes32(0) || s.publicInputCount != 0 || s.inCommitIndex != 0
                        || s.outCommitIndex != 0 || s.outputIndices.length != 0
                ) revert UnprovenSliceNotEmpty(i);
                continue;
            }
            if (s.scheme == 0 || s.scheme > MAX_SCHEME) revert InvalidScheme(i, s.scheme);
            if (s.vkHash == bytes32(0)) revert ZeroVkHash(i);
            uint256 count = s.publicInputCount;
            if (count == 0) revert ZeroPublicInputCount(i);
            if (s.inCommitIndex >= count) revert CommitIndexOutOfRange(i, s.inCommitIndex, count);
            if (s.outCommitIndex >= count) revert CommitIndexOutOfRange(i, s.outCommitIndex, count);
            if (s.inCommitIndex == s.outCommitIndex) revert SameInOutCommit(i);
            uint16[] calldata outs = s.outputIndices;
            if (i != outputSlice) {
                if (outs.length != 0) revert OutputOnNonOutputSlice(i);
                continue;
            }
            if (outs.length == 0) revert NoOutput(i);
            for (uint256 k; k < outs.length; ++k) {
                if (outs[k] >= count) revert OutputIndexOutOfRange(i, outs[k], count);
                if (k > 0 && outs[k] <= outs[k - 1]) revert OutputIndicesNotAscending(i, k);
            }
        }
    }
}
