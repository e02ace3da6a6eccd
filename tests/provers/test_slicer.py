"""Slicing and backend-support checks (onnxruntime only, no proofs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from prover_helpers import write_config

from provers.cli import main as cli_main
from provers.errors import ProverError
from provers.model import sample_input
from provers.slicer import (
    load_config,
    load_model,
    parse_config,
    require_supported,
    run_onnx,
    run_slices_float,
    slice_model,
)

THREE = [("l0", "x", "a0", "none"), ("l1", "a0", "a1", "none"), ("l2", "a1", "y", "none")]


def test_composition_of_slices_equals_whole_model(model_path: Path, tmp_path: Path) -> None:
    model = load_model(model_path)
    slices = slice_model(model, load_config(write_config(tmp_path, THREE)))
    assert [s.report.op_types for s in slices] == [("Gemm", "Relu"), ("Gemm", "Relu"), ("Gemm",)]
    assert [t.shape for t in slices[0].report.inputs] == [(1, 16)]
    assert [t.shape for t in slices[2].report.outputs] == [(1, 4)]
    for seed in range(5):
        x = sample_input(seed)
        whole = run_onnx(model, {"x": x})["y"]
        composed = run_slices_float(slices, {"x": x})
        np.testing.assert_array_equal(composed["y"], whole)
        # the intermediate tensor really is the cut point: a nonzero, relu'd activation
        assert composed["a0"].shape == (1, 8) and (composed["a0"] >= 0).all() and composed["a0"].any()


def test_two_slice_cut_also_composes(model_path: Path, tmp_path: Path) -> None:
    model = load_model(model_path)
    cfg = load_config(write_config(tmp_path, [("front", "x", "a1", "none"), ("head", "a1", "y", "none")]))
    slices = slice_model(model, cfg)
    assert slices[0].report.op_types == ("Gemm", "Relu", "Gemm", "Relu")
    x = sample_input(3)
    np.testing.assert_array_equal(run_slices_float(slices, {"x": x})["y"], run_onnx(model, {"x": x})["y"])


def _sigmoid_model(path: Path) -> Path:
    w = numpy_helper.from_array(np.ones((4, 16), dtype=np.float32), "W")
    b = numpy_helper.from_array(np.zeros(4, dtype=np.float32), "B")
    g = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "W", "B"], ["h"], name="gemm", transB=1),
            helper.make_node("Sigmoid", ["h"], ["s"], name="sig"),
            helper.make_node("TopK", ["s", "k"], ["y", "idx"], name="topk"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        initializer=[w, b, numpy_helper.from_array(np.array([2], dtype=np.int64), "k")],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


@pytest.mark.parametrize("backend", ["gnark-groth16", "gnark-plonk"])
def test_gnark_unsupported_op_names_the_op(tmp_path: Path, backend: str) -> None:
    model = load_model(_sigmoid_model(tmp_path / "m.onnx"))
    cfg = load_config(write_config(tmp_path, [("act", "x", "s", backend), ("rest", "s", "y", "none")]))
    slices = slice_model(model, cfg)
    assert not slices[0].report.supported and slices[1].report.supported
    with pytest.raises(ProverError) as ei:
        require_supported(slices)
    assert ei.value.code == "PROVER_UNSUPPORTED_OP"
    assert "Sigmoid" in ei.value.message and "'act'" in ei.value.message


def test_ezkl_refuses_ops_off_its_allow_list(tmp_path: Path) -> None:
    model = load_model(_sigmoid_model(tmp_path / "m.onnx"))
    cfg = load_config(write_config(tmp_path, [("all", "x", "y", "ezkl")]))
    with pytest.raises(ProverError) as ei:
        require_supported(slice_model(model, cfg))
    assert ei.value.code == "PROVER_UNSUPPORTED_OP" and "TopK" in ei.value.message


def test_gnark_needs_a_dense_chain(model_path: Path, tmp_path: Path) -> None:
    """Relu first (no layer before it) is a supported op in the wrong place: a shape error naming the node."""
    model = load_model(model_path)
    cfg = load_config(
        write_config(tmp_path, [("pre", "x", "h0", "none"), ("act", "h0", "y", "gnark-groth16")])
    )
    with pytest.raises(ProverError) as ei:
        require_supported(slice_model(model, cfg))
    assert ei.value.code == "PROVER_UNSUPPORTED_SHAPE" and "relu0" in ei.value.message


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({}, "slice"),
        (
            {"slice": [{"name": "a", "inputs": ["x"], "outputs": ["y"], "backend": "snark"}]},
            "slice[0].backend",
        ),
        ({"slice": [{"name": "a", "inputs": [], "outputs": ["y"]}]}, "slice[0].inputs"),
        ({"slice": [{"name": "a", "inputs": ["x"]}]}, "slice[0].outputs"),
        (
            {"fixed_point": {"scale_bits": 40}, "slice": [{"name": "a", "inputs": ["x"], "outputs": ["y"]}]},
            "fixed_point.scale_bits",
        ),
        (
            {
                "ezkl": {"input_visibility": "secret"},
                "slice": [{"name": "a", "inputs": ["x"], "outputs": ["y"]}],
            },
            "ezkl.input_visibility",
        ),
        ({"slice": [{"name": "a", "inputs": ["x"], "outputs": ["y"], "prove": "yes"}]}, "slice[0].prove"),
        ({"slise": []}, "slise"),
    ],
)
def test_config_errors_name_the_key(doc: dict[str, object], field: str) -> None:
    with pytest.raises(ProverError) as ei:
        parse_config(doc)
    assert ei.value.code == "PROVER_CONFIG_INVALID"
    assert ei.value.message.startswith(field + ":"), ei.value.message


def test_slice_tensors_must_exist_and_be_available(model_path: Path, tmp_path: Path) -> None:
    model = load_model(model_path)
    with pytest.raises(ProverError, match=r"tensor 'nope' does not exist"):
        slice_model(model, load_config(write_config(tmp_path, [("a", "x", "nope", "none")])))
    with pytest.raises(
        ProverError, match=r"input 'a1' is not a model input or an output of an earlier slice"
    ):
        slice_model(model, load_config(write_config(tmp_path, [("b", "a1", "y", "none")])))
    with pytest.raises(ProverError, match=r"no slice produces model output"):
        slice_model(model, load_config(write_config(tmp_path, [("a", "x", "a0", "none")])))


def test_cli_inspect_reports_and_fails_on_unsupported(
    model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = write_config(tmp_path, [("l0", "x", "a0", "gnark-groth16"), ("rest", "a0", "y", "ezkl")])
    assert cli_main(["inspect", "--model", str(model_path), "--config", str(ok)]) == 0
    out = capsys.readouterr().out
    assert "l0: gnark-groth16" in out and "x[1, 16]" in out and "ops: Gemm Relu Gemm\n" in out
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    bad = write_config(bad_dir, [("all", "x", "y", "gnark-plonk")])
    model = _sigmoid_model(tmp_path / "sig.onnx")
    assert cli_main(["slice", "--model", str(model), "--config", str(bad), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "PROVER_UNSUPPORTED_OP" in err and "Sigmoid" in err
    assert (tmp_path / "s" / "00-all.onnx").exists()


def test_committed_sample_model_is_the_generated_one() -> None:
    from provers.model import build_sample_model

    committed = Path(__file__).resolve().parents[2] / "provers" / "examples" / "sample_mlp.onnx"
    assert committed.read_bytes() == build_sample_model().SerializeToString()


def test_example_config_parses_and_is_supported() -> None:
    cfg_path = Path(__file__).resolve().parents[2] / "provers" / "examples" / "slices.toml"
    cfg = load_config(cfg_path)
    assert cfg.model_path is not None and cfg.scale_bits == cfg.ezkl.scale
    slices = slice_model(load_model(cfg.model_path), cfg)
    require_supported(slices)
    assert [s.config.backend for s in slices] == ["gnark-groth16", "ezkl", "gnark-plonk"]
