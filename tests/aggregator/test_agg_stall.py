"""Stall visibility (issue 13): /readyz turns 503 with a named check, and the age gauges say which
domain, when the oldest queued proof (`batching`) or a domain's oldest unposted batch (`posting`)
is older than `stall_after_s`; it recovers once the domain moves again. Real anvil and registry,
in-process aggregator, real operator processes (started late on purpose)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import aiohttp
import pytest
from agg_helpers import (
    OPERATOR_KEYS,
    SUBMITTER_KEY,
    ChainEnv,
    deploy_registry,
    make_config,
    proof_pool,
    start_operator,
    stop_process,
    submit_all,
    wait_all_finalized,
)

from aggregator.app import App


async def _get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status, (await r.read()).decode()


async def _ready_until(port: int, want: int, timeout: float = 20) -> dict[str, bool]:
    deadline = time.monotonic() + timeout
    while True:
        code, body = await _get(port, "/readyz")
        if code == want:
            return dict(json.loads(body)["checks"])
        assert time.monotonic() < deadline, (code, body)
        await asyncio.sleep(0.2)


def _gauge(text: str, name: str, domain: int) -> float:
    m = re.search(rf'^{name}{{domain="{domain}"}} (\S+)$', text, re.M)
    assert m, f"{name} for domain {domain} not exposed"
    return float(m.group(1))


async def test_readyz_names_a_stalled_domain(
    chain_env: ChainEnv, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ops = chain_env.operators[:2]
    env = ChainEnv(chain_env.node, deploy_registry(chain_env.node.rpc_url, ops, 2), ops)
    # batches close only when forced (max_wait 10 min), no operator runs yet
    cfg = make_config(env, tmp_path / "agg.db", max_leaves=64, max_wait_ms=600_000, stall_after_s=2.0)
    app = App(cfg, submitter_key=SUBMITTER_KEY)
    await app.start()
    port = app.http.port
    target = f"127.0.0.1:{app.grpc.port}"
    workers = []
    try:
        assert (await _ready_until(port, 200))["posting"] is True
        acked = await submit_all(target, proof_pool(240)[60:63], clients=3)
        checks = await _ready_until(port, 503)  # the proofs sit QUEUED
        assert checks["batching"] is False and checks["posting"] is True and checks["chain"] is True
        _, text = await _get(port, "/metrics")
        assert _gauge(text, "sheaf_oldest_queued_proof_age_seconds", 1) > 2.0

        assert await app.service.batcher.make_batches(force=True) == 1
        await asyncio.sleep(1.5)  # gauges refresh every second
        checks = await _ready_until(port, 503)  # now the batch waits for signatures
        assert checks["posting"] is False and checks["batching"] is True, checks
        _, text = await _get(port, "/metrics")
        assert _gauge(text, "sheaf_oldest_unposted_batch_age_seconds", 1) > 2.0
        # the stall is logged once when it starts, not at every refresh (every second)
        await asyncio.sleep(2.5)
        logged = [r for r in caplog.records if "its oldest unposted batch" in r.getMessage()]
        assert len(logged) == 1, [r.getMessage() for r in logged]

        workers = [
            start_operator(target, k, tmp_path / f"op{i}.log") for i, k in enumerate(OPERATOR_KEYS[:2])
        ]
        await wait_all_finalized(target, list(acked), timeout=60)
        checks = await _ready_until(port, 200)
        assert checks == {"accepting": True, "chain": True, "posting": True, "batching": True}
    finally:
        for p in workers:
            stop_process(p)
        await app.stop()
