"""Real anvil + deployed SheafRegistry + in-process aggregator on loopback, for the sheaf-client
tests (the minimal fixture of tests/aggregator/conftest.py; helpers imported from agg_helpers).

The client under test is the installed `sheaf_client` package (make setup installs ./client)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "aggregator"))
from agg_helpers import (
    OPERATOR_KEYS,
    ChainEnv,
    Input,
    anvil_with_registry,
    fixture_inputs,
    running_app,
    start_operator,
    stop_process,
)

from aggregator.app import App


@pytest.fixture(scope="module")
def chain_env() -> Iterator[ChainEnv]:
    with anvil_with_registry() as env:
        yield env


@pytest.fixture
async def app(chain_env: ChainEnv, tmp_path: Path) -> AsyncIterator[App]:
    async with running_app(chain_env, tmp_path / "agg.db") as a:
        yield a


@pytest.fixture
def target(app: App) -> str:
    return f"127.0.0.1:{app.grpc.port}"


class Operators:
    """Starts 2 of the 3 registered operators on demand (threshold 2); stops them at teardown."""

    def __init__(self, target: str, env: ChainEnv, logdir: Path) -> None:
        self.target, self.env, self.logdir, self.procs = target, env, logdir, []

    def start(self) -> None:
        for i, k in enumerate(OPERATOR_KEYS[:2]):
            self.procs.append(start_operator(self.target, k, self.logdir / f"op{i}.log", self.env.registry))

    def stop(self) -> None:
        for p in self.procs:
            stop_process(p)


@pytest.fixture
def operators(target: str, chain_env: ChainEnv, tmp_path: Path) -> Iterator[Operators]:
    o = Operators(target, chain_env, tmp_path)
    yield o
    o.stop()


@pytest.fixture(scope="session")
def g16() -> list[Input]:
    """The committed real snarkjs Groth16 proofs (verified by the in-process groth16py backend)."""
    out = [i for i in fixture_inputs() if i.format == "snarkjs" and i.scheme == "groth16"]
    assert len(out) >= 4, [i.name for i in out]
    return out
