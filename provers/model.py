"""The reference sample model: a tiny deterministic MLP built with onnx.helper.

16 -> 8 (Gemm+Relu) -> 8 (Gemm+Relu) -> 4 (Gemm), weights drawn from a seeded numpy generator.
No dataset or training is involved, so it runs offline with the pinned dependencies only and is
byte-for-byte reproducible; it is small enough that every slice proves in seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

INPUT_NAME = "x"
OUTPUT_NAME = "y"
INPUT_WIDTH = 16
# (in, out, relu) per layer; tensor names follow the layer index.
LAYERS: tuple[tuple[int, int, bool], ...] = ((16, 8, True), (8, 8, True), (8, 4, False))
OPSET = 13
IR_VERSION = 8  # what ezkl's tract and onnxruntime both read


def build_sample_model(seed: int = 7) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    prev = INPUT_NAME
    for i, (fan_in, fan_out, relu) in enumerate(LAYERS):
        w = (rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in)).astype(np.float32)
        b = (0.1 * rng.standard_normal(fan_out)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"B{i}")]
        last = i == len(LAYERS) - 1
        gemm_out = OUTPUT_NAME if last and not relu else f"h{i}"
        nodes.append(
            helper.make_node("Gemm", [prev, f"W{i}", f"B{i}"], [gemm_out], name=f"gemm{i}", transB=1)
        )
        prev = gemm_out
        if relu:
            act_out = OUTPUT_NAME if last else f"a{i}"
            nodes.append(helper.make_node("Relu", [prev], [act_out], name=f"relu{i}"))
            prev = act_out
    graph = helper.make_graph(
        nodes,
        "sheaf_sample_mlp",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [1, INPUT_WIDTH])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [1, LAYERS[-1][1]])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="sheaf")
    model.ir_version = IR_VERSION
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    return model


def sample_input(seed: int = 11) -> np.ndarray:
    """A deterministic input in [-1, 1) of shape [1, 16]."""
    rng = np.random.default_rng(seed)
    return rng.uniform(-1.0, 1.0, (1, INPUT_WIDTH)).astype(np.float32)


def write_sample_model(path: Path, seed: int = 7) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(build_sample_model(seed), str(path))
    return path
