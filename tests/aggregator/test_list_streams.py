"""The status streams (server-sent events) over the real parts they read, without a chain: a real
SQLite store behind its StoreThread, Changes, Reads and the explorer's routes on a real aiohttp
server. The store's transitions are the ones the batcher and the submitter make; each is followed
by Changes.notify() as they do. Checks that events arrive live, that a finished stream ends with
`end`, and that a server stopping closes the stream WITHOUT `end` (an EventSource then reconnects
with Last-Event-ID instead of giving up)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from explorer_helpers import sse

from aggregator import crypto, explorer
from aggregator.changes import Changes
from aggregator.reads import Reads
from aggregator.records import KIND_ATTESTED, BatchState, ChainInfo, NewProof, Status
from aggregator.store import SqliteStore, StoreThread
from sheaf.hashing import keccak256


@dataclass
class Parts:
    url: str
    db: StoreThread
    changes: Changes


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    db = StoreThread(SqliteStore(tmp_path / "s.db"))
    changes = Changes()
    app = web.Application()
    explorer.register(
        app, Reads(db, ChainInfo(31337, "0x" + "11" * 20), changes, 1), ChainInfo(31337, "0x" + "11" * 20)
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield Parts(f"http://127.0.0.1:{port}", db, changes)
    changes.close()
    await runner.cleanup()
    db.close()


def _proof(i: int) -> NewProof:
    st = keccak256(b"stream" + i.to_bytes(4, "big"))
    return NewProof(1, st, b"\x11" * 32, KIND_ATTESTED, "groth16", "snarkjs", b"p", b"vk", b"[]", None)


async def _open(p: Parts, path: str) -> tuple[aiohttp.ClientSession, AsyncIterator[tuple[str, Any, str]]]:
    s = aiohttp.ClientSession()
    r = await s.get(p.url + path)
    assert r.status == 200
    return s, sse(r).__aiter__()


async def _next(it: AsyncIterator[tuple[str, Any, str]]) -> tuple[str, Any, str]:
    return await asyncio.wait_for(it.__anext__(), 5)


async def test_proof_stream_is_live_and_ends_after_finalized(parts: Parts) -> None:
    store = parts.db.store
    (r,) = await parts.db.run(store.insert_proofs, [_proof(1)])
    s, it = await _open(parts, f"/v1/proofs/{r.proof_id}/events")
    try:
        assert [(await _next(it))[1]["status"] for _ in range(3)] == ["RECEIVED", "VALID", "QUEUED"]
        row = await parts.db.run(store.get_proof, r.proof_id)
        assert row is not None
        b = await parts.db.run(
            store.create_batch, 1, KIND_ATTESTED, [r.proof_id], crypto.merkle_root([row.statement_hash])
        )
        parts.changes.notify()
        assert (await _next(it))[1]["status"] == "AGGREGATING"
        await parts.db.run(
            store.set_batch_state,
            b.batch_id,
            [BatchState.PENDING],
            BatchState.FINALIZED,
            tx_hash=b"\x99" * 32,
            block_number=7,
            proof_status=Status.FINALIZED,
        )
        parts.changes.notify()
        name, data, ev_id = await _next(it)
        assert (name, data["status"]) == ("status", "FINALIZED") and ev_id
        assert (await _next(it))[0] == "end"
        with pytest.raises(StopAsyncIteration):
            await _next(it)
    finally:
        await s.close()


async def test_batch_stream_follows_the_batch(parts: Parts) -> None:
    store = parts.db.store
    (r,) = await parts.db.run(store.insert_proofs, [_proof(2)])
    row = await parts.db.run(store.get_proof, r.proof_id)
    assert row is not None
    b = await parts.db.run(store.create_batch, 1, KIND_ATTESTED, [r.proof_id], row.statement_hash)
    s, it = await _open(parts, f"/v1/batches/{b.batch_id}/events")
    try:
        assert (await _next(it))[1]["state"] == "pending"
        tx = b"\x42" * 32
        await parts.db.run(
            store.set_batch_state, b.batch_id, [BatchState.PENDING], BatchState.SUBMITTED, tx_hash=tx
        )
        parts.changes.notify()
        got = (await _next(it))[1]
        assert (
            got["state"] == "submitted" and got["tx_hash"] == "0x" + tx.hex() and got["block_number"] is None
        )
        await parts.db.run(
            store.set_batch_state, b.batch_id, [BatchState.SUBMITTED], BatchState.FINALIZED, block_number=9
        )
        parts.changes.notify()
        got = (await _next(it))[1]
        assert got["state"] == "finalized" and got["block_number"] == 9
        assert (await _next(it))[0] == "end"
    finally:
        await s.close()


async def test_stopping_server_closes_streams_without_end(parts: Parts) -> None:
    (r,) = await parts.db.run(parts.db.store.insert_proofs, [_proof(3)])
    s, it = await _open(parts, f"/v1/proofs/{r.proof_id}/events")
    try:
        for _ in range(3):
            await _next(it)
        parts.changes.close()  # what the service's stop() does
        with pytest.raises(StopAsyncIteration):
            await _next(it)  # closed, and no `end` came first
    finally:
        await s.close()
