"""aggregator/leaves.py: recursion-circuit leaves and their statement hash (fast, no binary)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aggregator.leaves import (
    LEAF_SCHEME_UNSUPPORTED,
    LeafError,
    leaf_scheme,
    leaf_statement_hash,
    snarkjs_leaf,
)
from normalizers.api import Normalizer, ProofInput
from sheaf.errors import SheafError
from sheaf.paths import REPO_ROOT
from sheaf.schemes import Scheme

SNARKJS = REPO_ROOT / "tests" / "fixtures" / "snarkjs" / "mul1_groth16"
GNARK_BATCH = REPO_ROOT / "gnark" / "aggregation" / "testdata" / "batch_p1.json"


def _read(d: Path, i: int) -> tuple[bytes, bytes, bytes]:
    return (
        (d / "verification_key.json").read_bytes(),
        (d / f"proof{i}.json").read_bytes(),
        (d / f"public{i}.json").read_bytes(),
    )


@pytest.mark.parametrize("i", [0, 1])
def test_snarkjs_leaf_hash_is_the_normalizers_statement_hash(i: int) -> None:
    vk, proof, public = _read(SNARKJS, i)
    leaf = snarkjs_leaf(vk, proof, public)
    assert leaf["scheme"] == "groth16" and len(bytes.fromhex(leaf["proof"][2:])) == 256
    with Normalizer(groth16_backend="groth16py") as n:
        env = n.normalize(ProofInput("groth16", "snarkjs", proof, vk, public))
    assert leaf_statement_hash(leaf) == env.statement_hash
    assert leaf["vk"] == "0x" + bytes(env.canonical_vk).hex()


def test_leaf_without_scheme_is_groth16_like_the_worker() -> None:
    leaf = json.loads(GNARK_BATCH.read_text())["leaves"][0]
    bare = {k: v for k, v in leaf.items() if k != "scheme"}
    assert leaf_scheme(bare) is Scheme.GROTH16
    assert leaf_statement_hash(bare) == leaf_statement_hash({**bare, "scheme": "groth16"})


@pytest.mark.parametrize("scheme", ["halo2", "HALO2", "PLONK", "fflonk", 2])
def test_a_leaf_of_a_scheme_the_circuit_has_no_slot_for_is_refused(scheme: Any) -> None:
    # used to be hashed as a Groth16 leaf (anything but "plonk" was Groth16): a wrong statement hash
    leaf = {**snarkjs_leaf(*_read(SNARKJS, 0)), "scheme": scheme}
    with pytest.raises(LeafError) as e:
        leaf_statement_hash(leaf)
    assert isinstance(e.value, SheafError)
    assert (e.value.code, e.value.field) == (LEAF_SCHEME_UNSUPPORTED, "scheme")
    assert "groth16, plonk" in e.value.message
