"""Crash safety: kill -9 the aggregator process at random moments while 8 clients submit 200 distinct
real proofs; after restarts every acked submission is FINALIZED and on chain exactly once."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from pathlib import Path

from agg_helpers import (
    OPERATOR_KEYS,
    AggregatorProc,
    ChainEnv,
    check_exactly_once,
    proof_pool,
    start_operator,
    stop_process,
    submit_all,
    wait_all_finalized,
    write_config,
)

from deploy.anvil import free_port


async def test_kill9_under_concurrent_load(chain_env: ChainEnv, tmp_path: Path) -> None:
    # SHEAF_CRASH_PROOFS=500: issue 13's load (docs/performance.md, Reliability); 200 by default
    n = int(os.environ.get("SHEAF_CRASH_PROOFS", "200"))
    proofs = proof_pool(max(240, n))[:n]
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
        t0 = time.monotonic()
        agg.start()
        await wait_all_finalized(target, list(acked), timeout=180)
        n_aggs = await check_exactly_once(target, chain_env, acked)
        print(
            f"RELIABILITY kill9 x{kills + 1} acked={len(acked)} aggregations={n_aggs} "
            f"recover_s={time.monotonic() - t0:.1f}"
        )
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
