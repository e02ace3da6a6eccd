"""Two `aggregator run` processes on one real PostgreSQL (issue 15): both accept submissions, one
leads (batches and posts); kill -9 of the leader while clients submit to both; the other takes the
lease within seconds and every acked proof ends on chain in exactly one aggregation.

The operators talk only to the instance that started as the follower: their tasks and signatures
go through an instance that batches nothing itself. Clients of the killed instance move to the
other one (what a load balancer does). SHEAF_FAILOVER_PROOFS sets the load (default 90, in batches
of up to 30; the bench's figure with 1,000 is in docs/performance.md)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

from agg_helpers import (
    OPERATOR_KEYS,
    RETRYABLE,
    AggregatorProc,
    ChainEnv,
    Input,
    check_exactly_once,
    proof_pool,
    running_app,
    start_operator,
    stop_process,
    wait_all_finalized,
    write_config,
)

from aggregator.client import AggregatorError, AsyncClient
from aggregator.pg_local import LocalPostgres
from deploy.anvil import free_port

TTL = 2.0  # lease_ttl_s: the takeover is bounded by ~1.2 x TTL


def readyz(http_port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=2) as r:
            out: dict[str, Any] = json.load(r)
            return out
    except urllib.error.HTTPError as e:
        out = json.load(e)
        return out


async def wait_leader(http_port: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = readyz(http_port)
        if st["lease"]["leader"]:
            return st
        await asyncio.sleep(0.05)
    raise AssertionError(f"no lease after {timeout} s: {readyz(http_port)}")


async def submit_spread(
    targets: list[str], proofs: list[Input], clients: int, acked: dict[str, bytes]
) -> dict[str, bytes]:
    """Clients spread over the targets, each proof retried until acked (into `acked`); a client
    whose instance is gone moves to the next one."""
    q: asyncio.Queue[Input] = asyncio.Queue()
    for p in proofs:
        q.put_nowait(p)

    async def worker(i: int) -> None:
        t = i % len(targets)
        while not q.empty():
            async with AsyncClient(targets[t], timeout=5) as c:
                while True:
                    try:
                        p = q.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    try:
                        r = await c.submit(p.scheme, p.format, p.proof, vk=p.vk, public=p.public)
                        acked[r.proof_id] = bytes(r.statement_hash)
                    except AggregatorError as e:
                        assert e.status in RETRYABLE, e
                        q.put_nowait(p)
                        t = (t + 1) % len(targets)
                        await asyncio.sleep(0.05)
                        break

    await asyncio.gather(*(worker(i) for i in range(clients)))
    return acked


async def test_two_instances_kill9_the_leader(chain_env: ChainEnv, pg_url: str, tmp_path: Path) -> None:
    n = int(os.environ.get("SHEAF_FAILOVER_PROOFS", "90"))
    proofs = proof_pool(max(240, n))[:n]
    ports = [(free_port(), free_port()) for _ in range(2)]
    aggs = []
    for i, (g, h) in enumerate(ports):
        cfg = tmp_path / f"sheaf{i}.toml"
        write_config(
            cfg,
            chain_env,
            tmp_path / "unused.db",
            g,
            h,
            db_url=pg_url,
            lease_ttl_s=TTL,
            instance_name=f"i{i}",
            max_leaves=30,
        )
        aggs.append(AggregatorProc(cfg, tmp_path / f"aggregator{i}.log"))
    a, b = aggs
    targets = [f"127.0.0.1:{g}" for g, _ in ports]
    ops = []
    try:
        a.start()
        await a.wait_ready()
        first = await wait_leader(ports[0][1], 10)
        b.start()
        await b.wait_ready()
        st = readyz(ports[1][1])
        deadline = time.monotonic() + 5
        while not st["ready"] and time.monotonic() < deadline:  # its first lease attempt
            await asyncio.sleep(0.05)
            st = readyz(ports[1][1])
        # the follower is ready (it takes submissions); the lease names the leader
        assert st["ready"] and st["checks"]["store"] and not st["lease"]["leader"]
        assert st["lease"]["holder"] == first["lease"]["holder"] and st["lease"]["instance"].startswith("i1/")
        ops = [
            start_operator(targets[1], k, tmp_path / f"op{i}.log") for i, k in enumerate(OPERATOR_KEYS[:2])
        ]

        acked: dict[str, bytes] = {}
        sub = asyncio.create_task(submit_spread(targets, proofs, 4, acked))
        # kill -9 the leader while submissions flow to both, once it has made batches
        deadline = time.monotonic() + 60
        while len(acked) < n // 3 or "sheaf_batch_size_count" not in _metrics(ports[0][1]):
            assert time.monotonic() < deadline and not sub.done(), (len(acked), "the leader made no batch")
            await asyncio.sleep(0.02)
        a.kill9()
        killed = time.monotonic()
        in_flight = len(acked)
        took = await wait_leader(ports[1][1], 4 * TTL)
        failover = time.monotonic() - killed
        assert took["lease"]["epoch"] == first["lease"]["epoch"] + 1
        await sub
        assert 0 < in_flight < len(proofs), "the kill was not during the submissions"
        assert len(acked) == len(proofs) and len(set(acked.values())) == len(proofs)
        await wait_all_finalized(targets[1], list(acked), timeout=120)
        n_aggs = await check_exactly_once(targets[1], chain_env, acked)
        print(f"FAILOVER kill9 leader: acked={len(acked)} aggregations={n_aggs} takeover_s={failover:.2f}")
        assert failover < 1.5 * TTL + 1.0
        assert 'sheaf_leader{instance="i1/' in _metrics(ports[1][1])
    finally:
        for p in ops:  # first: their long polls would hold an instance's graceful stop
            stop_process(p)
        for x in aggs:
            x.stop()


def _metrics(http_port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=2) as r:
        text: str = r.read().decode()
        return text


async def test_postgres_restart_under_load(
    chain_env: ChainEnv, pg_server: LocalPostgres, pg_url: str, tmp_path: Path
) -> None:
    """The database restarts (pg_ctl restart -m fast: every connection cut) while clients submit to
    an in-process aggregator on it: submissions in flight fail with STORE_UNAVAILABLE (retryable,
    never acked), the store and the lease reconnect, and every acked proof is FINALIZED on chain
    exactly once. Domain 2: the module's chain already holds the failover test's domain-1 posts."""
    proofs = proof_pool(240)[120:180]
    async with running_app(
        chain_env, tmp_path / "unused.db", db_url=pg_url, lease_ttl_s=2.0, domains=[2], default_domain=2
    ) as app:
        target = f"127.0.0.1:{app.grpc.port}"
        ops = [start_operator(target, k, tmp_path / f"op{i}.log") for i, k in enumerate(OPERATOR_KEYS[:2])]
        try:
            acked: dict[str, bytes] = {}
            refused: list[str] = []
            q = list(proofs)

            async def client() -> None:
                async with AsyncClient(target, timeout=10) as c:
                    while q:
                        p = q.pop()
                        try:
                            r = await c.submit(p.scheme, p.format, p.proof, vk=p.vk, public=p.public)
                            acked[r.proof_id] = bytes(r.statement_hash)
                        except AggregatorError as e:
                            assert e.status in RETRYABLE, e
                            refused.append(e.code)
                            q.append(p)
                            await asyncio.sleep(0.1)

            subs = asyncio.gather(*(client() for _ in range(3)))
            while len(acked) < len(proofs) // 3:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(pg_server.restart)
            await subs
            assert "STORE_UNAVAILABLE" in refused, refused  # the restart cut submissions in flight
            assert len(acked) == len(proofs)
            await wait_all_finalized(target, list(acked), timeout=60)
            await check_exactly_once(target, chain_env, acked, domain=2)
            st = app.lease.state()
            assert st["leader"] and app.lease.reachable
        finally:
            for p in ops:
                stop_process(p)
