"""Shared fixtures: the sample model on disk and small configs built around it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from provers.model import write_sample_model


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sample_model(tmp_path_factory.mktemp("model") / "sample_mlp.onnx")
