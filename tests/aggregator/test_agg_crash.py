"""Crash safety: kill -9 the aggregator process at random moments while 8 clients submit 200 distinct
real proofs; after restarts every acked submission is FINALIZED and on chain exactly once."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from agg_helpers import (
    OPERATOR_KEYS,
    ROOT,
    SRS,
    SUBMITTER_KEY,
    ChainEnv,
    Input,
    proof_pool,
    start_operator,
    stop_process,
)

from aggregator import crypto
from aggregator.chain import Chain
from aggregator.client import AggregatorError, AsyncClient
from deploy.anvil import free_port
from sheaf.v1 import aggregator_pb2 as pb

RETRYABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)


def write_config(path: Path, env: ChainEnv, db: Path, grpc_port: int, http_port: int, **extra: Any) -> None:
    ops = ", ".join(f'"{o}"' for o in env.operators)
    lines = [
        "[aggregator]",
        f'db_path = "{db}"',
        f'grpc_listen = "127.0.0.1:{grpc_port}"',
        f'http_listen = "127.0.0.1:{http_port}"',
        f'rpc_url = "{env.node.rpc_url}"',
        f'registry = "{env.registry}"',
        f"operators = [{ops}]",
        "threshold = 2",
        "max_leaves = 16",
        "max_wait_ms = 300",
        "confirmations = 2",
        "poll_ms = 200",
        f'srs_path = "{SRS}"',
        'groth16_backend = "groth16py"',
        'log_level = "INFO"',
    ]
    lines += [f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n")


class AggregatorProc:
    def __init__(self, cfg: Path, log: Path) -> None:
        self.cfg, self.log = cfg, log
        self.p: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def ready_file(self) -> Path:
        return self.log.with_suffix(".ready")

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            assert self.p is not None and self.p.poll() is None, "aggregator exited"
            assert time.monotonic() < deadline, "aggregator did not come up"
            await asyncio.sleep(0.05)

    def start(self) -> None:
        env = dict(os.environ, SHEAF_SUBMITTER_KEY=SUBMITTER_KEY)
        self.ready_file.unlink(missing_ok=True)
        self.p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aggregator.cli",
                "run",
                "--config",
                str(self.cfg),
                "--ready-file",
                str(self.ready_file),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "ab"),
            start_new_session=True,
        )
        self.starts += 1

    def kill9(self) -> None:
        assert self.p is not None
        os.killpg(self.p.pid, signal.SIGKILL)
        self.p.wait()

    def stop(self) -> None:
        if self.p is not None and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()


async def submit_all(target: str, proofs: list[Input], clients: int) -> dict[str, bytes]:
    """Each proof is retried until acked; returns proof_id -> statement hash of every ack."""
    q: asyncio.Queue[Input] = asyncio.Queue()
    for p in proofs:
        q.put_nowait(p)
    acked: dict[str, bytes] = {}

    async def worker() -> None:
        async with AsyncClient(target, timeout=10) as c:
            while True:
                try:
                    p = q.get_nowait()
                except asyncio.QueueEmpty:
                    return
                while True:
                    try:
                        r = await c.submit(p.scheme, p.format, p.proof, vk=p.vk, public=p.public)
                        acked[r.proof_id] = bytes(r.statement_hash)
                        break
                    except AggregatorError as e:
                        assert e.status in RETRYABLE, e
                        await asyncio.sleep(0.05)

    await asyncio.gather(*(worker() for _ in range(clients)))
    return acked


async def wait_all_finalized(target: str, ids: list[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    final: dict[str, Any] = {}
    async with AsyncClient(target, timeout=5) as c:
        while time.monotonic() < deadline:
            for pid in [i for i in ids if i not in final]:
                try:
                    st = await c.status(pid)
                except AggregatorError:
                    break
                assert st.status not in (pb.REJECTED, pb.FAILED), st
                if st.status == pb.FINALIZED:
                    final[pid] = st
            if len(final) == len(ids):
                return final
            await asyncio.sleep(0.3)
    missing = [i for i in ids if i not in final]
    raise AssertionError(f"{len(missing)} acked proofs not FINALIZED, e.g. {missing[:3]}")


async def check_exactly_once(target: str, env: ChainEnv, acked: dict[str, bytes], domain: int = 1) -> int:
    """Every acked statement is in exactly one on-chain aggregation of the domain, nothing else is,
    the ids are contiguous, and verifyProofAggregation accepts every leaf."""
    chain = Chain(env.node.rpc_url, env.registry)
    last = await chain.next_aggregation_id(domain) - 1
    seen: list[bytes] = []
    async with AsyncClient(target, timeout=10) as c:
        for agg_id in range(1, last + 1):
            oc = await chain.get_aggregation(domain, agg_id)
            assert oc is not None, agg_id
            local = await c.aggregation(domain, agg_id)
            leaves = [bytes(x) for x in local.leaves]
            assert crypto.merkle_root(leaves) == oc.root == bytes(local.root), agg_id
            assert local.state == "finalized"
            seen += leaves
        assert len(seen) == len(set(seen)), "a statement was posted twice"
        assert set(seen) == set(acked.values())
        for pid in acked:
            inc = await c.inclusion(pid)
            assert await chain.verify_inclusion(
                inc.domain_id, inc.aggregation_id, inc.leaf, list(inc.merkle_path), inc.leaf_count, inc.index
            ), pid
    events = await chain.w3.eth.get_logs({"address": chain.registry, "fromBlock": 0, "toBlock": "latest"})
    topic = chain.w3.keccak(text="AggregationSubmitted(uint256,uint256,bytes32,uint256,uint8)")
    ids = [
        int.from_bytes(e["topics"][2], "big")
        for e in events
        if e["topics"][0] == topic and int.from_bytes(e["topics"][1], "big") == domain
    ]
    assert sorted(ids) == list(range(1, last + 1)), ids
    return last


async def test_kill9_under_concurrent_load(chain_env: ChainEnv, tmp_path: Path) -> None:
    proofs = proof_pool(240)[:200]
    gport, hport = free_port(), free_port()
    cfg = tmp_path / "sheaf.toml"
    write_config(cfg, chain_env, tmp_path / "agg.db", gport, hport)
    target = f"127.0.0.1:{gport}"
    agg = AggregatorProc(cfg, tmp_path / "aggregator.log")
    agg.start()
    ops = [start_operator(target, k, tmp_path / f"op{i}.log") for i, k in enumerate(OPERATOR_KEYS[:2])]
    rng = random.Random(7)
    kills = 0
    try:
        done = asyncio.Event()

        async def killer() -> None:
            nonlocal kills
            while not done.is_set() or kills < 4:
                # a random moment in the serving life of this incarnation (startup itself takes seconds)
                await agg.wait_ready()
                await asyncio.sleep(rng.uniform(0.2, 1.5))
                agg.kill9()
                kills += 1
                await asyncio.sleep(rng.uniform(0.0, 0.3))
                agg.start()

        ktask = asyncio.create_task(killer())
        acked = await submit_all(target, proofs, clients=8)
        done.set()
        await ktask
        assert len(acked) == len(proofs) and len(set(acked.values())) == len(proofs)
        # one more kill while batches are being attested and posted
        await agg.wait_ready()
        await asyncio.sleep(1.0)
        agg.kill9()
        agg.start()
        await wait_all_finalized(target, list(acked), timeout=180)
        n_aggs = await check_exactly_once(target, chain_env, acked)
        assert n_aggs >= len(proofs) // 16
        assert kills >= 4 and agg.starts >= 6
        # graceful stop: SIGTERM drains and exits cleanly
        assert agg.p is not None
        agg.p.send_signal(signal.SIGTERM)
        assert agg.p.wait(30) == 0
        assert '"msg": "stopped"' in (tmp_path / "aggregator.log").read_text()
    finally:
        agg.stop()
        for p in ops:
            stop_process(p)
