"""Store and state machine, against the `Store` interface: every test taking `open_store` runs once
per backend in BACKENDS (a real SQLite file; a real PostgreSQL server started by the tests,
aggregator/pg_local.py), reopening it to check durability. A new backend plugs in with one line there."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aggregator import crypto
from aggregator.metrics import Metrics
from aggregator.records import KIND_ATTESTED, BatchState, NewProof, Status
from aggregator.store import MIGRATIONS, SqliteStore, Store, StoreThread
from aggregator.store_pg import PostgresStore
from sheaf.hashing import keccak256

OpenStore = Callable[[], Store]

# name -> (opener of a fresh, empty store for this test (its tmp dir; fixtures through the request)):
# returns a function that opens the SAME store each time it is called (a reopen = a new
# connection, as after a crash). PostgreSQL: a fresh schema of the session's real server.
BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], OpenStore]] = {
    "sqlite": lambda req, tmp: lambda: SqliteStore(tmp / "a.db"),
    "postgres": lambda req, tmp: functools.partial(PostgresStore, req.getfixturevalue("pg_url")),
}


@pytest.fixture(params=sorted(BACKENDS))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    yield BACKENDS[request.param](request, tmp_path)


def test_backends_implement_the_whole_store_protocol(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Every Store method exists on every backend with the same parameters (names, kinds,
    defaults): the aggregator's parts call them by keyword too."""
    members = [n for n, v in vars(Store).items() if callable(v) and not n.startswith("_")]
    assert {"insert_proofs", "create_batch", "fail_batch", "set_batch_state"} <= set(members)
    for name, opener in BACKENDS.items():
        s = opener(request, tmp_path)()
        try:
            for m in members:
                impl = getattr(s, m, None)
                assert callable(impl), f"{name} store has no {m}()"
                want = list(inspect.signature(getattr(Store, m)).parameters.values())[1:]
                got = list(inspect.signature(impl).parameters.values())
                assert [(p.name, p.kind, p.default) for p in got] == [
                    (p.name, p.kind, p.default) for p in want
                ], f"{name}.{m}{inspect.signature(impl)} differs from Store.{m}"
        finally:
            s.close()


async def test_store_thread_runs_every_call_on_one_thread(open_store: OpenStore) -> None:
    db = StoreThread(open_store())
    seen: set[int] = set()

    def which() -> int:
        seen.add(threading.get_ident())
        return threading.get_ident()

    ids = await asyncio.gather(*(db.run(which) for _ in range(8)))
    assert len(seen) == 1 and ids[0] != threading.get_ident()
    assert await db.run(db.store.schema_version) >= 1
    db.close()


def _p(i: int, domain: int = 1, prover: str | None = None) -> NewProof:
    st = keccak256(b"stmt" + i.to_bytes(4, "big"))
    return NewProof(
        domain,
        st,
        b"\x11" * 32,
        KIND_ATTESTED,
        "groth16",
        "snarkjs",
        b"proof%d" % i,
        b"vk",
        b"[]",
        None,
        prover,
    )


def test_sqlite_schema_and_pragmas(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "a.db")
    assert s.schema_version() == len(MIGRATIONS)
    assert s.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    s.insert_proofs([_p(1), _p(2)])
    s.close()
    # a fresh connection (as after a crash) sees every acked row
    raw = sqlite3.connect(tmp_path / "a.db")
    assert raw.execute("SELECT COUNT(*) FROM proofs").fetchone()[0] == 2
    raw.close()
    s2 = SqliteStore(tmp_path / "a.db")  # reopening does not re-run migrations
    assert s2.schema_version() == len(MIGRATIONS)
    s2.close()


def test_insert_is_durable_and_idempotent(open_store: OpenStore) -> None:
    s = open_store()
    r = s.insert_proofs([_p(1), _p(2), _p(1)])
    assert [x.duplicate for x in r] == [False, False, True]
    assert r[0].proof_id == r[2].proof_id
    # same statement in another domain is a different submission
    assert s.insert_proofs([_p(1, domain=2)])[0].duplicate is False
    s.close()
    s = open_store()  # as after a crash: every acked row is there
    assert sum(s.count_by_status().values()) == 3
    again = s.insert_proofs([_p(2)])
    assert again[0].duplicate and again[0].proof_id == r[1].proof_id
    evs = s.events_after(r[0].proof_id, 0)
    assert [e.status for e in evs] == [Status.RECEIVED, Status.VALID, Status.QUEUED]
    s.close()


