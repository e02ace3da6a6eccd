"""CLI exit codes and output, run as a real subprocess (`python -m normalizers.cli`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from nz_helpers import EZKL, GNARK, SNARKJS

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "normalizers.cli", *map(str, args)], capture_output=True, text=True, cwd=ROOT,
        timeout=120,
    )  # fmt: skip


def test_snarkjs_groth16_ok_json() -> None:
    d = SNARKJS / "mul1_groth16"
    r = cli("--scheme", "groth16", "--format", "snarkjs", "--proof", d / "proof0.json", "--vk",
            d / "verification_key.json", "--public", d / "public0.json", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    env = json.loads(r.stdout)
    assert env["scheme"] == "groth16" and env["public_inputs"] == ["0x" + (33).to_bytes(32, "big").hex()]
    assert len(bytes.fromhex(env["statement_hash"][2:])) == 32 and env["vk_hash"].startswith("0x")


def test_snarkjs_groth16_rejected_exit_2(tmp_path: Path) -> None:
    d = SNARKJS / "mul1_groth16"
    (tmp_path / "pub.json").write_text('["34"]')
    r = cli("--scheme", "groth16", "--format", "snarkjs", "--proof", d / "proof0.json", "--vk",
            d / "verification_key.json", "--public", tmp_path / "pub.json")  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.startswith("error: VERIFICATION_FAILED: proof: "), r.stderr
    (tmp_path / "pub.json").write_text("[34]")
    r = cli("--scheme", "groth16", "--format", "snarkjs", "--proof", d / "proof0.json", "--vk",
            d / "verification_key.json", "--public", tmp_path / "pub.json")  # fmt: skip
    assert (r.returncode, r.stderr.strip()) == (
        2,
        "error: MALFORMED: public[0]: expected a decimal string, got int",
    )


def test_missing_file_exit_2() -> None:
    r = cli("--scheme", "groth16", "--format", "snarkjs", "--proof", "/nonexistent", "--vk", "/nonexistent")
    assert r.returncode == 2 and r.stderr.startswith("error: MALFORMED: proof: cannot read"), r.stderr


def test_usage_error() -> None:
    r = cli("--scheme", "groth17", "--format", "snarkjs", "--proof", "x", "--vk", "y")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_halo2_human_output() -> None:
    d = EZKL / "gemm_relu"
    r = cli("--scheme", "halo2", "--format", "ezkl", "--proof", d / "proof0.json", "--vk", d / "vk.key",
            "--settings", d / "settings.json", "--srs", EZKL / "verifier-k1.srs")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "statement_hash: 0x" in r.stdout and "public_inputs:  12" in r.stdout


@pytest.mark.usefixtures("gnark_bin")
def test_gnark_groth16() -> None:
    d = GNARK / "groth16_n2"
    r = cli("--scheme", "groth16", "--format", "gnark", "--proof", d / "proof.bin", "--vk", d / "vk.bin",
            "--public", d / "public.bin", "--json")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["public_inputs"] == json.loads((d / "public.json").read_text())
    r = cli("--scheme", "groth16", "--format", "gnark", "--proof", d / "proof.bin", "--vk", d / "vk.bin",
            "--public", GNARK / "groth16_n1" / "public.bin")  # fmt: skip
    assert r.returncode == 2 and r.stderr.startswith("error: PUBLIC_INPUT_COUNT: public"), r.stderr


def test_register_adds_subcommand() -> None:
    import argparse

    from normalizers.cli import register

    p = argparse.ArgumentParser(prog="aggregator")
    register(p.add_subparsers(dest="cmd"))
    a = p.parse_args(["normalize", "--scheme", "plonk", "--format", "gnark", "--proof", "p", "--vk", "v"])
    assert a.cmd == "normalize" and a.scheme == "plonk" and callable(a.func) and a.fn is a.func
