"""The statement hash, computed locally (the spec is docs/envelope.md; the repo's tests hold this
equal to sheaf/statement.py and contracts/src/StatementHash.sol):

    pubs_hash      = keccak256(pub_0 || ... || pub_{n-1})       each 32-byte big-endian, < r
    statement_hash = keccak256("sheaf/statement" || u8 version || u8 scheme || vk_hash || pubs_hash)
"""

from __future__ import annotations

from collections.abc import Sequence

from Crypto.Hash import keccak

from sheaf_client.types import Scheme, from_hex, to_hex

ENVELOPE_VERSION = 1
BN254_R = 21888242871839275222246405745257275088548364400416034343698204186575808495617
SUBMIT_TAG = b"sheaf/submit"


def keccak256(data: bytes) -> bytes:
    return bytes(keccak.new(digest_bits=256, data=data).digest())


def _word(i: int, p: bytes | int | str) -> bytes:
    if isinstance(p, int):
        if not 0 <= p < 1 << 256:
            raise ValueError(f"public input {i} does not fit in 32 bytes")
        b = p.to_bytes(32, "big")
    else:
        b = from_hex(p)
    if len(b) != 32:
        raise ValueError(f"public input {i} must be 32 bytes, got {len(b)}")
    if int.from_bytes(b, "big") >= BN254_R:
        raise ValueError(f"public input {i} is not a canonical BN254 scalar (>= r)")
    return b


def pubs_hash(public_inputs: Sequence[bytes | int | str]) -> bytes:
    return keccak256(b"".join(_word(i, p) for i, p in enumerate(public_inputs)))


def statement_hash(
    scheme: Scheme | str | int,
    vk_hash: bytes | str,
    public_inputs: Sequence[bytes | int | str],
    version: int = ENVELOPE_VERSION,
) -> str:
    """0x-hex statement hash. public_inputs: 32-byte words, ints or hex strings (each < r)."""
    s = Scheme.parse(scheme)
    vk = from_hex(vk_hash)
    if len(vk) != 32:
        raise ValueError("vk_hash must be 32 bytes")
    if not 0 < version < 256:
        raise ValueError("envelope version must fit in one byte and be non-zero")
    return to_hex(keccak256(b"sheaf/statement" + bytes([version, int(s)]) + vk + pubs_hash(public_inputs)))


def submission_digest(domain_id: int, statement_hash: bytes | str, nonce: int) -> bytes:
    """What a prover signs (EIP-191 personal_sign) when the aggregator requires prover auth:
    keccak256("sheaf/submit" || u64 domain_id || statement_hash || u64 nonce)."""
    return keccak256(
        SUBMIT_TAG + domain_id.to_bytes(8, "big") + from_hex(statement_hash) + nonce.to_bytes(8, "big")
    )