def test_batch_lifecycle_and_sequential_ids(open_store: OpenStore) -> None:
    s = open_store()
    s.insert_proofs([_p(i) for i in range(5)])
    rows = s.take_queued(1, KIND_ATTESTED, 3)
    assert len(rows) == 3
    root = crypto.merkle_root([r.statement_hash for r in rows])
    b1 = s.create_batch(1, KIND_ATTESTED, [r.proof_id for r in rows], root)
    assert b1.aggregation_id == 1 and b1.state == BatchState.PENDING and b1.leaf_count == 3
    assert [p.leaf_index for p in s.batch_proofs(b1.batch_id)] == [0, 1, 2]
    assert all(p.status == Status.AGGREGATING for p in s.batch_proofs(b1.batch_id))
    # taking an already batched proof again fails atomically (nothing half-written)
    with pytest.raises(RuntimeError):
        s.create_batch(1, KIND_ATTESTED, [rows[0].proof_id], root)
    assert s.get_batch(b1.batch_id + 1) is None
    rest = s.take_queued(1, KIND_ATTESTED, 10)
    assert len(rest) == 2
    b2 = s.create_batch(
        1, KIND_ATTESTED, [r.proof_id for r in rest], crypto.merkle_root([r.statement_hash for r in rest])
    )
    assert b2.aggregation_id == 2
    # the chain may be ahead (ids used by an earlier database): the floor wins
    s.insert_proofs([_p(99)])
    b3 = s.create_batch(1, KIND_ATTESTED, [_p(99).proof_id], b"\x05" * 32, min_id=10)
    assert b3.aggregation_id == 10
    # compare-and-set: wrong expected state changes nothing
    assert not s.set_batch_state(b1.batch_id, [BatchState.SIGNED], BatchState.SUBMITTED)
    assert s.set_batch_state(b1.batch_id, [BatchState.PENDING], BatchState.SIGNED)
    assert s.set_batch_state(
        b1.batch_id,
        [BatchState.SIGNED],
        BatchState.SUBMITTED,
        tx_hash=b"\x01" * 32,
        proof_status=Status.SUBMITTED,
    )
    assert s.set_batch_state(
        b1.batch_id,
        [BatchState.SUBMITTED],
        BatchState.FINALIZED,
        block_number=7,
        proof_status=Status.FINALIZED,
    )
    b = s.get_batch(b1.batch_id)
    assert b is not None and b.tx_hash == b"\x01" * 32 and b.block_number == 7
    p0 = s.get_proof(rows[0].proof_id)
    assert p0 is not None and p0.status == Status.FINALIZED
    assert [e.status for e in s.events_after(rows[0].proof_id, 0)][-3:] == [
        Status.AGGREGATING,
        Status.SUBMITTED,
        Status.FINALIZED,
    ]
    s.close()


def test_failed_batch_releases_its_id_and_later_ones(open_store: OpenStore) -> None:
    s = open_store()
    s.insert_proofs([_p(i) for i in range(4)])
    rows = s.take_queued(1, KIND_ATTESTED, 4)
    a = s.create_batch(1, KIND_ATTESTED, [r.proof_id for r in rows[:2]], b"\x01" * 32)
    b = s.create_batch(1, KIND_ATTESTED, [r.proof_id for r in rows[2:]], b"\x02" * 32)
    assert (a.aggregation_id, b.aggregation_id) == (1, 2)
    bad = rows[0].statement_hash
    assert s.fail_batch(a.batch_id, "VERIFICATION_FAILED", [bad])
    # both lose their ids (ids are sequential on chain), the bad proof FAILED, the others re-queued
    assert s.get_batch(a.batch_id).state == BatchState.FAILED  # type: ignore[union-attr]
    assert s.get_batch(b.batch_id).aggregation_id is None  # type: ignore[union-attr]
    statuses = {r.proof_id: s.get_proof(r.proof_id).status for r in rows}  # type: ignore[union-attr]
    assert statuses[rows[0].proof_id] == Status.FAILED
    assert [statuses[r.proof_id] for r in rows[1:]] == [Status.QUEUED] * 3
    again = s.take_queued(1, KIND_ATTESTED, 10)
    c = s.create_batch(1, KIND_ATTESTED, [r.proof_id for r in again], b"\x03" * 32)
    assert c.aggregation_id == 1
    s.close()


