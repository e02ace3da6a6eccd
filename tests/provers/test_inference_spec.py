"""provers.inference.model_spec: the whole-inference model spec of a prover run (pure): unproven slices
empty, commitment positions found among the public inputs, the output on the last proven slice, and
a slice whose commitments are not public refused with PROVER_MODEL_SPEC."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from provers.errors import ProverError
from provers.inference import model_spec
from provers.pipeline import SliceProof
from sheaf.inference import SliceSpec, validate_model


def _proof(name: str, scheme: str, pubs: list[int], in_i: int, out_i: int) -> SliceProof:
    words = tuple(v.to_bytes(32, "big") for v in pubs)
    return SliceProof(
        name,
        "x",
        scheme,
        "gnark",
        Path("p"),
        Path("v"),
        None,
        None,
        words,
        "poseidon-ezkl",
        words[in_i],
        words[out_i],
        "a",
        "b",
        0.0,
        0.0,
        True,
        None,
    )


def test_model_spec_of_a_partial_run() -> None:
    a = _proof("layer0", "groth16", [11, 12], 0, 1)
    c = _proof("head", "halo2", [5, 13, 14], 1, 2)
    spec = model_spec(
        [("layer0", True), ("layer1", False), ("head", True)], [a, c], [b"\x01" * 32, b"\x03" * 32]
    )
    assert spec == [
        SliceSpec(True, 1, b"\x01" * 32, 2, 0, 1, ()),
        SliceSpec.unproven(),
        SliceSpec(True, 3, b"\x03" * 32, 3, 1, 2, (2,)),
    ]
    assert validate_model(spec) == (2, 2, 0b101)


def test_model_spec_refusals() -> None:
    a = _proof("layer0", "groth16", [11, 12], 0, 1)
    with pytest.raises(ProverError) as e:  # the commitment is not among the public inputs
        model_spec([("layer0", True)], [replace(a, out_commit=b"\x09" * 32)], [b"\x01" * 32])
    assert e.value.code == "PROVER_MODEL_SPEC" and "output commitment" in str(e.value)
    with pytest.raises(ProverError) as e:  # a proven slice without a proof
        model_spec([("layer0", True), ("head", True)], [a], [b"\x01" * 32])
    assert e.value.code == "PROVER_MODEL_SPEC"
    with pytest.raises(ProverError) as e:  # the same value for both commitments: the spec refuses it
        model_spec([("layer0", True)], [_proof("layer0", "groth16", [11, 11], 0, 1)], [b"\x01" * 32])
    assert e.value.code == "PROVER_MODEL_SPEC"
