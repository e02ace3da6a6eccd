"""Real anvil + deployed SheafRegistry, in-process aggregator on loopback, real operator processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agg_helpers import FIX, OPERATOR_KEYS, ROOT, SUBMITTER_KEY, deploy_registry

from aggregator.app import App
from aggregator.config import Config
from deploy.anvil import Anvil

SRS = FIX / "ezkl" / "verifier-k1.srs"


@dataclass
class ChainEnv:
    node: Anvil
    registry: str
    operators: list[str]


@pytest.fixture(scope="module")
def chain_env() -> Iterator[ChainEnv]:
    with Anvil(block_time=0.5) as node:
        ops = [Account.from_key(k).address for k in OPERATOR_KEYS]
        yield ChainEnv(node, deploy_registry(node.rpc_url, ops, 2, domains=(1, 2)), ops)


def make_config(env: ChainEnv, db: Path, **kw: Any) -> Config:
    base: dict[str, Any] = dict(
        db_path=str(db),
        grpc_listen="127.0.0.1:0",
        http_listen="127.0.0.1:0",
        rpc_url=env.node.rpc_url,
        registry=env.registry,
        operators=env.operators,
        threshold=2,
        max_leaves=8,
        max_wait_ms=300,
        confirmations=2,
        poll_ms=200,
        srs_path=str(SRS),
        groth16_backend="groth16py",
        rpc_retries=2,
    )
    base.update(kw)
    return Config(**base)


@pytest.fixture
async def app(chain_env: ChainEnv, tmp_path: Path) -> AsyncIterator[App]:
    a = App(make_config(chain_env, tmp_path / "agg.db"), submitter_key=SUBMITTER_KEY)
    await a.start()
    yield a
    await a.stop()


def start_operator(target: str, key: str, log: Path, registry: str | None = None) -> subprocess.Popen[bytes]:
    env = dict(os.environ, SHEAF_OPERATOR_KEY=key)
    cmd = [
        sys.executable,
        "-m",
        "aggregator.cli",
        "operator",
        "--target",
        target,
        "--srs",
        str(SRS),
        "--groth16-backend",
        "groth16py",
    ]
    if registry:
        cmd += ["--registry", registry]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "wb"), start_new_session=True
    )


def stop_process(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
