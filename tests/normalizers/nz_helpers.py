"""Helpers shared by the normalizer tests (unique module name: tests dirs have no __init__.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from normalizers.api import ProofInput

FIX = Path(__file__).resolve().parents[1] / "fixtures"
SNARKJS = FIX / "snarkjs"
EZKL = FIX / "ezkl"
GNARK = FIX / "gnark"


def snarkjs_case(circuit: str, proto: str, i: int = 0) -> ProofInput:
    d = SNARKJS / f"{circuit}_{proto}"
    return ProofInput(
        proto,
        "snarkjs",
        (d / f"proof{i}.json").read_bytes(),
        (d / "verification_key.json").read_bytes(),
        public=(d / f"public{i}.json").read_bytes(),
    )


def ezkl_case(name: str, i: int = 0) -> ProofInput:
    d = EZKL / name
    return ProofInput(
        "halo2",
        "ezkl",
        (d / f"proof{i}.json").read_bytes(),
        (d / "vk.key").read_bytes(),
        settings=(d / "settings.json").read_bytes(),
    )


def jload(b: bytes) -> Any:
    return json.loads(b)


def jdump(v: Any) -> bytes:
    return json.dumps(v).encode()
