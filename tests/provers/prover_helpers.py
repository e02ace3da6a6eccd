"""Helpers for tests/provers (imported via sys.path by conftest)."""

from __future__ import annotations

from pathlib import Path


def write_config(dir_: Path, slices: list[tuple[str, str, str, str]], extra: str = "") -> Path:
    """slices: (name, input tensor, output tensor, backend)."""
    body = [extra]
    for name, tin, tout, backend in slices:
        body.append(
            f'[[slice]]\nname = "{name}"\ninputs = ["{tin}"]\noutputs = ["{tout}"]\nbackend = "{backend}"\n'
        )
    path = dir_ / "slices.toml"
    path.write_text("\n".join(body))
    return path
