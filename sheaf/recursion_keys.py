"""Naming of the recursion circuit's shapes, shared by sheaf-deploy, the aggregator, tests and
benchmarks. Concurrent dev setups of one circuit are serialized by sheaf-gnark itself (a lock per key
cache entry, gnark/aggregation/keylock.go, taken by every `aggregate` command), not here."""

from __future__ import annotations


def verifier_key(batch: int, npub: int, plonk: int = 0) -> str:
    """Name of one outer-circuit shape (plonk: how many of the batch slots are PLONK), e.g. "b2_p1_k1":
    the suffix of its manifest entries and generated verifier file."""
    return f"b{batch}_p{npub}" + (f"_k{plonk}" if plonk else "")