def test_failed_statement_can_be_resubmitted(open_store: OpenStore) -> None:
    """Issue 13: a FAILED statement used to answer (FAILED, duplicate) forever; resubmitting it is
    a new attempt (QUEUED, not a duplicate, the new proof bytes kept); any other status stays a
    duplicate."""
    s = open_store()
    s.insert_proofs([_p(1), _p(2)])
    rows = s.take_queued(1, KIND_ATTESTED, 2)
    b = s.create_batch(1, KIND_ATTESTED, [r.proof_id for r in rows], b"\x01" * 32)
    assert s.fail_batch(b.batch_id, "VERIFICATION_FAILED", [rows[0].statement_hash])
    failed = s.get_proof(rows[0].proof_id)
    assert failed is not None and failed.status == Status.FAILED
    retry = dataclasses.replace(_p(1), proof=b"another-proof")
    r = s.insert_proofs([retry, _p(2)])
    assert [(x.proof_id, x.duplicate, x.status) for x in r] == [
        (rows[0].proof_id, False, Status.QUEUED),
        (rows[1].proof_id, True, Status.QUEUED),
    ]
    s.close()
    s = open_store()
    again = s.get_proof(rows[0].proof_id)
    assert again is not None and again.status == Status.QUEUED and again.reason_code == ""
    assert again.proof == b"another-proof" and again.batch_id is None
    evs = [e.status for e in s.events_after(rows[0].proof_id, 0)]
    assert evs[-4:] == [Status.FAILED, Status.RECEIVED, Status.VALID, Status.QUEUED]
    assert len(s.take_queued(1, KIND_ATTESTED, 10)) == 2
    s.close()


def test_nonce_replay(open_store: OpenStore) -> None:
    s = open_store()
    assert s.check_and_bump_nonce("0xabc", 5)
    assert not s.check_and_bump_nonce("0xabc", 5)
    assert not s.check_and_bump_nonce("0xabc", 4)
    assert s.check_and_bump_nonce("0xabc", 6)
    s.close()


def test_keys_queue_groups_and_quota(open_store: OpenStore) -> None:
    s = open_store()
    assert s.get_vk(b"\x11" * 32) is None
    s.put_vk(b"\x11" * 32, "groth16", "snarkjs", b"vk", None)
    s.put_vk(b"\x11" * 32, "plonk", "gnark", b"other", b"s")  # first registration wins
    assert s.get_vk(b"\x11" * 32) == ("groth16", "snarkjs", b"vk", None)
    s.insert_proofs([_p(1, prover="0xa"), _p(2, prover="0xa"), _p(3, domain=2)])
    groups = {(d, k): n for d, k, n, _ in s.queued_groups()}
    assert groups == {(1, KIND_ATTESTED): 2, (2, KIND_ATTESTED): 1}
    assert s.queued_count("0xa") == 2 and s.queued_count("0xb") == 0
    assert s.count_by_status() == {Status.QUEUED: 3}
    s.close()


