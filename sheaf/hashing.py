"""keccak256, the EVM's hash (statement hash, Merkle tree, signatures): defined once, here."""

from __future__ import annotations

from Crypto.Hash import keccak as _keccak


def keccak256(data: bytes) -> bytes:
    return _keccak.new(digest_bits=256, data=data).digest()
