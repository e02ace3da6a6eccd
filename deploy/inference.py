"""SheafInference on a deployment (docs/inference.md): register a model spec (idempotent: the id is the
spec's hash) and deploy an ExampleInferenceConsumer pinned to it, recorded in the manifest.

`deploy_all` deploys SheafInference itself next to the registry (its only constructor argument is
the registry's address). A model spec file is JSON: `{"slices": [SliceSpec JSON, ...]}` (the form
of tests/vectors/model_id.json and of `prover infer --model-out`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError

from deploy.chain import constructor_types, deploy_contract, encode_constructor_args, transact
from deploy.compile import Artifact, compile_contracts
from deploy.errors import CONFIG_INVALID, TX_FAILED, DeployError
from deploy.manifest import DeployedContract, Manifest, jsonable, save_manifest
from deploy.registry import contract_at
from sheaf.hashing import keccak256
from sheaf.inference import InferenceError, SliceSpec, model_id, validate_model

INFERENCE = "SheafInference"
CONSUMER = "ExampleInferenceConsumer"


def load_model(path: Path) -> list[SliceSpec]:
    """A model spec file, validated with the contract's registration checks (CONFIG_INVALID otherwise)."""
    try:
        d = json.loads(path.read_text())
        slices = [SliceSpec.from_json(s) for s in (d["slices"] if isinstance(d, dict) else d)]
        validate_model(slices)
    except (OSError, ValueError, KeyError, TypeError) as e:  # InferenceError is a ValueError
        raise DeployError(CONFIG_INVALID, f"{path}: not a valid model spec ({e})") from e
    return slices


def save_model(path: Path, slices: Sequence[SliceSpec]) -> None:
    path.write_text(json.dumps({"slices": [s.to_json() for s in slices]}, indent=1) + "\n")


def inference_contract(w3: Web3, m: Manifest, artifacts: Mapping[str, Artifact] | None = None) -> Contract:
    return contract_at(w3, m, INFERENCE, artifacts)


@dataclass(frozen=True)
class Registered:
    model_id: bytes
    tx_hash: str | None  # None: it was registered already
    gas_used: int = 0


def register_model(w3: Web3, acct: LocalAccount, inf: Contract, slices: Sequence[SliceSpec]) -> Registered:
    """Register `slices` unless that model is there already (anyone may; the id is the spec's)."""
    try:
        validate_model(slices)
    except InferenceError as e:
        raise DeployError(CONFIG_INVALID, f"the model spec is refused: {e}") from e
    mid = model_id(slices)
    if inf.functions.isRegistered(mid).call():
        return Registered(mid, None)
    sent = transact(w3, acct, inf.functions.registerModel([s.abi() for s in slices]), "registerModel")
    return Registered(mid, sent.tx_hash, sent.gas_used)


def deploy_consumer(
    w3: Web3,
    acct: LocalAccount,
    m: Manifest,
    model: bytes,
    *,
    domain_id: int,
    required_kind: int,
    require_fully_proven: bool,
    out_dir: Path | None = None,
    artifacts: Mapping[str, Artifact] | None = None,
    log: Callable[[str], None] = lambda _s: None,
) -> Manifest:
    """Deploy ExampleInferenceConsumer for a registered model (reused when code and arguments are
    unchanged and live) and record it in the manifest; returns the saved manifest."""
    arts = artifacts or compile_contracts()
    art = arts[CONSUMER]
    args = [
        Web3.to_checksum_address(m.address(INFERENCE)),
        model,
        domain_id,
        required_kind,
        require_fully_proven,
    ]
    enc = encode_constructor_args(art, args)
    creation_hash = "0x" + keccak256(art.bytecode + enc).hex()
    old = m.contracts.get(CONSUMER)
    if (
        old is not None
        and old.creation_hash == creation_hash
        and len(w3.eth.get_code(Web3.to_checksum_address(old.address))) > 0
    ):
        log(f"{CONSUMER}: unchanged at {old.address}")
        return m
    try:
        sent = deploy_contract(w3, acct, art, args)
    except (ContractCustomError, ContractLogicError) as e:  # the constructor's check, found by estimation
        data = getattr(e, "data", None) or str(e)
        raise DeployError(TX_FAILED, f"{CONSUMER} constructor would revert ({data}); nothing was sent") from e
    assert sent.contract_address is not None
    log(f"{CONSUMER}: deployed at {sent.contract_address} (tx {sent.tx_hash}, gas {sent.gas_used})")
    entry = DeployedContract(
        name=CONSUMER,
        address=Web3.to_checksum_address(sent.contract_address),
        tx_hash=sent.tx_hash,
        block_number=sent.block_number,
        source_path=art.source_path,
        constructor_args="0x" + enc.hex(),
        constructor_args_decoded=[jsonable(a) for a in args],
        constructor_types=constructor_types(art),
        creation_hash=creation_hash,
    )
    out = replace(m, contracts={**m.contracts, CONSUMER: entry})
    save_manifest(out, out_dir)
    return out


__all__ = [
    "CONSUMER",
    "INFERENCE",
    "Registered",
    "deploy_consumer",
    "inference_contract",
    "load_model",
    "register_model",
    "save_model",
]
