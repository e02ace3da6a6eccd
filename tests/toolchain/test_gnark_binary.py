"""The Go module builds into one binary whose Groth16 round trip (and tamper rejection) runs."""

from __future__ import annotations

import subprocess


def test_version_names_gnark(gnark_bin: str) -> None:
    out = subprocess.run(
        [gnark_bin, "version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "gnark" in out and "v0.16." in out


def test_groth16_selftest_round_trip(gnark_bin: str) -> None:
    proc = subprocess.run([gnark_bin, "selftest"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_unknown_command_fails(gnark_bin: str) -> None:
    proc = subprocess.run([gnark_bin, "no-such-command"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
