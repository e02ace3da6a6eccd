"""The store query behind the explorer's overview charts (issue 16), once per backend of
test_agg_store.BACKENDS: the newest status events, newest first, at most `limit`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_agg_store import BACKENDS

from aggregator import crypto
from aggregator.records import KIND_ATTESTED, BatchState, NewProof, Status
from aggregator.store import Store
from sheaf.hashing import keccak256


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = BACKENDS[request.param](request, tmp_path)()
    yield s
    s.close()


def _p(i: int) -> NewProof:
    st = keccak256(b"overview" + i.to_bytes(4, "big"))
    return NewProof(1, st, b"\x11" * 32, KIND_ATTESTED, "groth16", "snarkjs", b"p", b"vk", b"[]", None, None)


def test_latest_status_times_are_the_newest_events_newest_first(store: Store) -> None:
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
    assert [e.status for e in every].count(Status.FINALIZED) == 2
    assert store.latest_status_times(1000) == [(e.status, e.ts_ms) for e in every]
    assert store.latest_status_times(3) == [(e.status, e.ts_ms) for e in every[:3]]
    assert store.latest_status_times(3)[0][0] == Status.FINALIZED
