"""Limits are enforced on raw bytes before parsing, per field, and are configurable."""

from __future__ import annotations

import dataclasses

import pytest
from nz_helpers import ezkl_case, snarkjs_case

from normalizers.api import Normalizer, parse_vk
from normalizers.errors import Code, NormalizeError
from normalizers.limits import Limits


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEAF_LIMIT_MAX_PROOF_BYTES", "123")
    monkeypatch.setenv("SHEAF_LIMIT_MAX_JSON_DEPTH", "3")
    lim = Limits.from_env()
    assert (lim.max_proof_bytes, lim.max_json_depth, lim.max_vk_bytes) == (123, 3, Limits().max_vk_bytes)


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        (Limits(max_proof_bytes=100), "proof"),
        (Limits(max_vk_bytes=100), "vk"),
        (Limits(max_public_bytes=5), "public"),
        (Limits(max_public_inputs=4), "vk.nPublic"),  # the vk is read first
        (Limits(max_json_depth=1), "vk"),
    ],
)
def test_each_limit(limits: Limits, field: str) -> None:
    with Normalizer(limits=limits, groth16_backend="groth16py") as n, pytest.raises(NormalizeError) as ei:
        n.normalize(snarkjs_case("multi5", "groth16"))
    assert ei.value.code == Code.TOO_LARGE and ei.value.field.startswith(field), ei.value


def test_settings_and_ezkl_limits() -> None:
    inp = ezkl_case("gemm_relu")
    with Normalizer(limits=Limits(max_settings_bytes=10)) as n, pytest.raises(NormalizeError) as ei:
        n.normalize(inp)
    assert (ei.value.code, ei.value.field) == (Code.TOO_LARGE, "settings")
    with Normalizer(limits=Limits(max_json_string_len=100)) as n, pytest.raises(NormalizeError) as ei:
        n.normalize(inp)  # hex_proof is ~6 KB
    assert (ei.value.code, ei.value.field) == (Code.TOO_LARGE, "proof")
    with Normalizer(limits=Limits(max_json_number_len=10)) as n, pytest.raises(NormalizeError) as ei:
        n.normalize(inp)  # settings "timestamp" has 13 digits; digits inside strings do not count
    assert (ei.value.code, ei.value.field) == (Code.TOO_LARGE, "settings")
    with Normalizer(limits=Limits(max_vk_bytes=1000)) as n, pytest.raises(NormalizeError) as ei:
        parse_vk("halo2", "ezkl", inp.vk, inp.settings, normalizer=n)
    assert (ei.value.code, ei.value.field) == (Code.TOO_LARGE, "vk")


def test_non_bytes_input_is_malformed() -> None:
    inp = snarkjs_case("mul1", "groth16")
    with Normalizer(groth16_backend="groth16py") as n, pytest.raises(NormalizeError) as ei:
        n.normalize(dataclasses.replace(inp, proof="{}"))  # type: ignore[arg-type]
    assert (ei.value.code, ei.value.field) == (Code.MALFORMED, "proof")


def test_settings_rejected_outside_halo2() -> None:
    inp = snarkjs_case("mul1", "groth16")
    with Normalizer(groth16_backend="groth16py") as n, pytest.raises(NormalizeError) as ei:
        n.normalize(dataclasses.replace(inp, settings=b"{}"))
    assert (ei.value.code, ei.value.field) == (Code.MALFORMED, "settings")


def test_empty_optional_fields_mean_absent() -> None:
    # gRPC sends b"" for an unset bytes field
    g16 = snarkjs_case("mul1", "groth16")
    ez = ezkl_case("gemm_relu")
    from nz_helpers import EZKL

    with Normalizer(groth16_backend="groth16py", srs=EZKL / "verifier-k1.srs") as n:
        assert n.normalize(dataclasses.replace(g16, settings=b"")).statement_hash
        assert n.normalize(dataclasses.replace(ez, public=b"")).statement_hash
        assert parse_vk("groth16", "snarkjs", g16.vk, b"", normalizer=n)[1] == n.normalize(g16).vk_hash
