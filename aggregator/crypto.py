"""Merkle and EIP-712 entry points used by the aggregator and the operators.

Thin adapters over aggregator/merkle.py and aggregator/attestation.py (the registry's Python twins),
so the aggregator and the operators call one place.
"""

from __future__ import annotations

from collections.abc import Sequence

from aggregator import attestation, merkle


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    return merkle.merkle_root(leaves)


def merkle_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    return list(merkle.merkle_path(leaves, index).path)


def all_paths(leaves: Sequence[bytes]) -> list[list[bytes]]:
    return [list(p.path) for p in merkle.all_paths(leaves)]


def verify_path(root: bytes, leaf: bytes, path: Sequence[bytes], leaf_count: int, index: int) -> bool:
    return merkle.verify_path(root, leaf, path, leaf_count, index)


def _agg(
    domain_id: int, aggregation_id: int, root: bytes, leaf_count: int, deadline: int
) -> attestation.Aggregation:
    return attestation.Aggregation(domain_id, aggregation_id, root, leaf_count, deadline)


def sign_aggregation(
    key: str,
    chain_id: int,
    registry: str,
    domain_id: int,
    aggregation_id: int,
    root: bytes,
    leaf_count: int,
    deadline: int,
) -> bytes:
    message = attestation.aggregation_message(
        _agg(domain_id, aggregation_id, root, leaf_count, deadline), chain_id, registry
    )
    return attestation.sign_message(message, key).signature


def recover_aggregation_signer(
    signature: bytes,
    chain_id: int,
    registry: str,
    domain_id: int,
    aggregation_id: int,
    root: bytes,
    leaf_count: int,
    deadline: int,
) -> str:
    return attestation.recover_signer(
        _agg(domain_id, aggregation_id, root, leaf_count, deadline), chain_id, registry, signature
    )
