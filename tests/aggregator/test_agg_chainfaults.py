"""RPC outage (anvil stopped, restarted from its dumped state) and a reorg deeper than the confirmation
depth: ingest keeps acking, nothing is lost, nothing is posted twice."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

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
from eth_account import Account

from aggregator.app import App
from aggregator.chain import Chain
from deploy.anvil import Anvil, free_port


def _rpc(url: str, method: str, params: list[object]) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        out = json.loads(r.read())
    assert "error" not in out, out
    return out["result"]


async def test_rpc_outage_then_reorg(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "anvil-state.json"
    node = Anvil(port=port, block_time=0.5, extra_args=["--dump-state", str(state)]).start()
    app: App | None = None
    ops: list[Any] = []
    try:  # from here on: a failing start must not leave anvil running (it leaked when App.start failed)
        ops_addr = [Account.from_key(k).address for k in OPERATOR_KEYS]
        env = ChainEnv(node, deploy_registry(node.rpc_url, ops_addr, 2), ops_addr)
        app = App(make_config(env, tmp_path / "agg.db", rpc_retries=1), submitter_key=SUBMITTER_KEY)
        await app.start()
        target = f"127.0.0.1:{app.grpc.port}"
        ops = [start_operator(target, k, tmp_path / f"op{i}.log") for i, k in enumerate(OPERATOR_KEYS[:2])]
        pool = proof_pool(240)[200:240]
        first = await submit_all(target, pool[:12], clients=4)
        await wait_all_finalized(target, list(first), timeout=60)

        # outage: the node goes away (dumping its state); submissions are still acked durably
        node.stop()
        t0 = time.monotonic()
        during = await submit_all(target, pool[12:26], clients=4)
        assert len(during) == 14 and time.monotonic() - t0 < 10
        await asyncio.sleep(2.0)
        assert app.submitter.healthy is False
        assert app.metrics.counter_value("sheaf_chain_failures_total", code="RPC_UNAVAILABLE") >= 1
        node = Anvil(port=port, block_time=0.5, extra_args=["--load-state", str(state)]).start()
        env.node = node
        t_back = time.monotonic()
        # anvil can only reorg blocks it mined since --load-state ("Required data unavailable" before)
        restarted_at = int(str(_rpc(node.rpc_url, "eth_blockNumber", [])), 16)
        acked = {**first, **during}
        await wait_all_finalized(target, list(acked), timeout=90)
        assert app.submitter.healthy
        print(f"RELIABILITY rpc_outage acked={len(acked)} recover_s={time.monotonic() - t_back:.1f}")

        # reorg deeper than the confirmation depth (2): the newest aggregations vanish from the chain
        chain = Chain(node.rpc_url, env.registry)
        more = await submit_all(target, pool[26:], clients=4)
        # depth measured right before the reorg (blocks keep coming every 0.5 s), with a margin of 2
        last = await chain.next_aggregation_id(1) - 1
        newest = await chain.get_aggregation(1, last)
        assert newest is not None and newest.block_number > restarted_at
        head = await chain.head()
        depth = min(head - restarted_at, head - newest.block_number + 3)
        _rpc(node.rpc_url, "anvil_reorg", [depth, []])
        gone = await chain.next_aggregation_id(1) - 1
        assert gone < last, (gone, last)
        acked.update(more)
        t_reorg = time.monotonic()
        await asyncio.sleep(1.0)
        await wait_all_finalized(target, list(acked), timeout=90)
        assert app.metrics.counter_value("sheaf_chain_failures_total", code="REORGED") >= 1
        n = await check_exactly_once(target, env, acked)
        print(
            f"RELIABILITY reorg depth={depth} acked={len(acked)} aggregations={n} "
            f"recover_s={time.monotonic() - t_reorg:.1f}"
        )
    finally:
        for p in ops:
            stop_process(p)
        if app is not None:
            await app.stop()
        node.stop()
