"""Python API for the demo, the aggregator and the tests: deploy, configure, load the manifest.

m = deploy_all(rpc_url, key)                 # compiles, deploys (idempotent), writes the manifest
m = load_manifest(chain_id)                  # deployments/<chainId>.json
reg = registry(w3, m)                        # web3 contract object at m.contracts["SheafRegistry"]
r = deploy_recursive_verifier(rpc_url, key, batch=1)   # recursive path: see deploy/recursive.py

Manifest types and I/O live in deploy/manifest.py, registry helpers in deploy/registry.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from deploy.chain import (
    check_balance,
    connect,
    constructor_types,
    deploy_contract,
    encode_constructor_args,
    load_account,
)
from deploy.compile import SETTINGS, Artifact, compile_contracts, compiler_version
from deploy.errors import MANIFEST_MISSING, DeployError
from deploy.manifest import (
    MANIFEST_VERSION,
    DeployedContract,
    Manifest,
    deployments_dir,
    jsonable,
    load_manifest,
    manifest_path,
    save_manifest,
)
from deploy.recursive import RecursiveDeployment, deploy_recursive_verifier
from deploy.registry import configure_registry, contract_at, registry
from sheaf.hashing import keccak256

# The one import point for callers (demo, tests, benchmarks); the parts live in deploy.manifest,
# deploy.registry and deploy.recursive (which imports those, not this module).
__all__ = [
    "DEPLOY_GAS_BUDGET",
    "MANIFEST_VERSION",
    "ConsumerConfig",
    "DeployedContract",
    "Manifest",
    "RecursiveDeployment",
    "Spec",
    "configure_registry",
    "contract_at",
    "default_plan",
    "deploy_all",
    "deploy_recursive_verifier",
    "deployments_dir",
    "load_manifest",
    "manifest_path",
    "registry",
    "save_manifest",
]

# Rough upper bound of the gas a full deployment needs (checked against the balance before sending).
DEPLOY_GAS_BUDGET = 6_000_000


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
    plan = [
        Spec("SheafRegistry", lambda _done: [Web3.to_checksum_address(owner)]),
        # whole-inference verification over the registry (docs/inference.md; models: deploy/inference.py)
        Spec("SheafInference", lambda done: [Web3.to_checksum_address(done["SheafRegistry"].address)]),
    ]
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
            constructor_args_decoded=[jsonable(a) for a in args],
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
