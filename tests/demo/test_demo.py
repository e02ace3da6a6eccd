"""`make demo` runs as a user would start it, to the end, and leaves no node behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "provers.demo", "--workdir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "SheafRegistry" in proc.stdout and " full" in proc.stdout
    assert "demo finished" in proc.stdout
    manifest = tmp_path / "deployments" / "31337.json"
    assert manifest.exists()
    # The node was stopped: nothing listens on the RPC port the demo printed any more.
    rpc = next(line.split()[3] for line in proc.stdout.splitlines() if line.startswith("== anvil on"))
    probe = subprocess.run(
        [sys.executable, "-c", f"import urllib.request; urllib.request.urlopen('{rpc}', timeout=1)"],
        capture_output=True,
    )
    assert probe.returncode != 0
