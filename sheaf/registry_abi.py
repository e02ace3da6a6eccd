"""SheafRegistry's ABI as the compiler wrote it, for every Python caller of the registry.

`sheaf/abi/SheafRegistry.json` is the compiled artifact's ABI, committed so that the aggregator and
the prover need no Solidity compiler at run time; `python -m deploy.compile --write-abi` rewrites
it, and tests/sheaf/test_registry_abi.py fails when it differs from what contracts/src compiles to
(a hand-copied fragment used to drift from the contract)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from sheaf.hashing import keccak256


def _load() -> list[dict[str, Any]]:
    abi: list[dict[str, Any]] = json.loads(
        resources.files("sheaf").joinpath("abi/SheafRegistry.json").read_text()
    )
    return abi


def _type(p: dict[str, Any]) -> str:
    t = str(p["type"])
    if t.startswith("tuple"):  # canonical form of a struct: its components' types in parentheses
        return "(" + ",".join(_type(c) for c in p["components"]) + ")" + t[len("tuple") :]
    return t


def signature(entry: dict[str, Any]) -> str:
    """`Name(type,...)`, the canonical signature whose keccak starts selectors and topics."""
    return f"{entry['name']}(" + ",".join(_type(i) for i in entry.get("inputs", [])) + ")"


REGISTRY_ABI: list[dict[str, Any]] = _load()

# custom error selector (hex, no 0x) -> signature: a revert is coded by its error's name
REGISTRY_ERRORS: dict[str, str] = {
    keccak256(signature(e).encode())[:4].hex(): signature(e) for e in REGISTRY_ABI if e["type"] == "error"
}
