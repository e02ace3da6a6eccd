"""The store query behind the explorer's overview charts (issue 16), once per backend of
test_agg_store.BACKENDS: status events newest first, `limit` at a time, paging back by seq."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_agg_store import BACKENDS

from aggregator import crypto
from aggregator.changes import Changes
from aggregator.reads import Reads
from aggregator.records import KIND_ATTESTED, BatchState, ChainInfo, NewProof, Status
from aggregator.store import SqliteStore, Store, StoreThread
from sheaf.hashing import keccak256


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = BACKENDS[request.param](request, tmp_path)()
    yield s
    s.close()


def _p(i: int) -> NewProof:
    st = keccak256(b"overview" + i.to_bytes(4, "big"))
    return NewProof(1, st, b"\x11" * 32, KIND_ATTESTED, "groth16", "snarkjs", b"p", b"vk", b"[]", None, None)


def test_status_times_page_back_from_the_newest_event(store: Store) -> None:
    items = [_p(i) for i in range(3)]
    for it in items:
        store.insert_proofs([it])
    pair = [items[0], items[1]]
    root = crypto.merkle_root([x.statement_hash for x in pair])
    b = store.create_batch(1, KIND_ATTESTED, [x.proof_id for x in pair], root)
    assert store.set_batch_state(
        b.batch_id,
        [BatchState.PENDING],
        BatchState.FINALIZED,
        tx_hash=b"\x01" * 32,
        block_number=7,
        proof_status=Status.FINALIZED,
    )
    every = sorted(
        (e for it in items for e in store.events_after(it.proof_id, 0)), key=lambda e: e.seq, reverse=True
    )
    want = [(e.seq, e.status, e.ts_ms) for e in every]
    assert [e.status for e in every].count(Status.FINALIZED) == 2
    assert store.status_times(1000) == want
    first = store.status_times(3)
    assert first == want[:3] and first[0][1] == Status.FINALIZED
    assert store.status_times(4, before_seq=first[-1][0]) == want[3:7]  # the next page
    assert store.status_times(10, before_seq=want[-1][0]) == []


async def test_reads_status_times_since_stops_at_the_window_or_the_bound(tmp_path: Path) -> None:
    """Reads.status_times_since over a real SQLite store: every event of the window (several
    pages), none before it, and `cut` when the bound ends the read first."""
    db = StoreThread(SqliteStore(tmp_path / "a.db"))
    try:
        for i in range(4):  # 3 events each (RECEIVED, VALID, QUEUED)
            await db.run(db.store.insert_proofs, [_p(i)])
        reads = Reads(db, ChainInfo(31337, "0x" + "00" * 20), Changes(), 1)
        every = await db.run(db.store.status_times, 100)
        assert len(every) == 12
        got, cut = await reads.status_times_since(0, 100, page=5)
        assert got == [(st, ts) for _, st, ts in every] and not cut
        got, cut = await reads.status_times_since(0, 7, page=5)
        assert got == [(st, ts) for _, st, ts in every[:7]] and cut
        got, cut = await reads.status_times_since(every[0][2] + 1, 100, page=5)
        assert got == [] and not cut
    finally:
        db.close()
