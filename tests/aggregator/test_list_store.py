"""The store's list queries (issue 16: list APIs, explorer), once per backend of test_agg_store.BACKENDS:
newest first, cursors that page through everything exactly once, filters that combine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_agg_store import BACKENDS

from aggregator import crypto
from aggregator.records import KIND_ATTESTED, BatchState, NewProof, Status
from aggregator.store import Store
from sheaf.hashing import keccak256

OpenStore = Callable[[], Store]
ALICE, BOB = "0x" + "aa" * 20, "0x" + "bb" * 20


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = BACKENDS[request.param](request, tmp_path)()
    yield s
    s.close()


def _p(i: int, domain: int = 1, prover: str | None = None, scheme: str = "groth16") -> NewProof:
    st = keccak256(b"list" + i.to_bytes(4, "big"))
    vk = b"\x22" * 32 if scheme == "plonk" else b"\x11" * 32
    return NewProof(domain, st, vk, KIND_ATTESTED, scheme, "snarkjs", b"p%d" % i, b"vk", b"[]", None, prover)


def _fill(s: Store) -> list[NewProof]:
    items = [
        _p(i, domain=1 + i % 2, prover=(ALICE, BOB, None)[i % 3], scheme=("groth16", "plonk")[i % 4 == 3])
        for i in range(11)
    ]
    for it in items:  # one commit each: insertion order is the listing order
        s.insert_proofs([it])
    return items


def test_proofs_page_newest_first_exactly_once(store: Store) -> None:
    items = _fill(store)
    seen: list[str] = []
    before = None
    pages = 0
    while True:
        page = store.list_proofs(4, before)
        if not page:
            break
        pages += 1
        assert [e.cursor for e in page] == sorted((e.cursor for e in page), reverse=True)
        seen += [e.row.proof_id for e in page]
        before = page[-1].cursor
    assert pages == 3
    assert seen == [it.proof_id for it in reversed(items)]
    first = store.list_proofs(1)[0]
    assert first.prover == BOB and first.created_ms > 0 and first.row.status == Status.QUEUED


def test_proof_filters_combine(store: Store) -> None:
    items = _fill(store)

    def ids(**kw: object) -> list[str]:
        return [e.row.proof_id for e in store.list_proofs(100, **kw)]  # type: ignore[arg-type]

    assert ids(prover=ALICE) == [it.proof_id for it in reversed(items) if it.prover == ALICE]
    assert ids(scheme="plonk") == [it.proof_id for it in reversed(items) if it.scheme == "plonk"]
    assert ids(domain_id=2, prover=BOB) == [
        it.proof_id for it in reversed(items) if it.domain_id == 2 and it.prover == BOB
    ]
    assert ids(statement_hash=items[5].statement_hash) == [items[5].proof_id]
    assert ids(vk_hash=b"\x22" * 32) == ids(scheme="plonk")
    assert ids(status=Status.FINALIZED) == []
    # a batch moves three proofs out of QUEUED
    rows = store.take_queued(1, KIND_ATTESTED, 3)
    store.create_batch(
        1, KIND_ATTESTED, [r.proof_id for r in rows], crypto.merkle_root([r.statement_hash for r in rows])
    )
    assert sorted(ids(status=Status.AGGREGATING)) == sorted(r.proof_id for r in rows)
    assert len(ids(status=Status.QUEUED)) == len(items) - 3
    # a cursor below every row: an empty page, not an error
    assert store.list_proofs(10, 1) == []


def test_batches_page_and_filter(store: Store) -> None:
    for i in range(12):
        store.insert_proofs([_p(i, domain=1 + i % 2)])
    made = []
    for d in (1, 2, 1, 2, 1):
        rows = store.take_queued(d, KIND_ATTESTED, 2)
        made.append(
            store.create_batch(
                d,
                KIND_ATTESTED,
                [r.proof_id for r in rows],
                crypto.merkle_root([r.statement_hash for r in rows]),
            )
        )
    tx = b"\x77" * 32
    assert store.set_batch_state(made[1].batch_id, [BatchState.PENDING], BatchState.SUBMITTED, tx_hash=tx)
    all_ids = [b.batch_id for b in store.list_batches(100)]
    assert all_ids == sorted((b.batch_id for b in made), reverse=True)
    p1 = store.list_batches(3)
    p2 = store.list_batches(3, p1[-1].batch_id)
    assert [b.batch_id for b in p1 + p2] == all_ids
    assert [b.batch_id for b in store.list_batches(100, domain_id=1)] == [
        made[4].batch_id,
        made[2].batch_id,
        made[0].batch_id,
    ]
    assert [b.batch_id for b in store.list_batches(100, state=BatchState.SUBMITTED)] == [made[1].batch_id]
    assert [b.batch_id for b in store.list_batches(100, tx_hash=tx)] == [made[1].batch_id]
    assert [b.batch_id for b in store.list_batches(100, root=made[3].root)] == [made[3].batch_id]
    assert store.list_batches(100, kind="recursive") == []