def test_recursive_batch_takes_its_id_when_proved(open_store: OpenStore) -> None:
    s = open_store()
    s.insert_proofs([_p(i) for i in range(3)])
    rows = s.take_queued(1, KIND_ATTESTED, 3)
    rec = s.create_batch(1, "recursive", [rows[0].proof_id], b"\x01" * 32, defer_id=True)
    att = s.create_batch(1, KIND_ATTESTED, [rows[1].proof_id], b"\x02" * 32)
    assert rec.aggregation_id is None and att.aggregation_id == 1  # proving holds up no one
    done = s.finish_proving(rec.batch_id, b"outer", min_id=1)
    assert done is not None and done.aggregation_id == 2 and done.state == BatchState.SIGNED
    assert s.get_agg_proof(rec.batch_id) == b"outer"
    assert s.finish_proving(rec.batch_id, b"again") is None  # no longer PENDING
    assert s.get_batch_by_aggregation(1, 2) == s.get_batch(rec.batch_id)
    assert s.domains() == [1] and s.next_aggregation_id(1) == 3
    # a recursive batch that cannot be proved: its unfit leaf goes to attestation, kind changed
    rec2 = s.create_batch(1, "recursive", [rows[2].proof_id], b"\x03" * 32, defer_id=True)
    assert s.fail_batch(rec2.batch_id, "PROVER_BAD_LEAF", reroute=[rows[2].statement_hash])
    p = s.get_proof(rows[2].proof_id)
    assert p is not None and (p.status, p.kind, p.reason_code) == (
        Status.QUEUED,
        KIND_ATTESTED,
        "PROVER_BAD_LEAF",
    )
    assert s.get_batch(att.batch_id).state == BatchState.PENDING  # type: ignore[union-attr]
    s.set_batch_state(att.batch_id, [BatchState.PENDING], BatchState.FINALIZED)
    assert s.max_aggregation(1, BatchState.FINALIZED) == 1
    s.close()


def test_a_proving_batch_is_not_waiting_to_be_posted(open_store: OpenStore) -> None:
    """oldest_unposted (the /readyz `posting` stall check): a recursive batch that is still proving
    (PENDING, no id) is not waiting to be posted; once proved it counts from when its proof was
    stored, not from its creation (a 64-leaf tree proves for ~30 min: that is not a stalled
    domain); an attested PENDING batch counts from its creation."""
    s = open_store()
    s.insert_proofs([_p(i) for i in range(2)])
    rows = s.take_queued(1, KIND_ATTESTED, 2)
    rec = s.create_batch(2, "recursive", [rows[0].proof_id], b"\x01" * 32, defer_id=True)
    assert s.oldest_unposted() == {}  # proving
    att = s.create_batch(1, KIND_ATTESTED, [rows[1].proof_id], b"\x02" * 32)
    assert s.oldest_unposted() == {1: att.created_ms}
    time.sleep(0.05)
    done = s.finish_proving(rec.batch_id, b"outer")
    assert done is not None and done.state == BatchState.SIGNED
    since = s.oldest_unposted()[2]
    assert since >= rec.created_ms + 40  # from the proof's storage, not the batch's creation
    s.set_batch_state(rec.batch_id, [BatchState.SIGNED], BatchState.FINALIZED)
    assert s.oldest_unposted() == {1: att.created_ms}
    s.close()


def test_signatures_and_refusals(open_store: OpenStore) -> None:
    s = open_store()
    s.insert_proofs([_p(1)])
    b = s.create_batch(1, KIND_ATTESTED, [_p(1).proof_id], b"\x01" * 32)
    s.add_signature(b.batch_id, "0xbb", b"sig-b")
    s.add_signature(b.batch_id, "0xaa", None, "VERIFICATION_FAILED")
    s.add_signature(b.batch_id, "0xbb", b"sig-b2")  # an operator answers once: the last answer counts
    assert s.signatures(b.batch_id) == [("0xaa", None, "VERIFICATION_FAILED"), ("0xbb", b"sig-b2", "")]
    assert [b.batch_id] == [x.batch_id for x in s.batches_in(BatchState.PENDING, BatchState.SIGNED)]
    s.close()


def test_signature_and_promotion_are_one_transaction(open_store: OpenStore) -> None:
    """The k-th signature and PENDING -> SIGNED commit together (issue 13, failure 2); signatures of
    operators outside the counted set do not count."""
    s = open_store()
    s.insert_proofs([_p(1), _p(2)])
    b = s.create_batch(1, KIND_ATTESTED, [_p(1).proof_id], b"\x01" * 32)
    ops = ["0xaa", "0xbb"]
    assert s.add_signature_and_promote(b.batch_id, "0xcc", b"sig-c", 2, ops) == (0, False)
    assert s.add_signature_and_promote(b.batch_id, "0xaa", b"sig-a", 2, ops) == (1, False)
    assert s.add_signature_and_promote(b.batch_id, "0xbb", b"sig-b", 2, ops) == (2, True)
    s.close()
    s = open_store()  # durable, as after kill -9
    got = s.get_batch(b.batch_id)
    assert got is not None and got.state == BatchState.SIGNED
    # a late signature on a SIGNED batch is recorded, nothing moves again
    assert s.add_signature_and_promote(b.batch_id, "0xaa", b"sig-a2", 2, ops) == (2, False)
    s.close()


