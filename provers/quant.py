"""Fixed-point quantization of dense slices for the gnark circuits (pure functions).

Scale S = 2^scale_bits. Reals are quantized with round-half-to-even (numpy rint):
    x_q = rint(x * S), W_q = rint(W * S), b_q = rint(b * S^2)
Each layer (integers, exactly what gnark/slice proves):
    acc = W_q x_q + b_q                       (scale S^2)
    q   = floor((acc + S/2) / S)              (round half up, back to scale S)
    y_q = max(q, 0) with Relu, else q;  |q| < 2^q_bits is range-checked in circuit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from provers.errors import ProverError
from provers.slicer import DenseLayer

SPEC_VERSION = 1


@dataclass(frozen=True)
class QuantLayer:
    weight: tuple[tuple[int, ...], ...]  # (out, in), scale S
    bias: tuple[int, ...]  # (out,), scale S^2
    relu: bool

    @property
    def width_in(self) -> int:
        return len(self.weight[0])

    @property
    def width_out(self) -> int:
        return len(self.weight)


@dataclass(frozen=True)
class QuantSlice:
    name: str
    scale_bits: int
    q_bits: int
    layers: tuple[QuantLayer, ...]


def quantize_tensor(x: np.ndarray, scale_bits: int) -> list[int]:
    return [int(v) for v in np.rint(np.asarray(x, dtype=np.float64).reshape(-1) * (1 << scale_bits))]


def dequantize(values: Sequence[int], scale_bits: int) -> np.ndarray:
    return np.asarray(values, dtype=np.float64) / (1 << scale_bits)


def quantize_layers(name: str, layers: Sequence[DenseLayer], scale_bits: int, q_bits: int) -> QuantSlice:
    s = float(1 << scale_bits)
    out = []
    for layer in layers:
        w = tuple(tuple(int(v) for v in row) for row in np.rint(layer.weight * s))
        b = tuple(int(v) for v in np.rint(layer.bias * s * s))
        out.append(QuantLayer(w, b, layer.relu))
    return QuantSlice(name, scale_bits, q_bits, tuple(out))


def round_shift(acc: int, k: int) -> int:
    """floor((acc + 2^(k-1)) / 2^k); Python's >> floors for negatives too."""
    return (acc + (1 << (k - 1))) >> k


def evaluate(qs: QuantSlice, x: Sequence[int]) -> list[int]:
    """The integer semantics of the circuit (raises PROVER_RANGE where the circuit would fail)."""
    cur = list(x)
    limit = 1 << qs.q_bits
    for li, layer in enumerate(qs.layers):
        if len(cur) != layer.width_in:
            raise ProverError(
                "PROVER_UNSUPPORTED_SHAPE",
                f"slice {qs.name!r}: layer {li} takes {layer.width_in} values, got {len(cur)}",
            )
        nxt = []
        for j, row in enumerate(layer.weight):
            acc = layer.bias[j] + sum(w * v for w, v in zip(row, cur, strict=True))
            q = round_shift(acc, qs.scale_bits)
            if abs(q) >= limit:
                raise ProverError(
                    "PROVER_RANGE",
                    f"slice {qs.name!r}: layer {li} output {j} = {q} exceeds 2^q_bits "
                    f"(fixed_point.q_bits = {qs.q_bits})",
                )
            nxt.append(max(q, 0) if layer.relu else q)
        cur = nxt
    return cur


def error_bound(
    layers: Sequence[DenseLayer], qs: QuantSlice, x: Sequence[int], in_err: np.ndarray
) -> np.ndarray:
    """Per-output bound on |y_q / S - f(x_real)| given |x_q / S - x_real| <= in_err.

    Per layer: |err_out_j| <= sum_i |W_ji| err_i + (1/2) sum_i |x_q_i| / S / S + 1/(2 S^2) + 1/(2 S)
    (weight rounding, bias rounding, rescale rounding); Relu does not expand errors.
    """
    s = float(1 << qs.scale_bits)
    err = np.broadcast_to(np.asarray(in_err, dtype=np.float64), (len(x),)).copy()
    cur = list(x)
    for layer, ql in zip(layers, qs.layers, strict=True):
        xhat = np.abs(np.asarray(cur, dtype=np.float64)) / s
        err = np.abs(layer.weight) @ err + 0.5 * xhat.sum() / s + 0.5 / (s * s) + 0.5 / s
        one = QuantSlice(qs.name, qs.scale_bits, qs.q_bits, (ql,))
        cur = evaluate(one, cur)
    return err


def spec_json(
    qs: QuantSlice,
    x: Sequence[int],
    claimed_output: Sequence[int] | None = None,
    commitment: str = "poseidon-ezkl",
) -> dict[str, Any]:
    """The JSON spec gnark/slice reads (gnark/slice/spec.go)."""
    spec: dict[str, Any] = {
        "version": SPEC_VERSION,
        "name": qs.name,
        "scale_bits": qs.scale_bits,
        "q_bits": qs.q_bits,
        "layers": [
            {
                "in": ql.width_in,
                "out": ql.width_out,
                "weight": [list(r) for r in ql.weight],
                "bias": list(ql.bias),
                "relu": ql.relu,
            }
            for ql in qs.layers
        ],
        "input": list(x),
        "commitment": commitment,
    }
    if claimed_output is not None:
        spec["claimed_output"] = list(claimed_output)
    return spec
