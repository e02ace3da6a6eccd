"""A real ezkl (Halo2) proof of one slice between two gnark slices, chained both ways by ezkl's Poseidon."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import ezkl as _ezkl
import numpy as np
import pytest
from prover_helpers import write_config

from provers import ezkl_backend
from provers.pipeline import POSEIDON_EZKL, ModelRun, run_model
from provers.poseidon_ezkl import tensor_hash
from provers.srs import cut_verifier_srs, ensure_dev_srs

MIXED = [
    ("layer0", "x", "a0", "gnark-groth16"),
    ("layer1", "a0", "a1", "ezkl"),
    ("head", "a1", "y", "gnark-plonk"),
]

pytestmark = pytest.mark.slow
SEEN_STAGES: list[tuple[str, str, int, int]] = []  # run_model's stage reports (the CLI's progress)


def _seen(tag: str, stage: str, done: int, total: int) -> None:
    SEEN_STAGES.append((tag, stage, done, total))


ezkl: Any = _ezkl  # its bundled stubs disagree with 23.0.5's signatures


@pytest.fixture(scope="module")
def mixed_run(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> ModelRun:
    d = tmp_path_factory.mktemp("mixed")
    return run_model(model_path, write_config(d, MIXED), d / "out", stages=_seen)


def test_ezkl_proving_reports_each_stage(mixed_run: ModelRun) -> None:
    n = len(ezkl_backend.STAGES)
    assert ezkl_backend.STAGES == ("settings", "calibrate", "compile", "setup", "witness", "prove", "verify")
    assert [s[1:] for s in SEEN_STAGES] == [
        *((st, i, n) for i, st in enumerate(ezkl_backend.STAGES)),
        ("done", n, n),
    ]
    assert {s[0] for s in SEEN_STAGES} == {"[2/3] layer1"}  # the ezkl slice only


def test_ezkl_proof_verifies_with_a_k1_verifier_srs(mixed_run: ModelRun, tmp_path: Path) -> None:
    p = mixed_run.proofs[1]
    assert (p.backend, p.scheme, p.format) == ("ezkl", "halo2", "ezkl")
    srs = cut_verifier_srs(ensure_dev_srs(), tmp_path / "k1.srs")
    assert ezkl.verify(str(p.proof), str(p.settings), str(p.vk), str(srs))
    # hashed visibility: the statement is two Poseidon commitments, not the 8 + 4 values
    assert len(p.public_inputs) == 2
    # a proof whose output commitment is changed is rejected
    doc = json.loads(p.proof.read_text())
    inst = doc["instances"][0]
    inst[1] = (int.from_bytes(bytes.fromhex(inst[1]), "little") + 1).to_bytes(32, "little").hex()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(RuntimeError):
        ezkl.verify(str(bad), str(p.settings), str(p.vk), str(srs))


def test_commitments_chain_gnark_ezkl_gnark(mixed_run: ModelRun) -> None:
    g0, e, g2 = mixed_run.proofs
    assert g0.commitment == e.commitment == g2.commitment == POSEIDON_EZKL
    assert g0.out_commit is not None and g0.out_commit == e.in_commit
    assert e.out_commit is not None and e.out_commit == g2.in_commit
    assert [(c.prev, c.next, c.linked) for c in mixed_run.chain] == [
        ("layer0", "layer1", True),
        ("layer1", "head", True),
    ]
    # all are the Poseidon of the quantized tensors at scale 2^8 (ezkl rebases its output to it)
    a0 = [int(v) for v in np.rint(mixed_run.outputs["a0"].reshape(-1) * 256)]
    assert g0.out_commit == tensor_hash(a0).to_bytes(32, "big")
    a1 = _ezkl_output_ints(e.proof.parent)
    assert e.out_commit == tensor_hash(a1).to_bytes(32, "big")
    assert a1 == [int(v) for v in np.rint(mixed_run.outputs["a1"].reshape(-1) * 256)]


def _ezkl_output_ints(d: Path) -> list[int]:
    from normalizers.statement import BN254_R

    w = json.loads((d / "witness.json").read_text())
    vals = [int.from_bytes(bytes.fromhex(h), "little") for h in w["outputs"][0]]
    return [v - BN254_R if v > BN254_R // 2 else v for v in vals]


def test_ezkl_output_close_to_onnxruntime(mixed_run: ModelRun) -> None:
    got, ref = mixed_run.outputs["y"], mixed_run.reference["y"]
    assert got.shape == ref.shape
    # gnark's and ezkl's fixed-point errors at scale 2^8 (gnark alone: ~4e-3 on this model)
    assert float(np.max(np.abs(got - ref))) < 0.05
    assert not np.array_equal(got, ref)  # it is the proven fixed-point value, not the float one
