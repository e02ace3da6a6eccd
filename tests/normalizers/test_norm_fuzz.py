"""Property tests: the parsers never crash (only NormalizeError) and never hang on arbitrary input."""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nz_helpers import ezkl_case, snarkjs_case

from normalizers import groth16, halo2
from normalizers.base import Context
from normalizers.errors import NormalizeError
from normalizers.jsonstrict import loads
from normalizers.limits import Limits

CTX = Context(limits=Limits())
SNARK = snarkjs_case("multi5", "groth16")
EZ = ezkl_case("gemm_relu")
EZ_VK = halo2.parse_ezkl_vk(EZ.vk, EZ.settings, CTX)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda c: st.lists(c, max_size=6) | st.dictionaries(st.text(max_size=12), c, max_size=6),
    max_leaves=40,
)

FAST = settings(max_examples=120, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def _only_normalize_error(f: Any, *a: Any) -> None:
    t = time.monotonic()
    try:
        f(*a)
    except NormalizeError:
        pass
    assert time.monotonic() - t < 2.0


@FAST
@given(st.binary(max_size=4096))
def test_json_loader_bytes(b: bytes) -> None:
    _only_normalize_error(loads, "x", b, CTX.limits)


@FAST
@given(st.binary(max_size=2048))
def test_snarkjs_parsers_bytes(b: bytes) -> None:
    _only_normalize_error(groth16.parse_snarkjs_proof, b, CTX)
    _only_normalize_error(groth16.parse_snarkjs_vk, b, CTX)
    _only_normalize_error(groth16.snarkjs_public, b, "public", CTX)


@FAST
@given(json_values)
def test_snarkjs_parsers_json(v: Any) -> None:
    b = json.dumps(v).encode()
    _only_normalize_error(groth16.parse_snarkjs_proof, b, CTX)
    _only_normalize_error(groth16.parse_snarkjs_vk, b, CTX)
    _only_normalize_error(groth16.snarkjs_public, b, "public", CTX)


@FAST
@given(st.sampled_from(["pi_a", "pi_b", "pi_c", "protocol", "curve"]), json_values)
def test_snarkjs_proof_field_confusion(key: str, v: Any) -> None:
    p = json.loads(SNARK.proof)
    p[key] = v
    _only_normalize_error(groth16.parse_snarkjs_proof, json.dumps(p).encode(), CTX)


@FAST
@given(st.sampled_from(["vk_alpha_1", "vk_beta_2", "IC", "nPublic", "vk_alphabeta_12"]), json_values)
def test_snarkjs_vk_field_confusion(key: str, v: Any) -> None:
    p = json.loads(SNARK.vk)
    p[key] = v
    _only_normalize_error(groth16.parse_snarkjs_vk, json.dumps(p).encode(), CTX)


@FAST
@given(st.binary(max_size=2048) | json_values.map(lambda v: json.dumps(v).encode()))
def test_ezkl_parsers(b: bytes) -> None:
    _only_normalize_error(halo2.parse_ezkl_proof, b, EZ_VK, CTX)
    _only_normalize_error(halo2.parse_settings, b, CTX)


@FAST
@given(st.sampled_from(["instances", "proof", "hex_proof", "version"]), json_values)
def test_ezkl_proof_field_confusion(key: str, v: Any) -> None:
    p = json.loads(EZ.proof)
    p[key] = v
    _only_normalize_error(halo2.parse_ezkl_proof, json.dumps(p).encode(), EZ_VK, CTX)


@FAST
@given(st.sampled_from(["run_args", "model_instance_shapes", "version", "num_rows"]), json_values)
def test_ezkl_settings_field_confusion(key: str, v: Any) -> None:
    s = json.loads(EZ.settings or b"")
    s[key] = v
    _only_normalize_error(halo2.parse_ezkl_vk, EZ.vk, json.dumps(s).encode(), CTX)


def test_nesting_bomb_is_cheap() -> None:
    t = time.monotonic()
    for b in (b"[" * 500_000, b'{"a":' * 200_000, b"[" * 50 + b'"' + b"x" * 200_000):
        try:
            loads("x", b, CTX.limits)
        except NormalizeError as e:
            assert e.code in ("TOO_LARGE", "MALFORMED")
        else:
            raise AssertionError("accepted")
    assert time.monotonic() - t < 2.0
