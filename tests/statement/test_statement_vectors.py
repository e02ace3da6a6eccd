"""The committed statement-hash vectors are what the spec code produces, and the spec is sensitive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from normalizers.statement import BN254_R, Scheme, keccak256, pubs_hash, statement_hash, vk_hash
from normalizers.vectors import DEFAULT_OUT, build_vectors


def test_committed_vectors_match_the_spec() -> None:
    assert json.loads(Path(DEFAULT_OUT).read_text()) == build_vectors()


def test_statement_hash_layout_by_hand() -> None:
    vh = vk_hash(Scheme.PLONK, b"\x01\x02")
    assert vh == keccak256(b"sheaf/vk" + b"\x02" + b"\x01\x02")
    pubs = [(7).to_bytes(32, "big"), (BN254_R - 1).to_bytes(32, "big")]
    expected = keccak256(b"sheaf/statement" + b"\x01\x02" + vh + keccak256(b"".join(pubs)))
    assert statement_hash(Scheme.PLONK, vh, pubs) == expected


def test_every_field_changes_the_hash() -> None:
    vh = vk_hash(Scheme.GROTH16, b"vk")
    pubs = [(1).to_bytes(32, "big")]
    base = statement_hash(Scheme.GROTH16, vh, pubs)
    assert statement_hash(Scheme.HALO2, vh, pubs) != base
    assert statement_hash(Scheme.GROTH16, vk_hash(Scheme.GROTH16, b"vk2"), pubs) != base
    assert statement_hash(Scheme.GROTH16, vh, [(2).to_bytes(32, "big")]) != base
    assert statement_hash(Scheme.GROTH16, vh, pubs + pubs) != base
    assert statement_hash(Scheme.GROTH16, vh, pubs, version=2) != base


@pytest.mark.parametrize(
    "bad",
    [[b"\x00" * 31], [BN254_R.to_bytes(32, "big")], [(BN254_R + 5).to_bytes(32, "big")]],
)
def test_non_canonical_public_inputs_are_refused(bad: list[bytes]) -> None:
    with pytest.raises(ValueError):
        pubs_hash(bad)
