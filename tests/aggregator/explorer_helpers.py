"""Helpers for tests/aggregator/test_explorer.py: the running system the explorer is looked at in
(a real anvil with SheafRegistry, the in-process aggregator, two operator processes, real proofs
posted on chain, one whole inference of three chained slices among them) and a reader of server-sent
events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import sheaf_client as sc
from agg_helpers import (
    OPERATOR_KEYS,
    Input,
    anvil_with_registry,
    proof_pool,
    running_app,
    start_operator,
    stop_process,
)
from agg_inference_helpers import chain

from aggregator.client import AsyncClient


@dataclass
class Live:
    url: str  # the aggregator's HTTP base URL
    target: str  # its gRPC address
    registry: str
    rpc_url: str
    proof_ids: list[str]  # submitted in this order, all FINALIZED (the inference's slices first)
    statements: list[str]  # 0x-hex, same order
    inference_id: str  # a whole inference (agg_inference_helpers.chain: 3 proven slices), FINALIZED
    model_id: str
    spare: list[Input] = field(default_factory=list)
    routes: set[tuple[str, str]] = field(default_factory=set)  # (method, path) the HTTP server serves

    async def submit_one(self) -> str:
        p = self.spare.pop()
        async with AsyncClient(self.target) as c:
            r = await c.submit(p.scheme, p.format, p.proof, vk=p.vk, public=p.public)
        return str(r.proof_id)


@contextlib.asynccontextmanager
async def live_system(tmp: Path, n: int = 4, db_url: str = "") -> AsyncIterator[Live]:
    """n proofs submitted one after another and followed to FINALIZED (real batches on anvil);
    `db_url`: on PostgreSQL instead of SQLite."""
    pool = proof_pool(240)[200:210]  # the e2e tests use lower indexes; each test has its own chain
    with anvil_with_registry() as env:
        async with running_app(env, tmp / "agg.db", db_url=db_url) as app:
            deadline = time.monotonic() + 10
            while db_url and not app.lease.leading:  # one instance: it leads at once
                assert time.monotonic() < deadline, "no lease"
                await asyncio.sleep(0.02)
            target = f"127.0.0.1:{app.grpc.port}"
            ops = [
                start_operator(target, k, tmp / f"op{i}.log", env.registry)
                for i, k in enumerate(OPERATOR_KEYS[:2])
            ]
            try:
                ids, sts = [], []
                ch = chain()  # one inference first: its three slices are the oldest proofs
                async with sc.AsyncClient(target) as sdk:
                    mid = await sdk.register_model(
                        [
                            sc.SliceSpec(
                                m.proven,
                                m.scheme,
                                "0x" + m.vk_hash.hex(),
                                m.public_input_count,
                                m.in_commit_index,
                                m.out_commit_index,
                                m.output_indices,
                            )
                            for m in ch.model
                        ]
                    )
                    inf = await sdk.submit_inference(
                        mid,
                        [
                            sc.SliceInput(p.format, p.proof, vk=p.vk, public=p.public)
                            for p in (ch.proofs["s0"], ch.proofs["s1"], ch.proofs["s2"])
                        ],
                    )
                ids += inf.proof_ids
                sts += ["0x" + pid.split("-")[1] for pid in inf.proof_ids]
                async with AsyncClient(target) as c:
                    for p in pool[:n]:
                        r = await c.submit(p.scheme, p.format, p.proof, vk=p.vk, public=p.public)
                        ids.append(str(r.proof_id))
                        sts.append("0x" + bytes(r.statement_hash).hex())
                    for pid in ids:
                        await c.wait_finalized(pid, 60)
                yield Live(
                    f"http://127.0.0.1:{app.http.port}",
                    target,
                    app.chain.registry,
                    env.node.rpc_url,
                    ids,
                    sts,
                    inf.inference_id,
                    mid,
                    list(pool[n:]),
                    {
                        (r.method, r.resource.canonical)
                        for r in app.http.app.router.routes()
                        if r.method != "HEAD" and r.resource is not None
                    },
                )
            finally:
                for o in ops:
                    stop_process(o)


def parse_sse(text: str) -> Iterator[tuple[str, Any, str]]:
    """(event name, parsed data, id) per event of a text/event-stream body; comments and `retry`
    lines are not events."""
    for block in text.split("\n\n"):
        name, data, ev_id = "message", "", ""
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
            elif line.startswith("id: "):
                ev_id = line[4:]
        if data:
            yield name, json.loads(data), ev_id


async def sse(r: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, Any, str]]:
    """The events of a streaming response as they arrive, until the server closes it."""
    buf = ""
    async for chunk in r.content.iter_any():
        buf += chunk.decode()
        while "\n\n" in buf:
            block, buf = buf.split("\n\n", 1)
            for ev in parse_sse(block):
                yield ev
