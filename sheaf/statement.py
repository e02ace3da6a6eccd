"""Statement hash: the one value Python, Go and Solidity must compute identically (the spec; the
normalizers, the inference receipt check and the deploy scripts all import it from here).

Spec (docs/envelope.md has the prose and test vectors in tests/vectors/statement_hash.json):

    pubs_hash      = keccak256(pub_0 || pub_1 || ... || pub_{n-1})      each 32-byte big-endian, < r
    statement_hash = keccak256("sheaf/statement" || u8 envelope_version || u8 scheme
                               || vk_hash || pubs_hash)

The proof bytes are deliberately not part of it: a statement, not one particular proof
(as zkVerify and NEBRA do). vk_hash is computed by each scheme module over its canonical vk
encoding (see `vk_hash`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sheaf.hashing import keccak256
from sheaf.schemes import Scheme

__all__ = [
    "BN254_P",
    "BN254_R",
    "ENVELOPE_VERSION",
    "Scheme",
    "keccak256",
    "pubs_hash",
    "statement_hash",
    "vk_hash",
]

ENVELOPE_VERSION = 1
STATEMENT_TAG = b"sheaf/statement"
VK_TAG = b"sheaf/vk"
# BN254 scalar field modulus (r).
BN254_R = 21888242871839275222246405745257275088548364400416034343698204186575808495617
# BN254 base field modulus (p).
BN254_P = 21888242871839275222246405745257275088696311157297823662689037894645226208583


def pubs_hash(public_inputs: Sequence[bytes]) -> bytes:
    for i, p in enumerate(public_inputs):
        if len(p) != 32:
            raise ValueError(f"public input {i} must be 32 bytes, got {len(p)}")
        if int.from_bytes(p, "big") >= BN254_R:
            raise ValueError(f"public input {i} is not a canonical BN254 scalar (>= r)")
    return keccak256(b"".join(public_inputs))


def vk_hash(scheme: Scheme, canonical_vk: bytes) -> bytes:
    """keccak256("sheaf/vk" || u8 scheme || canonical vk bytes); the encoding is per scheme."""
    return keccak256(VK_TAG + bytes([int(scheme)]) + canonical_vk)


def statement_hash(
    scheme: Scheme, vk_hash_: bytes, public_inputs: Sequence[bytes], version: int = ENVELOPE_VERSION
) -> bytes:
    if len(vk_hash_) != 32:
        raise ValueError("vk_hash must be 32 bytes")
    if not 0 < version < 256:
        raise ValueError("envelope version must fit in one byte and be non-zero")
    return keccak256(STATEMENT_TAG + bytes([version, int(scheme)]) + vk_hash_ + pubs_hash(public_inputs))
