"""Real anvil + the project's contracts compiled by deploy.compile (solc-js shim, cached on disk)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from deploy.anvil import ANVIL_DEV_KEYS, Anvil
from deploy.compile import Artifact, compile_contracts


@pytest.fixture(scope="session")
def artifacts() -> dict[str, Artifact]:
    return compile_contracts()


@pytest.fixture(scope="module")
def node() -> Iterator[Anvil]:
    with Anvil() as n:
        yield n


@pytest.fixture(scope="module")
def w3(node: Anvil) -> Web3:
    return Web3(Web3.HTTPProvider(node.rpc_url))


@pytest.fixture(scope="module")
def owner() -> LocalAccount:
    acct: LocalAccount = Account.from_key(ANVIL_DEV_KEYS[0])
    return acct
