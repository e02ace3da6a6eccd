"""ezkl proves and verifies a tiny ONNX model offline with the cached (INSECURE) dev SRS."""

from __future__ import annotations

import json
from pathlib import Path

import ezkl
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from provers.srs import cut_verifier_srs, ensure_dev_srs, srs_logrows


def _tiny_model(path: Path) -> None:
    rng = np.random.default_rng(7)
    weights = rng.uniform(-1, 1, (2, 4)).astype(np.float32)
    bias = rng.uniform(-1, 1, (2,)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "b"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


@pytest.fixture(scope="module")
def proved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ezkl")
    srs = ensure_dev_srs()
    files = {
        k: d / v
        for k, v in {
            "model": "m.onnx",
            "settings": "settings.json",
            "circuit": "m.ezkl",
            "input": "input.json",
            "witness": "witness.json",
            "vk": "vk.key",
            "pk": "pk.key",
            "proof": "proof.json",
        }.items()
    }
    _tiny_model(files["model"])
    files["input"].write_text(json.dumps({"input_data": [[0.5, -0.25, 0.75, 0.1]]}))
    args = ezkl.PyRunArgs()
    args.input_visibility, args.output_visibility, args.param_visibility = "public", "public", "fixed"
    args.logrows, args.input_scale, args.param_scale = 11, 4, 4
    assert ezkl.gen_settings(str(files["model"]), str(files["settings"]), py_run_args=args)
    assert ezkl.compile_circuit(str(files["model"]), str(files["circuit"]), str(files["settings"]))
    ezkl.gen_witness(str(files["input"]), str(files["circuit"]), str(files["witness"]))
    assert ezkl.setup(str(files["circuit"]), str(files["vk"]), str(files["pk"]), srs_path=str(srs))
    ezkl.prove(
        str(files["witness"]), str(files["circuit"]), str(files["pk"]), str(files["proof"]), srs_path=str(srs)
    )
    files["srs"] = srs
    return files


def test_dev_srs_is_cached_and_marked_insecure() -> None:
    path = ensure_dev_srs()
    assert "INSECURE" in path.name
    assert srs_logrows(path) == 17
    assert ensure_dev_srs() == path  # second call: the cached file, no regeneration


def test_prove_then_verify(proved: dict[str, Path]) -> None:
    assert ezkl.verify(
        str(proved["proof"]), str(proved["settings"]), str(proved["vk"]), srs_path=str(proved["srs"])
    )


def test_k1_verifier_srs_cut_verifies(proved: dict[str, Path], tmp_path: Path) -> None:
    cut = cut_verifier_srs(proved["srs"], tmp_path / "k1.srs")
    assert cut.stat().st_size < 1024
    assert ezkl.verify(str(proved["proof"]), str(proved["settings"]), str(proved["vk"]), srs_path=str(cut))


def test_tampered_output_is_rejected(proved: dict[str, Path], tmp_path: Path) -> None:
    proof = json.loads(proved["proof"].read_text())
    instance = proof["instances"][0]
    # Change the last public instance (an output) to another canonical field element.
    instance[-1] = (int.from_bytes(bytes.fromhex(instance[-1]), "little") + 1).to_bytes(32, "little").hex()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(proof))
    with pytest.raises(RuntimeError):
        ezkl.verify(str(bad), str(proved["settings"]), str(proved["vk"]), srs_path=str(proved["srs"]))


def test_srs_from_another_setup_is_rejected(proved: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "other.srs"
    ezkl.gen_srs(str(other), 11)  # a fresh random tau: proofs made with the dev SRS must not verify
    with pytest.raises(RuntimeError):
        ezkl.verify(str(proved["proof"]), str(proved["settings"]), str(proved["vk"]), srs_path=str(other))
