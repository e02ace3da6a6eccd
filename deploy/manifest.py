"""The deployment manifest, deployments/<chainId>.json: what was deployed where, with everything
source verification needs (compiler version and settings, constructor arguments).

m = load_manifest(chain_id)                  # deployments/<chainId>.json ($SHEAF_DEPLOYMENTS_DIR)
save_manifest(m)                             # atomic write
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deploy.errors import MANIFEST_INVALID, MANIFEST_MISSING, UNKNOWN_CONTRACT, DeployError
from sheaf.paths import REPO_ROOT

MANIFEST_VERSION = 1


def deployments_dir() -> Path:
    return Path(os.environ.get("SHEAF_DEPLOYMENTS_DIR", REPO_ROOT / "deployments"))


@dataclass(frozen=True)
class DeployedContract:
    name: str
    address: str
    tx_hash: str
    block_number: int
    source_path: str
    constructor_args: str  # 0x ABI-encoded (what Etherscan/Blockscout ask for)
    constructor_args_decoded: list[Any]
    constructor_types: list[str]
    creation_hash: str  # keccak256(creation code || args): identical code+args => no redeploy
    # Solidity contract name when the manifest key differs (e.g. generated verifiers, all `Verifier`)
    contract_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. circuit hash and setup of a generated verifier

    @property
    def solidity_name(self) -> str:
        return self.contract_name or self.name


@dataclass(frozen=True)
class Manifest:
    chain_id: int
    deployer: str
    compiler_version: str
    compiler_settings: dict[str, Any]
    contracts: dict[str, DeployedContract] = field(default_factory=dict)
    version: int = MANIFEST_VERSION
    # the recursive-path configuration last applied by deploy_recursive_verifier (deploy/recursive.py)
    recursive: dict[str, Any] = field(default_factory=dict)

    def address(self, name: str) -> str:
        if name not in self.contracts:
            raise DeployError(UNKNOWN_CONTRACT, f"{name} is not in the manifest of chain {self.chain_id}")
        return self.contracts[name].address

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(d: Mapping[str, Any]) -> Manifest:
        try:
            contracts = {k: DeployedContract(**v) for k, v in d["contracts"].items()}
            return Manifest(
                chain_id=int(d["chain_id"]),
                deployer=str(d["deployer"]),
                compiler_version=str(d["compiler_version"]),
                compiler_settings=dict(d["compiler_settings"]),
                contracts=contracts,
                version=int(d.get("version", MANIFEST_VERSION)),
                recursive=dict(d.get("recursive", {})),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise DeployError(MANIFEST_INVALID, f"manifest is malformed ({type(e).__name__}: {e})") from e


def manifest_path(chain_id: int, out_dir: Path | None = None) -> Path:
    return (out_dir or deployments_dir()) / f"{chain_id}.json"


def load_manifest(chain_id: int, out_dir: Path | None = None) -> Manifest:
    p = manifest_path(chain_id, out_dir)
    if not p.exists():
        raise DeployError(
            MANIFEST_MISSING, f"no manifest at {p}: run `sheaf-deploy deploy --rpc-url URL` first"
        )
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise DeployError(MANIFEST_INVALID, f"{p} is not valid JSON: {e}") from e
    return Manifest.from_json(data)


def save_manifest(m: Manifest, out_dir: Path | None = None) -> Path:
    p = manifest_path(m.chain_id, out_dir)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(m.to_json(), indent=2) + "\n")
    tmp.replace(p)
    return p


def jsonable(v: Any) -> Any:
    return "0x" + v.hex() if isinstance(v, bytes | bytearray) else v
