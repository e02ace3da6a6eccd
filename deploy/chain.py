"""Thin web3.py helpers: connect with clear errors, keys, send/deploy and wait for receipts."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.types import TxReceipt

from deploy.compile import Artifact
from deploy.errors import (
    BAD_KEY,
    CHAIN_ID_MISMATCH,
    INSUFFICIENT_BALANCE,
    NO_KEY,
    RPC_UNREACHABLE,
    TX_FAILED,
    DeployError,
)

KEY_ENV = "SHEAF_DEPLOYER_KEY"
KEYSTORE_PASSWORD_ENV = "SHEAF_KEYSTORE_PASSWORD"


def connect(rpc_url: str, expect_chain_id: int | None = None, timeout_s: float = 10.0) -> Web3:
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))
    try:
        chain_id = int(w3.eth.chain_id)
    except (requests.exceptions.RequestException, OSError) as e:
        raise DeployError(
            RPC_UNREACHABLE,
            f"cannot reach the JSON-RPC endpoint at --rpc-url {rpc_url} ({type(e).__name__}); "
            "check the URL and that the node (e.g. anvil) is running",
        ) from e
    except ValueError as e:  # a server that answered but is not an Ethereum node
        raise DeployError(RPC_UNREACHABLE, f"--rpc-url {rpc_url} did not answer eth_chainId: {e}") from e
    if expect_chain_id is not None and chain_id != expect_chain_id:
        raise DeployError(
            CHAIN_ID_MISMATCH,
            f"--expect-chain-id is {expect_chain_id} but the node at {rpc_url} reports chain id {chain_id}; "
            "point --rpc-url at the intended network",
        )
    return w3


def load_account(
    key: str | None = None, keystore: Path | None = None, password: str | None = None
) -> LocalAccount:
    """A key given directly, else a keystore file (password from SHEAF_KEYSTORE_PASSWORD), else env."""
    if keystore is not None:
        pw = password if password is not None else os.environ.get(KEYSTORE_PASSWORD_ENV)
        if pw is None:
            raise DeployError(NO_KEY, f"--keystore {keystore} needs its password in ${KEYSTORE_PASSWORD_ENV}")
        try:
            raw = Account.decrypt(Path(keystore).read_text(), pw)
        except (OSError, ValueError) as e:
            raise DeployError(BAD_KEY, f"cannot decrypt --keystore {keystore}: {e}") from e
        acct: LocalAccount = Account.from_key(raw)
        return acct
    k = key if key is not None else os.environ.get(KEY_ENV)
    if not k:
        raise DeployError(
            NO_KEY, f"no deployer key: pass --keystore FILE or set ${KEY_ENV} to a 0x-hex private key"
        )
    try:
        acct = Account.from_key(k)
    except (ValueError, TypeError) as e:
        raise DeployError(BAD_KEY, f"${KEY_ENV} is not a valid secp256k1 private key (32 bytes hex)") from e
    return acct


@dataclass(frozen=True)
class Sent:
    tx_hash: str
    block_number: int
    gas_used: int
    contract_address: str | None
    receipt: TxReceipt


def _send(w3: Web3, acct: LocalAccount, tx: dict[str, Any], what: str) -> Sent:
    tx.setdefault("from", acct.address)
    tx.setdefault("chainId", int(w3.eth.chain_id))
    tx.setdefault("nonce", w3.eth.get_transaction_count(acct.address, "pending"))
    signed = acct.sign_transaction(tx)
    h = w3.eth.send_raw_transaction(signed.raw_transaction)
    rcpt = w3.eth.wait_for_transaction_receipt(h, timeout=120)
    if rcpt["status"] != 1:
        raise DeployError(TX_FAILED, f"{what}: transaction {h.hex()} reverted (gas used {rcpt['gasUsed']})")
    addr = rcpt.get("contractAddress")
    return Sent(
        "0x" + bytes(h).hex(), int(rcpt["blockNumber"]), int(rcpt["gasUsed"]), addr and str(addr), rcpt
    )


def transact(w3: Web3, acct: LocalAccount, fn: ContractFunction, what: str, gas: int | None = None) -> Sent:
    params: dict[str, Any] = {"from": acct.address}
    if gas is not None:
        params["gas"] = gas
    try:
        tx = dict(fn.build_transaction(params))  # type: ignore[arg-type]
    except (ContractCustomError, ContractLogicError) as e:
        # gas estimation simulates the call: a revert here means the transaction would revert
        data = getattr(e, "data", None) or str(e)
        raise DeployError(TX_FAILED, f"{what} would revert ({data}); nothing was sent") from e
    return _send(w3, acct, tx, what)


def calldata_gas(data: bytes) -> int:
    """Intrinsic calldata cost (EIP-2028): 4 gas per zero byte, 16 per non-zero byte."""
    return sum(4 if b == 0 else 16 for b in data)


def exec_gas(gas_used: int, data: bytes) -> int:
    """Execution part of a call tx: receipt gas minus the 21000 base and calldata cost (what a
    contract pays for the same call inside its own transaction)."""
    return gas_used - 21_000 - calldata_gas(data)


def call_tx_gas(w3: Web3, acct: LocalAccount, to: str, data: bytes, what: str) -> int:
    """Send `data` to `to` as a transaction and return the receipt's gasUsed. The call is simulated
    first and must neither revert nor return false (a bool-returning verifier): a failing verifier
    call must not be measured as a cheap one (toolchain notes: estimates on such calls mislead)."""
    target = Web3.to_checksum_address(to)
    try:
        ret = w3.eth.call({"from": acct.address, "to": target, "data": data})
    except (ContractCustomError, ContractLogicError) as e:
        raise DeployError(TX_FAILED, f"{what}: the call reverts ({getattr(e, 'data', None) or e})") from e
    if len(ret) == 32 and int.from_bytes(ret, "big") != 1:
        raise DeployError(TX_FAILED, f"{what}: the call returned false")
    tx: dict[str, Any] = {"to": target, "data": data, "gas": 5_000_000}
    tx["maxFeePerGas"] = int(w3.eth.gas_price) * 2
    tx["maxPriorityFeePerGas"] = 1
    return _send(w3, acct, tx, what).gas_used


def constructor_types(art: Artifact) -> list[str]:
    for item in art.abi:
        if item.get("type") == "constructor":
            return [str(i["type"]) for i in item.get("inputs", [])]
    return []


def encode_constructor_args(art: Artifact, args: Sequence[Any]) -> bytes:
    """ABI-encoded constructor arguments, as explorers want them appended to the creation code."""
    return bytes(abi_encode(constructor_types(art), list(args)))


def deploy_contract(w3: Web3, acct: LocalAccount, art: Artifact, args: Sequence[Any] = ()) -> Sent:
    c = w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
    tx = dict(c.constructor(*args).build_transaction({"from": acct.address}))
    return _send(w3, acct, tx, f"deploy {art.name}")


def check_balance(w3: Web3, acct: LocalAccount, gas_needed: int) -> None:
    price = int(w3.eth.gas_price)
    need = gas_needed * price
    have = int(w3.eth.get_balance(acct.address))
    if have < need:
        raise DeployError(
            INSUFFICIENT_BALANCE,
            f"deployer {acct.address} has {have} wei but needs about {need} wei "
            f"({gas_needed} gas at {price} wei/gas); fund it or use another key",
        )
