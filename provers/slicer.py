"""Slice an ONNX model at node boundaries, driven by a TOML config; report per-slice support.

A slice is named by its boundary tensors (`inputs`, `outputs`), cut with onnx.utils.Extractor.
Slices run in order; each slice's inputs must be model inputs or outputs of earlier slices, and
the last slices must produce every model output. Slices that are not proven run on onnxruntime.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx.utils
import onnxruntime as ort

from provers.errors import ProverError

BACKENDS = ("ezkl", "gnark-groth16", "gnark-plonk", "none")
PLONK_TARGETS = ("solidity", "recursion")
VISIBILITIES = ("hashed", "public", "private")
# gnark slice commitments: ezkl's hashed-visibility Poseidon (chains with ezkl slices) or MiMC
COMMITMENTS = ("poseidon-ezkl", "mimc-bn254")

# Ops the ezkl backend is allowed to take: a conservative allow-list of ops ezkl 23 (tract
# front end) supports and that we exercise or that are standard in its examples. Anything else
# is refused up front rather than failing deep inside ezkl.
EZKL_OPS = frozenset(
    {
        "Gemm",
        "MatMul",
        "Add",
        "Sub",
        "Mul",
        "Relu",
        "LeakyRelu",
        "Sigmoid",
        "Tanh",
        "Clip",
        "Conv",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "BatchNormalization",
        "Reshape",
        "Flatten",
        "Transpose",
        "Concat",
        "Identity",
        "Softmax",
        "Squeeze",
        "Unsqueeze",
    }
)
# The gnark slice circuit (gnark/slice) proves chains of dense layers only.
GNARK_OPS = frozenset({"Gemm", "MatMul", "Add", "Relu"})


@dataclass(frozen=True)
class SliceConfig:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    backend: str
    prove: bool
    plonk_target: str = "solidity"

    @property
    def proven(self) -> bool:
        return self.prove and self.backend != "none"


@dataclass(frozen=True)
class EzklConfig:
    input_visibility: str = "hashed"
    output_visibility: str = "hashed"
    param_visibility: str = "fixed"
    scale: int = 8  # fixed input/param scale; equal to fixed_point.scale_bits so commitments chain
    logrows: int = 17  # upper bound; ezkl picks the circuit's own logrows below it
    # 1: ezkl rebases every product back to the input scale, so a slice's output is at `scale` like
    # its input and the next slice (gnark or ezkl) gets the same integers: commitments chain
    rebase_multiplier: int = 1


@dataclass(frozen=True)
class ProverConfig:
    slices: tuple[SliceConfig, ...]
    model_path: Path | None = None
    input_seed: int = 11
    input_values: tuple[float, ...] | None = None
    scale_bits: int = 8
    q_bits: int = 32
    commitment: str = "poseidon-ezkl"
    ezkl: EzklConfig = field(default_factory=EzklConfig)


def _bad(key: str, msg: str) -> ProverError:
    return ProverError("PROVER_CONFIG_INVALID", f"{key}: {msg}")


def _get(table: Mapping[str, Any], key: str, typ: type, where: str, default: Any = None) -> Any:
    if key not in table:
        if default is None:
            raise _bad(f"{where}.{key}", "missing")
        return default
    v = table[key]
    if typ is int and isinstance(v, bool):
        raise _bad(f"{where}.{key}", f"expected int, got {v!r}")
    if not isinstance(v, typ):
        raise _bad(f"{where}.{key}", f"expected {typ.__name__}, got {type(v).__name__}")
    return v


def _names(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    v = _get(table, key, list, where)
    if not v or not all(isinstance(s, str) and s for s in v):
        raise _bad(f"{where}.{key}", "must be a non-empty list of tensor names")
    return tuple(v)


def parse_config(data: Mapping[str, Any], base_dir: Path | None = None) -> ProverConfig:
    """Validate a parsed slices.toml document (pure)."""
    known = {"model", "input", "fixed_point", "ezkl", "slice"}
    for k in data:
        if k not in known:
            raise _bad(k, f"unknown top-level key (known: {', '.join(sorted(known))})")
    model = data.get("model", {})
    model_path = None
    if "path" in model:
        p = Path(_get(model, "path", str, "model"))
        model_path = p if p.is_absolute() or base_dir is None else base_dir / p
    inp = data.get("input", {})
    seed = _get(inp, "seed", int, "input", 11)
    values = None
    if "values" in inp:
        raw = _get(inp, "values", list, "input")
        if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in raw):
            raise _bad("input.values", "must be a flat list of numbers")
        values = tuple(float(x) for x in raw)
    fp = data.get("fixed_point", {})
    scale_bits = _get(fp, "scale_bits", int, "fixed_point", 8)
    q_bits = _get(fp, "q_bits", int, "fixed_point", 32)
    if not 1 <= scale_bits <= 24:
        raise _bad("fixed_point.scale_bits", f"{scale_bits} not in [1, 24]")
    if not 2 <= q_bits <= 64:
        raise _bad("fixed_point.q_bits", f"{q_bits} not in [2, 64]")
    commitment = _get(fp, "commitment", str, "fixed_point", "poseidon-ezkl")
    if commitment not in COMMITMENTS:
        raise _bad("fixed_point.commitment", f"{commitment!r} not one of {', '.join(COMMITMENTS)}")
    ez = data.get("ezkl", {})
    ezkl = EzklConfig(
        input_visibility=_get(ez, "input_visibility", str, "ezkl", "hashed"),
        output_visibility=_get(ez, "output_visibility", str, "ezkl", "hashed"),
        param_visibility=_get(ez, "param_visibility", str, "ezkl", "fixed"),
        scale=_get(ez, "scale", int, "ezkl", 8),
        logrows=_get(ez, "logrows", int, "ezkl", 17),
        rebase_multiplier=_get(ez, "scale_rebase_multiplier", int, "ezkl", 1),
    )
    for key in ("input_visibility", "output_visibility"):
        if getattr(ezkl, key) not in VISIBILITIES:
            raise _bad(f"ezkl.{key}", f"{getattr(ezkl, key)!r} not one of {', '.join(VISIBILITIES)}")
    if ezkl.param_visibility not in ("fixed", "private", "public", "hashed"):
        raise _bad("ezkl.param_visibility", f"{ezkl.param_visibility!r} not fixed/private/public/hashed")
    raw_slices = data.get("slice")
    if not isinstance(raw_slices, list) or not raw_slices:
        raise _bad("slice", "need at least one [[slice]] table")
    slices: list[SliceConfig] = []
    seen: set[str] = set()
    for i, s in enumerate(raw_slices):
        where = f"slice[{i}]"
        if not isinstance(s, dict):
            raise _bad(where, "must be a table")
        name = _get(s, "name", str, where)
        if name in seen:
            raise _bad(f"{where}.name", f"duplicate slice name {name!r}")
        seen.add(name)
        backend = _get(s, "backend", str, where, "none")
        if backend not in BACKENDS:
            raise _bad(f"{where}.backend", f"{backend!r} not one of {', '.join(BACKENDS)}")
        target = _get(s, "plonk_target", str, where, "solidity")
        if target not in PLONK_TARGETS:
            raise _bad(f"{where}.plonk_target", f"{target!r} not one of {', '.join(PLONK_TARGETS)}")
        prove = _get(s, "prove", bool, where, backend != "none")
        slices.append(
            SliceConfig(
                name, _names(s, "inputs", where), _names(s, "outputs", where), backend, bool(prove), target
            )
        )
    return ProverConfig(tuple(slices), model_path, seed, values, scale_bits, q_bits, commitment, ezkl)


def load_config(path: Path) -> ProverConfig:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ProverError("PROVER_CONFIG_INVALID", f"{path}: {e}") from e
    return parse_config(data, path.parent)


def load_model(path: Path) -> onnx.ModelProto:
    try:
        model = onnx.load(str(path))
        model = onnx.shape_inference.infer_shapes(model)
        onnx.checker.check_model(model)
    except Exception as e:  # onnx raises a variety of types
        raise ProverError("PROVER_MODEL_INVALID", f"{path}: {e}") from e
    return model


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int | str, ...]


@dataclass(frozen=True)
class SliceReport:
    name: str
    backend: str
    proven: bool
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    op_types: tuple[str, ...]
    nodes: tuple[str, ...]
    supported: bool
    problem: ProverError | None


@dataclass(frozen=True)
class Slice:
    config: SliceConfig
    model: onnx.ModelProto
    report: SliceReport


def _shape(vi: onnx.ValueInfoProto) -> tuple[int | str, ...]:
    dims = vi.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims)


def _initializers(m: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}


def check_gnark(m: onnx.ModelProto, slice_name: str) -> None:
    """Raise unless the slice is a chain of dense layers: (Gemm | MatMul [Add]) [Relu], ..."""
    for node in m.graph.node:
        if node.op_type not in GNARK_OPS:
            raise ProverError(
                "PROVER_UNSUPPORTED_OP",
                f"slice {slice_name!r}: op {node.op_type} (node {node.name or node.output[0]!r}) is not "
                f"supported by the gnark backends (supported: {', '.join(sorted(GNARK_OPS))})",
            )
    dense_layers(m, slice_name)


def check_backend(m: onnx.ModelProto, backend: str, slice_name: str) -> None:
    if backend in ("gnark-groth16", "gnark-plonk"):
        check_gnark(m, slice_name)
    elif backend == "ezkl":
        for node in m.graph.node:
            if node.op_type not in EZKL_OPS:
                raise ProverError(
                    "PROVER_UNSUPPORTED_OP",
                    f"slice {slice_name!r}: op {node.op_type} (node {node.name or node.output[0]!r}) is "
                    "not on the ezkl backend's allow-list",
                )


@dataclass(frozen=True)
class DenseLayer:
    weight: np.ndarray  # float, shape (out, in)
    bias: np.ndarray  # float, shape (out,)
    relu: bool


def dense_layers(m: onnx.ModelProto, slice_name: str) -> list[DenseLayer]:
    """Read a dense-layer chain out of a slice (raises PROVER_UNSUPPORTED_SHAPE otherwise)."""

    def bad(node: onnx.NodeProto, msg: str) -> ProverError:
        return ProverError(
            "PROVER_UNSUPPORTED_SHAPE",
            f"slice {slice_name!r}: node {node.name or node.output[0]!r} ({node.op_type}): {msg}",
        )

    inits = _initializers(m)
    graph_inputs = [i.name for i in m.graph.input if i.name not in inits]
    if len(graph_inputs) != 1 or len(m.graph.output) != 1:
        raise ProverError(
            "PROVER_UNSUPPORTED_SHAPE",
            f"slice {slice_name!r}: gnark slices take exactly one input and one output tensor",
        )
    cur = graph_inputs[0]
    layers: list[DenseLayer] = []
    nodes = list(m.graph.node)
    i = 0
    while i < len(nodes):
        node = nodes[i]
        if node.input[0] != cur:
            raise bad(node, f"does not consume the running tensor {cur!r} (only linear chains)")
        if node.op_type == "Gemm":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("transA", 0) != 0 or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
                raise bad(node, "only alpha=1, beta=1, transA=0 are supported")
            if node.input[1] not in inits:
                raise bad(node, "weight must be a constant initializer")
            w = inits[node.input[1]].astype(np.float64)
            w = w if attrs.get("transB", 0) else w.T
            b = np.zeros(w.shape[0])
            if len(node.input) > 2 and node.input[2]:
                if node.input[2] not in inits:
                    raise bad(node, "bias must be a constant initializer")
                b = np.broadcast_to(inits[node.input[2]].astype(np.float64).reshape(-1), (w.shape[0],)).copy()
            cur = node.output[0]
            i += 1
        elif node.op_type == "MatMul":
            if node.input[1] not in inits:
                raise bad(node, "weight must be a constant initializer")
            w = inits[node.input[1]].astype(np.float64).T
            b = np.zeros(w.shape[0])
            cur = node.output[0]
            i += 1
            if i < len(nodes) and nodes[i].op_type == "Add":
                add = nodes[i]
                other = [t for t in add.input if t != cur]
                if cur not in add.input or len(other) != 1 or other[0] not in inits:
                    raise bad(add, "Add after MatMul must add a constant bias to the MatMul output")
                b = np.broadcast_to(inits[other[0]].astype(np.float64).reshape(-1), (w.shape[0],)).copy()
                cur = add.output[0]
                i += 1
        else:
            raise bad(node, "expected Gemm or MatMul (Add only as a MatMul bias, Relu only after a layer)")
        if w.ndim != 2:
            raise bad(node, f"weight must be 2-D, got shape {w.shape}")
        relu = False
        if i < len(nodes) and nodes[i].op_type == "Relu":
            if nodes[i].input[0] != cur:
                raise bad(nodes[i], f"Relu must follow the layer output {cur!r}")
            relu = True
            cur = nodes[i].output[0]
            i += 1
        if layers and layers[-1].weight.shape[0] != w.shape[1]:
            raise bad(node, f"input width {w.shape[1]} != previous output width {layers[-1].weight.shape[0]}")
        layers.append(DenseLayer(w, b, relu))
    if cur != m.graph.output[0].name:
        raise ProverError(
            "PROVER_UNSUPPORTED_SHAPE",
            f"slice {slice_name!r}: the chain ends at {cur!r}, not the slice output",
        )
    in_shape = _shape(m.graph.input[[x.name for x in m.graph.input].index(graph_inputs[0])])
    width = int(np.prod([d for d in in_shape if isinstance(d, int)])) if in_shape else 0
    if (
        any(not isinstance(d, int) for d in in_shape)
        or width != layers[0].weight.shape[1]
        or (len(in_shape) == 2 and in_shape[0] != 1)
    ):
        raise ProverError(
            "PROVER_UNSUPPORTED_SHAPE",
            f"slice {slice_name!r}: input {graph_inputs[0]!r} shape {in_shape} is not a "
            f"single vector of width {layers[0].weight.shape[1]} (batch 1)",
        )
    return layers


def extract(model: onnx.ModelProto, cfg: SliceConfig) -> onnx.ModelProto:
    try:
        sub = onnx.utils.Extractor(model).extract_model(list(cfg.inputs), list(cfg.outputs))
    except Exception as e:
        raise ProverError(
            "PROVER_MODEL_INVALID",
            f"slice {cfg.name!r}: cannot cut at inputs={list(cfg.inputs)} outputs={list(cfg.outputs)}: {e}",
        ) from e
    sub.ir_version = model.ir_version
    del sub.opset_import[:]
    sub.opset_import.extend(model.opset_import)
    sub.graph.name = f"{model.graph.name}__{cfg.name}"
    return sub


def slice_model(model: onnx.ModelProto, config: ProverConfig) -> list[Slice]:
    """Cut every configured slice and check it against its backend (support errors are recorded
    in the report, not raised: `require_supported` raises them)."""
    available = {i.name for i in model.graph.input} - {t.name for t in model.graph.initializer}
    all_tensors = available | {o for n in model.graph.node for o in n.output}
    out: list[Slice] = []
    for i, cfg in enumerate(config.slices):
        for t in cfg.inputs + cfg.outputs:
            if t not in all_tensors:
                raise ProverError(
                    "PROVER_CONFIG_INVALID",
                    f"slice[{i}] ({cfg.name}): tensor {t!r} does not exist in the model",
                )
        for t in cfg.inputs:
            if t not in available:
                raise ProverError(
                    "PROVER_CONFIG_INVALID",
                    f"slice[{i}] ({cfg.name}): input {t!r} is not a model input or an output "
                    "of an earlier slice",
                )
        sub = extract(model, cfg)
        problem: ProverError | None = None
        if cfg.proven:
            try:
                check_backend(sub, cfg.backend, cfg.name)
            except ProverError as e:
                problem = e
        report = SliceReport(
            name=cfg.name,
            backend=cfg.backend,
            proven=cfg.proven,
            inputs=tuple(
                TensorInfo(v.name, _shape(v))
                for v in sub.graph.input
                if v.name not in {t.name for t in sub.graph.initializer}
            ),
            outputs=tuple(TensorInfo(v.name, _shape(v)) for v in sub.graph.output),
            op_types=tuple(n.op_type for n in sub.graph.node),
            nodes=tuple(n.name or n.output[0] for n in sub.graph.node),
            supported=problem is None,
            problem=problem,
        )
        out.append(Slice(cfg, sub, report))
        available |= set(cfg.outputs)
    missing = [o.name for o in model.graph.output if o.name not in available]
    if missing:
        raise ProverError("PROVER_CONFIG_INVALID", f"slice: no slice produces model output(s) {missing}")
    return out


def require_supported(slices: Sequence[Slice]) -> None:
    for s in slices:
        if s.report.problem is not None:
            raise s.report.problem


def run_onnx(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    wanted = {i.name for i in sess.get_inputs()}
    res = sess.run(names, {k: v for k, v in feeds.items() if k in wanted})
    return {n: np.asarray(r) for n, r in zip(names, res, strict=True)}


def run_slices_float(slices: Sequence[Slice], feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run every slice on onnxruntime in order; returns all tensors (inputs and slice outputs)."""
    env = dict(feeds)
    for s in slices:
        env.update(run_onnx(s.model, env))
    return env


def format_report(slices: Sequence[Slice]) -> str:
    lines = []
    for s in slices:
        r = s.report
        ins = ", ".join(f"{t.name}{list(t.shape)}" for t in r.inputs)
        outs = ", ".join(f"{t.name}{list(t.shape)}" for t in r.outputs)
        status = "ok" if r.supported else f"UNSUPPORTED ({r.problem})"
        mode = r.backend if r.proven else f"{r.backend} (not proven: onnxruntime)"
        lines.append(
            f"{r.name}: {mode}\n  in:  {ins}\n  out: {outs}\n  ops: {' '.join(r.op_types)}\n"
            f"  backend support: {status}"
        )
    return "\n".join(lines)
