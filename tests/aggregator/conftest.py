"""Real anvil + deployed SheafRegistry, in-process aggregator on loopback (fixtures only; the helpers
live in agg_helpers.py)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agg_helpers import OPERATOR_KEYS, SUBMITTER_KEY, ChainEnv, deploy_registry, make_config

from aggregator.app import App
from deploy.anvil import Anvil


@pytest.fixture(scope="module")
def chain_env() -> Iterator[ChainEnv]:
    with Anvil(block_time=0.5) as node:
        ops = [Account.from_key(k).address for k in OPERATOR_KEYS]
        yield ChainEnv(node, deploy_registry(node.rpc_url, ops, 2, domains=(1, 2)), ops)


@pytest.fixture
async def app(chain_env: ChainEnv, tmp_path: Path) -> AsyncIterator[App]:
    a = App(make_config(chain_env, tmp_path / "agg.db"), submitter_key=SUBMITTER_KEY)
    await a.start()
    yield a
    await a.stop()
