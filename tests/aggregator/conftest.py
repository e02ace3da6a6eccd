"""Real anvil + deployed SheafRegistry, in-process aggregator on loopback (fixtures only; the helpers
live in agg_helpers.py)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agg_helpers import ChainEnv, anvil_with_registry, running_app

from aggregator.app import App
from aggregator.pg_local import LocalPostgres, local_postgres


@pytest.fixture(scope="module")
def chain_env() -> Iterator[ChainEnv]:
    with anvil_with_registry() as env:
        yield env


@pytest.fixture
async def app(chain_env: ChainEnv, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[App]:
    """The in-process aggregator on SQLite; SHEAF_TEST_STORE=postgres runs every test using it on
    the session's PostgreSQL instead (a fresh schema each; the lease makes it the leader at once)."""
    store = os.environ.get("SHEAF_TEST_STORE", "sqlite")
    assert store in ("sqlite", "postgres"), f"SHEAF_TEST_STORE={store!r}: sqlite or postgres"
    db_url = request.getfixturevalue("pg_url") if store == "postgres" else ""
    async with running_app(chain_env, tmp_path / "agg.db", db_url=db_url) as a:
        if db_url:
            deadline = time.monotonic() + 10
            while not a.lease.leading:
                assert time.monotonic() < deadline, "no lease"
                await asyncio.sleep(0.02)
        yield a


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    """One real PostgreSQL per test session (aggregator/pg_local.py: initdb in a temp dir, loopback,
    fsync off), started only if a test asks for it."""
    with local_postgres() as pg:
        yield pg


@pytest.fixture
def pg_url(pg_server: LocalPostgres) -> str:
    """A fresh, empty schema of the session's server (its URL puts it first on the search path)."""
    return pg_server.create_schema("t_" + uuid.uuid4().hex[:16])
