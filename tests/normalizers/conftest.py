"""Shared fixtures: real prover outputs from tests/fixtures/, one long-lived sidecar per session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from normalizers.api import Normalizer
from normalizers.sidecar import find_binary

# test dirs have no __init__.py; make the uniquely named helper module importable
sys.path.insert(0, str(Path(__file__).resolve().parent))
from nz_helpers import EZKL


@pytest.fixture(scope="session")
def gnark_bin() -> Path:
    try:
        return find_binary()
    except Exception as e:  # fail loudly: `make test` builds the binary first
        pytest.fail(f"sheaf-gnark is required for this test and was not found: {e}", pytrace=False)


@pytest.fixture(scope="session")
def py_normalizer() -> Iterator[Normalizer]:
    """In-process Groth16 backend (groth16py); no sidecar needed for snarkjs/ezkl inputs."""
    n = Normalizer(srs=EZKL / "verifier-k1.srs", groth16_backend="groth16py")
    yield n
    n.close()


@pytest.fixture(scope="session")
def normalizer(gnark_bin: Path) -> Iterator[Normalizer]:
    """The production configuration: sidecar-backed Groth16/PLONK, ezkl in-process."""
    n = Normalizer(srs=EZKL / "verifier-k1.srs", sidecar_bin=str(gnark_bin))
    yield n
    n.close()
