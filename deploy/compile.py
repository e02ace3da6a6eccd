"""Compile the project's contracts with the solc-js shim (tools/solc) through py-solc-x.

The standard-JSON input is kept with every artifact: it is exactly what block explorers
(Etherscan/Blockscout: standard-JSON + full compiler version + ABI-encoded constructor args) and
Sourcify (metadata.json + sources) need to reproduce the bytecode.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import solcx
from solcx.exceptions import SolcError
from solcx.wrapper import get_solc_version

from deploy.errors import COMPILE_FAILED, DeployError
from sheaf.paths import REPO_ROOT

CONTRACTS_DIR = REPO_ROOT / "contracts" / "src"
# Must stay in step with foundry.toml (optimizer 200 runs, cancun, ipfs metadata hash).
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "metadata": {"bytecodeHash": "ipfs"},
}
OUTPUTS = [
    "abi",
    "metadata",
    "evm.bytecode.object",
    "evm.deployedBytecode.object",
    "evm.deployedBytecode.immutableReferences",
]


def solc_binary() -> Path:
    return Path(os.environ.get("SHEAF_SOLC", REPO_ROOT / "tools" / "solc"))


@functools.cache
def compiler_version() -> str:
    """Full version as explorers want it, e.g. v0.8.30+commit.73712a01."""
    return "v" + str(get_solc_version(solc_binary(), with_commit_hash=True))


@dataclass(frozen=True)
class Artifact:
    name: str
    source_path: str  # key in the standard-JSON sources, e.g. contracts/src/SheafRegistry.sol
    abi: list[dict[str, Any]]
    bytecode: bytes  # creation code (no constructor args)
    runtime: bytes  # deployed code as compiled (immutables zeroed)
    immutable_references: dict[str, list[dict[str, int]]]
    metadata: str  # solc metadata JSON, byte-exact (its hash is in the CBOR auxdata)
    standard_json_input: dict[str, Any] = field(repr=False)
    compiler_version: str = ""

    @property
    def fully_qualified_name(self) -> str:
        return f"{self.source_path}:{self.name}"


def standard_json_input(
    sources: Mapping[str, str], settings: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    s = dict(SETTINGS if settings is None else settings)
    s["outputSelection"] = {"*": {"*": list(OUTPUTS)}}
    return {
        "language": "Solidity",
        "sources": {k: {"content": v} for k, v in sorted(sources.items())},
        "settings": s,
    }


def _cache_dir() -> Path:
    return Path(os.environ.get("SHEAF_SOLC_CACHE", REPO_ROOT / "build" / "solc-cache"))


def _solc_output(std_input: Mapping[str, Any], version: str) -> dict[str, Any]:
    """solc's standard-JSON output, cached on disk by (compiler version, exact input): solc-js is slow."""
    blob = json.dumps(std_input, sort_keys=True).encode()
    key = hashlib.sha256(version.encode() + b"\0" + blob).hexdigest()
    cached = _cache_dir() / f"{key}.json"
    if cached.exists():
        out: dict[str, Any] = json.loads(cached.read_text())
        return out
    try:
        out = solcx.compile_standard(dict(std_input), solc_binary=solc_binary(), allow_empty=True)
    except SolcError as e:
        raise DeployError(COMPILE_FAILED, f"solc failed: {e}") from e
    if not any(e.get("severity") == "error" for e in out.get("errors", [])):
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(out))
        tmp.replace(cached)
    return out


def compile_standard_json(std_input: Mapping[str, Any]) -> dict[str, Artifact]:
    """Compile; artifacts keyed by contract name (and by `path:Name` when names collide)."""
    version = compiler_version()
    out = _solc_output(std_input, version)
    errors = [e for e in out.get("errors", []) if e.get("severity") == "error"]
    if errors:
        msg = "; ".join(e.get("formattedMessage", e.get("message", "?")).strip() for e in errors)
        raise DeployError(COMPILE_FAILED, f"compilation errors: {msg}")
    arts: dict[str, Artifact] = {}
    names: dict[str, int] = {}
    for contracts in out.get("contracts", {}).values():
        for name in contracts:
            names[name] = names.get(name, 0) + 1
    for path, contracts in sorted(out.get("contracts", {}).items()):
        for name, c in contracts.items():
            evm = c["evm"]
            art = Artifact(
                name=name,
                source_path=path,
                abi=c["abi"],
                bytecode=bytes.fromhex(evm["bytecode"]["object"]),
                runtime=bytes.fromhex(evm["deployedBytecode"]["object"]),
                immutable_references=evm["deployedBytecode"].get("immutableReferences", {}) or {},
                metadata=c["metadata"],
                standard_json_input=dict(std_input),
                compiler_version=version,
            )
            arts[f"{path}:{name}"] = art
            if names[name] == 1:
                arts[name] = art
    return arts


def read_sources(root: Path = REPO_ROOT, src_dir: Path | None = None) -> dict[str, str]:
    """contracts/src/*.sol as {repo-relative path: content}."""
    d = src_dir or (root / "contracts" / "src")
    return {str(p.relative_to(root)): p.read_text() for p in sorted(d.rglob("*.sol"))}


def compile_contracts(root: Path = REPO_ROOT) -> dict[str, Artifact]:
    """The project's contracts (contracts/src), keyed by contract name."""
    return compile_standard_json(standard_json_input(read_sources(root)))


def compile_files(paths: Mapping[str, Path]) -> dict[str, Artifact]:
    """Other Solidity files (e.g. gnark/ezkl exported verifiers) under chosen source names."""
    return compile_standard_json(standard_json_input({k: p.read_text() for k, p in paths.items()}))


def artifact_json(a: Artifact) -> dict[str, Any]:
    return {
        "name": a.name,
        "source_path": a.source_path,
        "abi": a.abi,
        "bytecode": "0x" + a.bytecode.hex(),
        "runtime": "0x" + a.runtime.hex(),
        "immutable_references": a.immutable_references,
        "metadata": json.loads(a.metadata),
        "compiler_version": a.compiler_version,
    }


def write_registry_abi(root: Path = REPO_ROOT) -> Path:
    """Rewrite sheaf/abi/SheafRegistry.json (sheaf.registry_abi) from what contracts/src compiles to."""
    path = root / "sheaf" / "abi" / "SheafRegistry.json"
    path.write_text(json.dumps(compile_contracts(root)["SheafRegistry"].abi, indent=1, sort_keys=True) + "\n")
    return path


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--write-abi"]:
        sys.exit("usage: python -m deploy.compile --write-abi")
    print(write_registry_abi())
