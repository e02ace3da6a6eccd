"""The deployed SheafRegistry: web3 contract objects from a manifest, idempotent owner setup."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from deploy.chain import transact
from deploy.compile import Artifact, compile_contracts
from deploy.manifest import Manifest


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