def test_sweep_promotes_pending_batches_holding_k_signatures(open_store: OpenStore) -> None:
    """What a crash between 'signature stored' and 'promoted' left behind (the old two-transaction
    attest) is promoted by the sweep; batches short of k are not."""
    s = open_store()
    s.insert_proofs([_p(1), _p(2)])
    b1 = s.create_batch(1, KIND_ATTESTED, [_p(1).proof_id], b"\x01" * 32)
    b2 = s.create_batch(1, KIND_ATTESTED, [_p(2).proof_id], b"\x02" * 32)
    s.add_signature(b1.batch_id, "0xaa", b"sig-a")
    s.add_signature(b1.batch_id, "0xbb", b"sig-b")
    s.add_signature(b2.batch_id, "0xaa", b"sig-a")
    s.add_signature(b2.batch_id, "0xbb", None, "VERIFICATION_FAILED")
    assert s.promote_attested(2, ["0xaa"]) == []  # 0xbb no longer counts
    assert s.promote_attested(2, ["0xaa", "0xbb"]) == [b1.batch_id]
    assert s.promote_attested(2, ["0xaa", "0xbb"]) == []
    assert [x.batch_id for x in s.batches_in(BatchState.SIGNED)] == [b1.batch_id]
    assert s.promote_attested(1, ["0xaa", "0xbb"]) == [b2.batch_id]  # threshold lowered
    s.close()


def test_reopen_drops_signatures_that_no_longer_count(open_store: OpenStore) -> None:
    s = open_store()
    s.insert_proofs([_p(1)])
    b = s.create_batch(1, KIND_ATTESTED, [_p(1).proof_id], b"\x01" * 32)
    assert not s.reopen_batch(b.batch_id, ["0xbb"])  # PENDING already
    s.add_signature_and_promote(b.batch_id, "0xaa", b"sig-a", 2, ["0xaa", "0xbb"])
    s.add_signature_and_promote(b.batch_id, "0xbb", b"sig-b", 2, ["0xaa", "0xbb"])
    assert s.set_batch_state(
        b.batch_id,
        [BatchState.SIGNED],
        BatchState.SUBMITTED,
        tx_hash=b"\x09" * 32,
        proof_status=Status.SUBMITTED,
    )
    assert s.reopen_batch(b.batch_id, ["0xbb"])
    got = s.get_batch(b.batch_id)
    assert got is not None and got.state == BatchState.PENDING and got.tx_hash is None
    assert got.aggregation_id == b.aggregation_id
    assert s.signatures(b.batch_id) == [("0xaa", b"sig-a", "")]
    p = s.get_proof(_p(1).proof_id)
    assert p is not None and p.status == Status.AGGREGATING
    s.close()


def test_metrics_exposition() -> None:
    m = Metrics()
    m.describe("sheaf_x_total", "things")
    m.inc("sheaf_x_total", code="A")
    m.inc("sheaf_x_total", 2, code="A")
    m.observe("sheaf_lat_seconds", 0.003)
    m.observe("sheaf_lat_seconds", 0.2)
    m.gauge("sheaf_q", lambda: {(("status", "QUEUED"),): 4.0})
    text = m.render()
    assert "# TYPE sheaf_x_total counter" in text
    assert 'sheaf_x_total{code="A"} 3.0' in text  # prometheus_client writes floats
    assert 'sheaf_lat_seconds_bucket{le="0.005"} 1.0' in text
    assert 'sheaf_lat_seconds_bucket{le="+Inf"} 2.0' in text
    assert "sheaf_lat_seconds_count 2.0" in text
    assert 'sheaf_q{status="QUEUED"} 4.0' in text
