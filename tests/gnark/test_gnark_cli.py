"""`sheaf-gnark version` and `selftest` as the foundation CI runs them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("SHEAF_GNARK_BIN", ROOT / "build" / "bin" / "sheaf-gnark"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=120, check=False)


def test_version_reports_pinned_gnark() -> None:
    p = run("version")
    assert p.returncode == 0, p.stderr
    # gnark may log to stdout during init; the JSON document is the last line
    info = json.loads(p.stdout.strip().splitlines()[-1])
    assert info["gnark"] == "v0.16.1" and info["gnark_crypto"] == "v0.21.0"
    assert info["protocol"] == 2 and info["sheaf_gnark"]


def test_selftest_passes_and_checks_tampering() -> None:
    p = run("selftest")
    assert p.returncode == 0, p.stderr
    assert "tampered public input: rejected" in p.stderr
    assert p.stdout.strip().splitlines()[-1] == "selftest: ok"


def test_unknown_command_fails() -> None:
    p = run("frobnicate")
    assert p.returncode == 2 and "unknown command" in p.stderr
