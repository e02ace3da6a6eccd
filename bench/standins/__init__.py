"""Protocol stand-ins for sheaf-gnark's prover processes, for tests and benchmarks.

`bench.standins.jobs` stands in for `sheaf-gnark aggregate serve` (the flat outer circuit: the job
queue's tests and bench.scaleout), `bench.standins.tree` for `sheaf-gnark tree serve --level L` (the
tree prover's tests). They live under bench/ because bench/ and tests/ both use them and bench/ may
import the aggregator (tests/test_layering.py); no production package imports them.

    binary = write_binary(tmp / "sheaf-gnark", bench.standins.tree)   # a `worker_bin`
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any


def write_binary(path: Path, module: ModuleType) -> str:
    """An executable that runs this stand-in module with this interpreter (a `worker_bin`)."""
    path.write_text(f'#!/bin/sh\nexec {sys.executable} -m {module.__name__} "$@"\n')
    path.chmod(0o755)
    return str(path)


def write_key_entry(cache: Path, circuit_hash: str, meta: dict[str, Any]) -> None:
    """A fake key cache entry `<cache>/<hash[:32]>/` (meta.json, pk.dump, vk.bin), laid out as
    sheaf-gnark's: what the stand-ins and the aggregator's pinned-keys checks look for."""
    d = cache / circuit_hash[:32]
    d.mkdir(parents=True, exist_ok=True)
    (d / "meta.json").write_text(json.dumps(meta))
    (d / "pk.dump").write_bytes(b"stand-in")
    (d / "vk.bin").write_bytes(b"stand-in")
