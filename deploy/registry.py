"""The deployed SheafRegistry: web3 contract objects from a manifest, idempotent owner setup."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD

from deploy.chain import transact
from deploy.compile import Artifact, compile_contracts
from deploy.errors import NOT_OWNER, UNKNOWN_CONTRACT, DeployError
from deploy.manifest import Manifest


def contract_at(
    w3: Web3, m: Manifest, name: str, artifacts: Mapping[str, Artifact] | None = None
) -> Contract:
    arts = artifacts or compile_contracts()
    return w3.eth.contract(address=Web3.to_checksum_address(m.address(name)), abi=arts[name].abi)


def registry(w3: Web3, m: Manifest, artifacts: Mapping[str, Artifact] | None = None) -> Contract:
    return contract_at(w3, m, "SheafRegistry", artifacts)


def owned_registry(w3: Web3, m: Manifest, acct: LocalAccount, hint: str) -> Contract:
    """The manifest's SheafRegistry, checked to be owned by `acct` before anything is deployed for
    it (UNKNOWN_CONTRACT without one, NOT_OWNER with `hint` on how to go on)."""
    if "SheafRegistry" not in m.contracts:
        raise DeployError(
            UNKNOWN_CONTRACT, f"no SheafRegistry in the manifest of chain {m.chain_id}: deploy it first"
        )
    reg = registry(w3, m)
    owner = str(reg.functions.owner().call())
    if owner.lower() != acct.address.lower():
        raise DeployError(
            NOT_OWNER,
            f"setAggregationVerifier needs the registry owner {owner}, the key is {acct.address}; {hint}",
        )
    return reg


def use_aggregation_verifier(
    w3: Web3, acct: LocalAccount, reg: Contract, adapter: str, log: Callable[[str], None]
) -> str | None:
    """Point the registry's recursive route at `adapter` (idempotent); the transaction hash, or None
    when it was set already."""
    sent = configure_registry(w3, acct, reg, verifier=adapter)
    tx = sent[0] if sent else None
    log(f"SheafRegistry.aggregationVerifier = {adapter} ({'tx ' + tx if tx else 'already set'})")
    return tx


def configure_registry(
    w3: Web3,
    acct: LocalAccount,
    reg: Contract,
    *,
    domains: Sequence[tuple[int, str]] = (),
    operators: Sequence[str] = (),
    threshold: int | None = None,
    verifier: str | None = None,
    min_threshold: int | None = None,
    config_delay: int | None = None,
) -> list[str]:
    """Idempotent owner setup: create domains (id, submitter), add operators, set threshold/verifier,
    the threshold's floor and, last, the configuration delay. Returns the transaction hashes it sent
    (empty when everything was already in place).

    Once the registry has a delay, its configuration setters only queue a change (effective after
    the delay, by `executeConfigChange`, see `queued_changes`): set the delay last, as here."""
    sent: list[str] = []
    zero = "0x" + "00" * 20
    # With a delay, a setter only queues: a change already waiting is not queued a second time
    # (running configure twice must not leave two identical changes to execute).
    waiting = {(k, t, v) for _, k, t, v, _ in pending_changes(reg)}

    def change(kind: str, target: str, value: int, fn: ContractFunction, what: str) -> None:
        key = (int(getattr(reg.functions, kind)().call()), Web3.to_checksum_address(target), value)
        if key not in waiting:
            sent.append(transact(w3, acct, fn, what).tx_hash)

    for domain_id, submitter in domains:
        if not reg.functions.getDomain(domain_id).call()[0]:
            fn = reg.functions.createDomain(domain_id, Web3.to_checksum_address(submitter or zero))
            sent.append(transact(w3, acct, fn, f"createDomain({domain_id})").tx_hash)
    for op in operators:
        if not reg.functions.isOperator(Web3.to_checksum_address(op)).call():
            fn = reg.functions.addOperator(Web3.to_checksum_address(op))
            change("CHANGE_ADD_OPERATOR", op, 0, fn, f"addOperator({op})")
    if threshold is not None and reg.functions.threshold().call() != threshold:
        change("CHANGE_THRESHOLD", zero, threshold, reg.functions.setThreshold(threshold), "setThreshold")
    if verifier is not None and reg.functions.aggregationVerifier().call() != Web3.to_checksum_address(
        verifier
    ):
        fn = reg.functions.setAggregationVerifier(Web3.to_checksum_address(verifier))
        change("CHANGE_VERIFIER", verifier, 0, fn, "setAggregationVerifier")
    if min_threshold is not None and reg.functions.minThreshold().call() != min_threshold:
        fn = reg.functions.setMinThreshold(min_threshold)
        change("CHANGE_MIN_THRESHOLD", zero, min_threshold, fn, "setMinThreshold")
    if config_delay is not None and reg.functions.configDelay().call() != config_delay:
        fn = reg.functions.setConfigDelay(config_delay)
        change("CHANGE_DELAY", zero, config_delay, fn, "setConfigDelay")
    return sent


def pending_changes(reg: Contract) -> list[tuple[int, int, str, int, int]]:
    """(change id, kind, target, value, eta) of every change queued and neither executed nor
    cancelled (ids are sequential from 1: `nextChangeId` bounds the scan)."""
    out: list[tuple[int, int, str, int, int]] = []
    for cid in range(1, int(reg.functions.nextChangeId().call())):
        kind, eta, target, value = reg.functions.getConfigChange(cid).call()
        if kind:
            out.append((cid, int(kind), Web3.to_checksum_address(target), int(value), int(eta)))
    return out


def queued_changes(w3: Web3, reg: Contract, tx_hashes: Sequence[str]) -> list[tuple[int, int, int]]:
    """(change id, kind, eta) of the changes those transactions queued and did not apply at once
    (the registry had a delay): each takes effect when `executeConfigChange(id)` is sent after eta."""
    out: list[tuple[int, int, int]] = []
    # A receipt also holds the registry's other events (ThresholdChanged, ...): those are not the
    # event asked for, so they are skipped quietly, not logged as ABI mismatches.
    for h in tx_hashes:
        rc = w3.eth.get_transaction_receipt(h)  # type: ignore[arg-type]
        executed = reg.events.ConfigChangeExecuted().process_receipt(rc, errors=DISCARD)
        done = {int(e.args.changeId) for e in executed}
        for e in reg.events.ConfigChangeQueued().process_receipt(rc, errors=DISCARD):
            if int(e.args.changeId) not in done:
                out.append((int(e.args.changeId), int(e.args.kind), int(e.args.eta)))
    return out
