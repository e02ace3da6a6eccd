"""Python API for the demo, the aggregator and the tests: deploy, configure, load the manifest.

m = deploy_all(rpc_url, key)                 # compiles, deploys (idempotent), writes the manifest
m = load_manifest(chain_id)                  # deployments/<chainId>.json
reg = registry(w3, m)                        # web3 contract object at m.contracts["SheafRegistry"]
r = deploy_recursive_verifier(rpc_url, key, batch=1)   # recursive path: see deploy/recursive.py
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from deploy.chain import (
    check_balance,
    connect,
    constructor_types,
    deploy_contract,
    encode_constructor_args,
    load_account,
    transact,
)
from deploy.compile import REPO_ROOT, SETTINGS, Artifact, compile_contracts, compiler_version
from deploy.errors import MANIFEST_INVALID, MANIFEST_MISSING, UNKNOWN_CONTRACT, DeployError
from normalizers.statement import keccak256

if TYPE_CHECKING:
    from deploy.recursive import RecursiveDeployment

MANIFEST_VERSION = 1
# Rough upper bound of the gas a full deployment needs (checked against the balance before sending).
DEPLOY_GAS_BUDGET = 6_000_000


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


@dataclass(frozen=True)
class ConsumerConfig:
    """ExampleConsumer constructor: which domain, kind (0 any, 1 recursive, 2 attested), scheme, vk."""

    domain_id: int
    required_kind: int
    scheme: int
    vk_hash: bytes


@dataclass(frozen=True)
class Spec:
    name: str
    args: Callable[[dict[str, DeployedContract]], list[Any]]


def default_plan(owner: str, consumer: ConsumerConfig | None) -> list[Spec]:
    plan = [Spec("SheafRegistry", lambda _done: [Web3.to_checksum_address(owner)])]
    if consumer is not None:
        c = consumer
        plan.append(
            Spec(
                "ExampleConsumer",
                lambda done: [
                    Web3.to_checksum_address(done["SheafRegistry"].address),
                    c.domain_id,
                    c.required_kind,
                    c.scheme,
                    c.vk_hash,
                ],
            )
        )
    return plan


def _jsonable(v: Any) -> Any:
    return "0x" + v.hex() if isinstance(v, bytes | bytearray) else v


def deploy_all(
    rpc_url: str,
    key: str | None = None,
    *,
    account: LocalAccount | None = None,
    owner: str | None = None,
    consumer: ConsumerConfig | None = None,
    force: bool = False,
    expect_chain_id: int | None = None,
    out_dir: Path | None = None,
    artifacts: Mapping[str, Artifact] | None = None,
    log: Callable[[str], None] = lambda _s: None,
) -> Manifest:
    """Deploy the plan; reuse a manifest entry whose code+args are identical and still live (unless force)."""
    w3 = connect(rpc_url, expect_chain_id)
    acct = account or load_account(key)
    chain_id = int(w3.eth.chain_id)
    arts = artifacts or compile_contracts()
    try:
        previous: Manifest | None = load_manifest(chain_id, out_dir)
    except DeployError as e:
        if e.code != MANIFEST_MISSING:
            raise
        previous = None
    done: dict[str, DeployedContract] = {}
    balance_checked = False
    for spec in default_plan(owner or acct.address, consumer):
        art = arts[spec.name]
        args = spec.args(done)
        enc = encode_constructor_args(art, args)
        creation_hash = "0x" + keccak256(art.bytecode + enc).hex()
        old = previous.contracts.get(spec.name) if previous else None
        if (
            not force
            and old is not None
            and old.creation_hash == creation_hash
            and len(w3.eth.get_code(Web3.to_checksum_address(old.address))) > 0
        ):
            log(f"{spec.name}: unchanged at {old.address} (use --force to redeploy)")
            done[spec.name] = old
            continue
        if not balance_checked:
            check_balance(w3, acct, DEPLOY_GAS_BUDGET)
            balance_checked = True
        sent = deploy_contract(w3, acct, art, args)
        assert sent.contract_address is not None
        log(f"{spec.name}: deployed at {sent.contract_address} (tx {sent.tx_hash}, gas {sent.gas_used})")
        done[spec.name] = DeployedContract(
            name=spec.name,
            address=Web3.to_checksum_address(sent.contract_address),
            tx_hash=sent.tx_hash,
            block_number=sent.block_number,
            source_path=art.source_path,
            constructor_args="0x" + enc.hex(),
            constructor_args_decoded=[_jsonable(a) for a in args],
            constructor_types=constructor_types(art),
            creation_hash=creation_hash,
        )
    kept: dict[str, DeployedContract] = {}
    recursive: dict[str, Any] = {}
    if previous is not None:
        # entries other deploy steps own (recursive verifiers/adapters) survive a redeploy of the plan
        kept = {k: v for k, v in previous.contracts.items() if k not in done}
        registry_kept = (
            "SheafRegistry" in done and previous.contracts.get("SheafRegistry") == done["SheafRegistry"]
        )
        recursive = dict(previous.recursive) if registry_kept else {}
    m = Manifest(
        chain_id=chain_id,
        deployer=acct.address,
        compiler_version=compiler_version(),
        compiler_settings=dict(SETTINGS),
        contracts={**done, **kept},
        recursive=recursive,
    )
    save_manifest(m, out_dir)
    return m


def contract_at(
    w3: Web3, m: Manifest, name: str, artifacts: Mapping[str, Artifact] | None = None
) -> Contract:
    arts = artifacts or compile_contracts()
    return w3.eth.contract(address=Web3.to_checksum_address(m.address(name)), abi=arts[name].abi)


def registry(w3: Web3, m: Manifest, artifacts: Mapping[str, Artifact] | None = None) -> Contract:
    return contract_at(w3, m, "SheafRegistry", artifacts)


def configure_registry(
    w3: Web3,
    acct: LocalAccount,
    reg: Contract,
    *,
    domains: Sequence[tuple[int, str]] = (),
    operators: Sequence[str] = (),
    threshold: int | None = None,
    verifier: str | None = None,
) -> list[str]:
    """Idempotent owner setup: create domains (id, submitter), add operators, set threshold/verifier.
    Returns the transaction hashes it sent (empty when everything was already in place)."""
    sent: list[str] = []
    zero = "0x" + "00" * 20
    for domain_id, submitter in domains:
        if not reg.functions.getDomain(domain_id).call()[0]:
            fn = reg.functions.createDomain(domain_id, Web3.to_checksum_address(submitter or zero))
            sent.append(transact(w3, acct, fn, f"createDomain({domain_id})").tx_hash)
    for op in operators:
        if not reg.functions.isOperator(Web3.to_checksum_address(op)).call():
            fn = reg.functions.addOperator(Web3.to_checksum_address(op))
            sent.append(transact(w3, acct, fn, f"addOperator({op})").tx_hash)
    if threshold is not None and reg.functions.threshold().call() != threshold:
        sent.append(transact(w3, acct, reg.functions.setThreshold(threshold), "setThreshold").tx_hash)
    if verifier is not None and reg.functions.aggregationVerifier().call() != Web3.to_checksum_address(
        verifier
    ):
        fn = reg.functions.setAggregationVerifier(Web3.to_checksum_address(verifier))
        sent.append(transact(w3, acct, fn, "setAggregationVerifier").tx_hash)
    return sent


def deploy_recursive_verifier(rpc_url: str, key: str | None = None, **kwargs: Any) -> RecursiveDeployment:
    """Deploy the batch-size-N aggregation verifier + adapter and plug it into the registry.
    Same as deploy.recursive.deploy_recursive_verifier (kept there: it imports this module)."""
    from deploy.recursive import deploy_recursive_verifier as impl

    return impl(rpc_url, key, **kwargs)
