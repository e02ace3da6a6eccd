// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title StatementHash
/// @notice Sheaf's statement hash, bit-for-bit the same as normalizers/statement.py:
///   pubs_hash      = keccak256(pub_0 || ... || pub_{n-1})            (32-byte big-endian words, each < r)
///   vk_hash        = keccak256("sheaf/vk" || u8 scheme || canonical_vk)
///   statement_hash = keccak256("sheaf/statement" || u8 version || u8 scheme || vk_hash || pubs_hash)
library StatementHash {
    /// BN254 scalar field modulus r.
    uint256 internal constant BN254_R =
        21888242871839275222246405745257275088548364400416034343698204186575808495617;
    uint8 internal constant ENVELOPE_VERSION = 1;

    error NonCanonicalPublicInput(uint256 index);
    error InvalidEnvelopeVersion();

    function pubsHash(uint256[] memory pubs) internal pure returns (bytes32 h) {
        uint256 n = pubs.length;
        for (uint256 i; i < n; ++i) {
            if (pubs[i] >= BN254_R) revert NonCanonicalPublicInput(i);
        }
        // uint256[] in memory is already the concatenation of 32-byte big-endian words.
        assembly ("memory-safe") {
            h := keccak256(add(pubs, 0x20), mul(n, 0x20))
        }
    }

    function vkHash(uint8 scheme, bytes memory canonicalVk) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked("sheaf/vk", scheme, canonicalVk));
    }

    function statementHash(uint8 version, uint8 scheme, bytes32 vkHash_, bytes32 pubsHash_)
        internal
        pure
        returns (bytes32)
    {
        if (version == 0) revert InvalidEnvelopeVersion();
        return keccak256(abi.encodePacked("sheaf/statement", version, scheme, vkHash_, pubsHash_));
    }

    function statementHash(uint8 scheme, bytes32 vkHash_, uint256[] memory pubs)
        internal
        pure
        returns (bytes32)
    {
        return statementHash(ENVELOPE_VERSION, scheme, vkHash_, pubsHash(pubs));
    }
}
