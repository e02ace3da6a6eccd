"""Real anvil + deployed SheafRegistry, in-process aggregator on loopback (fixtures only; the helpers
live in agg_helpers.py)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agg_helpers import ChainEnv, anvil_with_registry, running_app

from aggregator.app import App


@pytest.fixture(scope="module")
def chain_env() -> Iterator[ChainEnv]:
    with anvil_with_registry() as env:
        yield env


@pytest.fixture
async def app(chain_env: ChainEnv, tmp_path: Path) -> AsyncIterator[App]:
    async with running_app(chain_env, tmp_path / "agg.db") as a:
        yield a
