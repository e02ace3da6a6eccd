"""A real anvil node, a contract compiled through the shim, deployed and called with web3.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import solcx
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractLogicError

from deploy.anvil import ANVIL_DEV_KEYS, Anvil

SOL = Path(__file__).resolve().parent / "sol"


def _compile(solc_shim: str) -> dict[str, Any]:
    # The import of ./lib/Math.sol is resolved by the shim's import callback against base_path.
    source = "src/Doubler.sol"
    out = solcx.compile_standard(
        {
            "language": "Solidity",
            "sources": {source: {"content": (SOL / source).read_text()}},
            "settings": {
                "optimizer": {"enabled": True, "runs": 200},
                "evmVersion": "cancun",
                "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
            },
        },
        solc_binary=solc_shim,
        base_path=str(SOL),
        allow_paths=[str(SOL)],
    )
    contract = out["contracts"][source]["Doubler"]
    return {"abi": contract["abi"], "bin": contract["evm"]["bytecode"]["object"]}


@pytest.fixture(scope="module")
def node() -> Any:
    with Anvil() as anvil:
        yield anvil


def test_deploy_and_call_on_anvil(node: Anvil, solc_shim: str) -> None:
    w3 = Web3(Web3.HTTPProvider(node.rpc_url))
    assert w3.eth.chain_id == 31337
    acct = Account.from_key(ANVIL_DEV_KEYS[0])
    artifact = _compile(solc_shim)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bin"])

    tx = factory.constructor().build_transaction(
        {"from": acct.address, "nonce": w3.eth.get_transaction_count(acct.address)}
    )
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
    )
    assert receipt["status"] == 1
    doubler = w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])
    assert len(w3.eth.get_code(doubler.address)) > 0

    tx = doubler.functions.run(21).build_transaction(
        {"from": acct.address, "nonce": w3.eth.get_transaction_count(acct.address)}
    )
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
    )
    assert receipt["status"] == 1
    (event,) = doubler.events.Doubled().process_receipt(receipt)
    assert (event["args"]["input"], event["args"]["output"]) == (21, 42)
    assert doubler.functions.last().call() == 42
    # A call that overflows reverts through the real EVM (checked arithmetic), not silently.
    with pytest.raises(ContractLogicError):
        doubler.functions.run(2**255).call({"from": acct.address})


def test_anvil_stops_cleanly() -> None:
    anvil = Anvil().start()
    proc = anvil.process
    assert proc is not None and proc.poll() is None
    anvil.stop()
    assert proc.poll() is not None
    assert not anvil._answers()
