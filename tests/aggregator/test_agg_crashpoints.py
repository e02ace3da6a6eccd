"""Crash at each named durable step (aggregator.crashpoints, SHEAF_TEST_CRASH_AT), restart without
the hook: every acked proof is FINALIZED, on chain exactly once, ids contiguous. A real `aggregator
run` process, real operator processes, a fresh registry per step on the shared anvil."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from agg_helpers import (
    OPERATOR_KEYS,
    AggregatorProc,
    ChainEnv,
    check_exactly_once,
    deploy_registry,
    proof_pool,
    start_operator,
    stop_process,
    submit_all,
    wait_all_finalized,
    write_config,
)

from deploy.anvil import free_port

# attest:2 is the batch's second (threshold-th) signature: before issue 13's fix the process died
# between storing it and promoting the batch, and nothing ever promoted it again.
STEPS = ("ingest", "batch", "attest:1", "attest:2", "promote", "post_sent", "post_mined", "finalize")


async def wait_exit(agg: AggregatorProc, timeout: float) -> int:
    assert agg.p is not None
    deadline = time.monotonic() + timeout
    while agg.p.poll() is None:
        assert time.monotonic() < deadline, "the crash hook never fired"
        await asyncio.sleep(0.05)
    return agg.p.returncode


@pytest.mark.parametrize("step", STEPS)
async def test_crash_at_step(chain_env: ChainEnv, tmp_path: Path, step: str) -> None:
    ops = chain_env.operators[:2]
    env = ChainEnv(chain_env.node, deploy_registry(chain_env.node.rpc_url, ops, 2), ops)
    pool = proof_pool(240)
    first, second = pool[:4], pool[4:7]  # one full batch (max_leaves 4), then a partial one
    gport, hport = free_port(), free_port()
    cfg = tmp_path / "sheaf.toml"
    write_config(cfg, env, tmp_path / "agg.db", gport, hport, max_leaves=4)
    target = f"127.0.0.1:{gport}"
    agg = AggregatorProc(cfg, tmp_path / "aggregator.log")
    agg.start(SHEAF_TEST_CRASH_AT=step)
    workers = [start_operator(target, k, tmp_path / f"op{i}.log") for i, k in enumerate(OPERATOR_KEYS[:2])]
    try:
        await agg.wait_ready()
        sub = asyncio.create_task(submit_all(target, first, clients=4))
        assert await wait_exit(agg, 60) == 137
        t0 = time.monotonic()
        agg.start()  # no hook
        acked = await sub
        acked.update(await submit_all(target, second, clients=3))
        assert len(acked) == len(first) + len(second)
        await wait_all_finalized(target, list(acked), timeout=60)
        recovered = time.monotonic() - t0
        n = await check_exactly_once(target, env, acked)
        assert n >= 2
        print(f"RELIABILITY crash_at={step} acked={len(acked)} aggregations={n} recover_s={recovered:.1f}")
    finally:
        agg.stop()
        for p in workers:
            stop_process(p)
