from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SOL_SRC = Path(__file__).resolve().parent / "sol"


@pytest.fixture
def forge_project(tmp_path: Path) -> Path:
    """A throwaway forge project (a contract with an import, and a test) built with our solc shim."""
    project = tmp_path / "proj"
    shutil.copytree(SOL_SRC, project)
    (project / "foundry.toml").write_text(
        "[profile.default]\n"
        'src = "src"\ntest = "test"\nout = "out"\n'
        f'solc = "{REPO_ROOT / "tools" / "solc"}"\n'
        'offline = true\noptimizer = true\noptimizer_runs = 200\nevm_version = "cancun"\n'
    )
    return project


@pytest.fixture(scope="session")
def forge_bin() -> str:
    path = REPO_ROOT / "node_modules" / ".bin" / "forge"
    probe = subprocess.run([str(path), "--version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(f"forge unusable: {probe.stderr.strip()} (run `make setup`)")
    return str(path)


@pytest.fixture(scope="session")
def solc_shim() -> str:
    return str(REPO_ROOT / "tools" / "solc")


@pytest.fixture(scope="session")
def gnark_bin() -> str:
    path = Path(os.environ.get("SHEAF_GNARK_BIN", REPO_ROOT / "build" / "bin" / "sheaf-gnark"))
    if not path.exists():
        pytest.fail(f"{path} missing: run `make setup` (builds the Go module in gnark/)")
    return str(path)
