"""The solc-js shim serves forge and py-solc-x alike, and both get the same bytecode."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import solcx


def _forge(forge_bin: str, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([forge_bin, *args], cwd=project, capture_output=True, text=True, timeout=300)


def _standard_json_from_metadata(project: Path, artifact: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the exact compiler input from the artifact's metadata (what Sourcify does)."""
    metadata = artifact["metadata"]
    settings = dict(metadata["settings"])
    settings.pop("compilationTarget")
    settings["outputSelection"] = {"*": {"*": ["evm.bytecode.object", "evm.deployedBytecode.object"]}}
    sources = {path: {"content": (project / path).read_text()} for path in metadata["sources"]}
    return {"language": "Solidity", "sources": sources, "settings": settings}


def test_shim_reports_native_style_version(solc_shim: str) -> None:
    out = subprocess.run([solc_shim, "--version"], capture_output=True, text=True, check=True).stdout
    assert "Version: 0.8.30+commit.73712a01" in out
    assert solcx.wrapper.get_solc_version(solc_shim).base_version == "0.8.30"


def test_shim_rejects_what_it_does_not_implement(solc_shim: str) -> None:
    proc = subprocess.run([solc_shim, "--bin", "x.sol"], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "unsupported argument --bin" in proc.stderr


def test_shim_reports_missing_import_as_compile_error(solc_shim: str, tmp_path: Path) -> None:
    source = 'pragma solidity ^0.8.0; import "./nope.sol"; contract A {}'
    inp = {"language": "Solidity", "sources": {"a.sol": {"content": source}}, "settings": {}}
    proc = subprocess.run(
        [solc_shim, "--standard-json", "--base-path", str(tmp_path)],
        input=json.dumps(inp),
        capture_output=True,
        text=True,
        check=True,
    )
    errors = json.loads(proc.stdout)["errors"]
    assert any(e["severity"] == "error" and "nope.sol" in e["formattedMessage"] for e in errors)


def test_forge_builds_and_tests_with_the_shim(forge_bin: str, forge_project: Path) -> None:
    proc = _forge(forge_bin, forge_project, "test")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[PASS] test_doubles()" in proc.stdout
    assert "1 passed; 0 failed" in proc.stdout


def test_forge_test_fails_when_the_contract_is_wrong(forge_bin: str, forge_project: Path) -> None:
    math = forge_project / "src" / "lib" / "Math.sol"
    math.write_text(math.read_text().replace("x * 2", "x * 3"))
    proc = _forge(forge_bin, forge_project, "test")
    assert proc.returncode != 0
    assert "[FAIL" in proc.stdout


def test_py_solc_x_through_shim_matches_forge_bytecode(
    forge_bin: str, forge_project: Path, solc_shim: str
) -> None:
    proc = _forge(forge_bin, forge_project, "build")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    artifact = json.loads((forge_project / "out" / "Doubler.sol" / "Doubler.json").read_text())
    compiled = solcx.compile_standard(
        _standard_json_from_metadata(forge_project, artifact),
        solc_binary=solc_shim,
        base_path=str(forge_project),
        allow_paths=[str(forge_project)],
    )
    evm = compiled["contracts"]["src/Doubler.sol"]["Doubler"]["evm"]
    # Full equality, CBOR metadata hash included: same compiler, same input, same bytes.
    assert evm["bytecode"]["object"] == artifact["bytecode"]["object"].removeprefix("0x")
    assert evm["deployedBytecode"]["object"] == artifact["deployedBytecode"]["object"].removeprefix("0x")


@pytest.mark.parametrize("bad_input", ["not json", "{}"])
def test_shim_rejects_bad_standard_json(solc_shim: str, bad_input: str) -> None:
    proc = subprocess.run([solc_shim, "--standard-json"], input=bad_input, capture_output=True, text=True)
    if bad_input == "not json":
        assert proc.returncode != 0 and "not valid JSON" in proc.stderr
    else:  # valid JSON but not a compiler input: solc itself reports the error in its output
        assert json.loads(proc.stdout)["errors"][0]["severity"] == "error"
