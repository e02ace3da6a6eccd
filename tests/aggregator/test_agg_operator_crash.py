"""Operators killed mid-signature (issue 13): two of three operators (more than n-k = 1) die right
after signing a batch, before the signature reaches the aggregator (`SHEAF_TEST_CRASH_AT=sign`,
`os._exit(137)` as kill -9). The batch must wait (one signature of the two needed), and once they
are back (same `--state` files, no hook) every acked proof is FINALIZED exactly once. Real anvil and
registry (2-of-3), in-process aggregator, real operator processes."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from agg_helpers import (
    OPERATOR_KEYS,
    SUBMITTER_KEY,
    ChainEnv,
    check_exactly_once,
    deploy_registry,
    make_config,
    proof_pool,
    start_operator,
    stop_process,
    submit_all,
    wait_all_finalized,
)

from aggregator.app import App
from aggregator.client import AsyncClient
from sheaf.v1 import aggregator_pb2 as pb


async def _wait_exit(p: object, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (rc := p.poll()) is None:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the operator's crash hook never fired"
        await asyncio.sleep(0.05)
    return int(rc)


async def test_operators_killed_mid_signature_then_back(chain_env: ChainEnv, tmp_path: Path) -> None:
    ops = chain_env.operators[:3]
    env = ChainEnv(chain_env.node, deploy_registry(chain_env.node.rpc_url, ops, 2), ops)
    cfg = make_config(env, tmp_path / "agg.db", max_leaves=3, max_wait_ms=300)
    app = App(cfg, submitter_key=SUBMITTER_KEY)
    await app.start()
    target = f"127.0.0.1:{app.grpc.port}"
    state = [tmp_path / f"op{i}.state.json" for i in range(3)]
    crash = {"SHEAF_TEST_CRASH_AT": "sign"}
    procs = [
        start_operator(target, OPERATOR_KEYS[i], tmp_path / f"op{i}.log", state=state[i], extra_env=crash)
        for i in range(2)
    ]
    procs.append(start_operator(target, OPERATOR_KEYS[2], tmp_path / "op2.log", state=state[2]))
    try:
        acked = await submit_all(target, proof_pool(240)[66:69], clients=3)
        # both die after signing, before sending: exit 137, each root already in its --state file
        assert [await _wait_exit(p, 60) for p in procs[:2]] == [137, 137]
        signed = [json.loads(s.read_text()) for s in state[:2]]
        assert all(len(rows) == 1 for rows in signed), signed
        root = signed[0][0][4]
        assert signed[1][0][4] == root and signed[0][0][5] == 3  # same root, 3 leaves

        # one live signature of the 2 needed: the batch waits, nothing is posted
        await asyncio.sleep(2.0)
        async with AsyncClient(target, timeout=5) as c:
            states = {(await c.status(pid)).status for pid in acked}
        assert states == {pb.AGGREGATING}, states

        # back, same state files, no hook: they sign the same root again and the batch posts
        back = time.monotonic()
        procs[:2] = [
            start_operator(target, OPERATOR_KEYS[i], tmp_path / f"op{i}.back.log", state=state[i])
            for i in range(2)
        ]
        final = await wait_all_finalized(target, list(acked), timeout=60)
        print(f"operators back -> all FINALIZED in {time.monotonic() - back:.1f} s")  # performance.md
        assert {(f.domain_id, f.aggregation_id) for f in final.values()} == {(1, 1)}
        async with AsyncClient(target, timeout=5) as c:
            agg = await c.aggregation(1, 1)
        assert bytes(agg.root).hex() == root  # the root they signed before dying is the one posted
        assert await check_exactly_once(target, env, acked) == 1
    finally:
        for p in procs:
            stop_process(p)
        await app.stop()
