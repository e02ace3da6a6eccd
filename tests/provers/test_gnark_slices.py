"""gnark Groth16/PLONK slice proofs of the sample model: real proofs through the Go binary."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prover_helpers import write_config

from provers import gnark_backend, quant
from provers.errors import ProverError
from provers.pipeline import POSEIDON_EZKL, ModelRun, check_chain, run_model
from provers.poseidon_ezkl import tensor_hash
from provers.slicer import dense_layers, run_slices_float

GG = [
    ("layer0", "x", "a0", "gnark-groth16"),
    ("layer1", "a0", "a1", "gnark-plonk"),
    ("head", "a1", "y", "gnark-groth16"),
]


@pytest.fixture(scope="module")
def gg_run(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelRun:
    d = tmp_path_factory.mktemp("gg")
    return run_model(model_path, write_config(d, GG), d / "out")


@given(st.integers(-(2**40), 2**40), st.integers(1, 20))
def test_round_shift_is_round_half_up(acc: int, k: int) -> None:
    exact = Fraction(acc, 2**k)
    assert quant.round_shift(acc, k) == math.floor(exact + Fraction(1, 2))


def test_outputs_match_onnxruntime_within_the_bound(gg_run: ModelRun) -> None:
    float_env = run_slices_float(gg_run.slices, {"x": gg_run.outputs["x"]})
    np.testing.assert_array_equal(float_env["y"], gg_run.reference["y"])
    for p in gg_run.proofs:
        got, ref = gg_run.outputs[p.output_tensor], float_env[p.output_tensor]
        assert p.error_bound is not None and 0 < p.error_bound < 0.2
        err = float(np.max(np.abs(got - ref)))
        assert err <= p.error_bound, (p.name, err, p.error_bound)
        # the proof really carries an approximation, not the float value: off the 2^-8 grid never
        assert np.all(np.abs(got * 256 - np.rint(got * 256)) < 1e-6)
    # the final output is close in absolute terms too (not only within a loose bound)
    assert float(np.max(np.abs(gg_run.outputs["y"] - gg_run.reference["y"]))) < 0.02


def test_proofs_verify_and_chain_by_commitment(gg_run: ModelRun) -> None:
    assert [p.scheme for p in gg_run.proofs] == ["groth16", "plonk", "groth16"]
    for p in gg_run.proofs:
        assert len(p.public_inputs) == 2 and p.commitment == POSEIDON_EZKL
        # the in-circuit commitment is ezkl's Poseidon of the quantized output tensor
        out_int = [int(v) for v in np.rint(gg_run.outputs[p.output_tensor].reshape(-1) * 256)]
        assert p.out_commit == tensor_hash(out_int).to_bytes(32, "big")
        gp = _as_gnark(p)
        assert gnark_backend.verify(gp)
    assert [(c.prev, c.next, c.linked, c.commitment) for c in gg_run.chain] == [
        ("layer0", "layer1", True, POSEIDON_EZKL),
        ("layer1", "head", True, POSEIDON_EZKL),
    ]
    # the commitments are to different tensors: input and output commitments differ
    assert gg_run.proofs[0].in_commit != gg_run.proofs[0].out_commit


def _as_gnark(p: object) -> gnark_backend.GnarkProof:
    from provers.pipeline import SliceProof

    assert isinstance(p, SliceProof) and p.public is not None
    return gnark_backend.GnarkProof(
        backend=p.scheme,
        target="solidity",
        proof=p.proof,
        vk=p.vk,
        public_witness=p.public,
        public_inputs=p.public_inputs,
        output=(),
        circuit_hash="",
        constraints=0,
        keys_cached=True,
        setup_seconds=0,
        prove_seconds=0,
    )


@pytest.mark.parametrize("idx", [0, 1])
def test_tampered_public_inputs_are_rejected(gg_run: ModelRun, tmp_path: Path, idx: int) -> None:
    p = gg_run.proofs[idx]
    gp = _as_gnark(p)
    swapped = tmp_path / "swapped.bin"
    swapped.write_bytes(gnark_backend.public_witness_bytes((p.out_commit or b"", p.in_commit or b"")))
    assert not gnark_backend.verify(gp, swapped)
    # the same encoding of the true statement is accepted (so the rejection is about the values)
    same = tmp_path / "same.bin"
    same.write_bytes(gnark_backend.public_witness_bytes(p.public_inputs))
    assert gnark_backend.verify(gp, same)


@pytest.mark.parametrize("backend", ["groth16", "plonk"])
def test_wrong_output_cannot_be_proven(gg_run: ModelRun, tmp_path: Path, backend: str) -> None:
    s = gg_run.slices[2]
    layers = dense_layers(s.model, "head")
    qs = quant.quantize_layers("head", layers, 8, 32)
    x_int = quant.quantize_tensor(gg_run.outputs["a1"], 8)
    y = quant.evaluate(qs, x_int)
    wrong = [y[0] + 1, *y[1:]]
    with pytest.raises(ProverError) as ei:
        gnark_backend.prove(quant.spec_json(qs, x_int, wrong), backend, tmp_path / "wrong")
    assert ei.value.code == "PROVER_UNSATISFIED"
    assert not (tmp_path / "wrong" / "proof.bin").exists()


def test_changed_slice_input_breaks_the_chain(gg_run: ModelRun, tmp_path: Path) -> None:
    p0, p1 = gg_run.proofs[0], gg_run.proofs[1]
    s = gg_run.slices[1]
    qs = quant.quantize_layers("layer1", dense_layers(s.model, "layer1"), 8, 32)
    x_int = quant.quantize_tensor(gg_run.outputs["a0"], 8)
    assert quant.spec_json(qs, x_int)["input"] == x_int
    x_int[3] += 1  # one quantum off in one coordinate
    forged = gnark_backend.prove(quant.spec_json(qs, x_int), "plonk", tmp_path / "forged")
    assert gnark_backend.verify(forged)  # a valid proof, of a different statement ...
    forged_p1 = dataclasses.replace(
        p1, public_inputs=forged.public_inputs, in_commit=forged.in_commit, out_commit=forged.out_commit
    )
    with pytest.raises(ProverError) as ei:  # ... which the chain check catches
        check_chain([p0, forged_p1, gg_run.proofs[2]])
    assert ei.value.code == "PROVER_CHAIN_BROKEN" and "layer1" in ei.value.message
    assert [c.linked for c in check_chain(gg_run.proofs)] == [True, True]


def test_q_bits_too_small_is_a_clear_range_error(gg_run: ModelRun) -> None:
    s = gg_run.slices[0]
    qs = quant.quantize_layers("layer0", dense_layers(s.model, "layer0"), 8, 4)
    with pytest.raises(ProverError) as ei:
        quant.evaluate(qs, quant.quantize_tensor(gg_run.outputs["x"], 8))
    assert ei.value.code == "PROVER_RANGE" and "q_bits" in ei.value.message


def test_cli_prove_writes_manifest_and_table(
    model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from provers.cli import main as cli_main
    from provers.pipeline import load_run_manifest

    cfg = write_config(tmp_path, GG)
    assert (
        cli_main(["prove", "--model", str(model_path), "--config", str(cfg), "--out", str(tmp_path / "p")])
        == 0
    )
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["slice", "backend", "prove_s", "proof_B"]
    assert [ln.split()[0] for ln in lines[1:4]] == ["layer0", "layer1", "head"]
    assert "chain layer0 -> layer1 via a0: linked (poseidon-ezkl)" in out
    proofs = load_run_manifest(tmp_path / "p" / "proofs.json")
    assert [p.scheme for p in proofs] == ["groth16", "plonk", "groth16"]
    assert all(p.keys_cached for p in proofs)  # the module fixture made the same circuits
