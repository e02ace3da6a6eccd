"""Store and state machine: a real SQLite file, reopened to check durability."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from aggregator import crypto
from aggregator.metrics import Metrics
from aggregator.store import KIND_ATTESTED, BatchState, NewProof, Status, Store
from normalizers.statement import keccak256


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


def test_schema_and_pragmas(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.db")
    assert s.schema_version() == 1
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    s.close()
    s2 = Store(tmp_path / "a.db")  # reopening does not re-run migrations
    assert s2.schema_version() == 1
    s2.close()


def test_insert_is_durable_and_idempotent(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.db")
    r = s.insert_proofs([_p(1), _p(2), _p(1)])
    assert [x.duplicate for x in r] == [False, False, True]
    assert r[0].proof_id == r[2].proof_id
    # same statement in another domain is a different submission
    assert s.insert_proofs([_p(1, domain=2)])[0].duplicate is False
    s.close()
    # a fresh connection (as after a crash) sees every acked row
    raw = sqlite3.connect(tmp_path / "a.db")
    assert raw.execute("SELECT COUNT(*) FROM proofs").fetchone()[0] == 3
    raw.close()
    s = Store(tmp_path / "a.db")
    again = s.insert_proofs([_p(2)])
    assert again[0].duplicate and again[0].proof_id == r[1].proof_id
    evs = s.events_after(r[0].proof_id, 0)
    assert [e.status for e in evs] == [Status.RECEIVED, Status.VALID, Status.QUEUED]
    s.close()


def test_batch_lifecycle_and_sequential_ids(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.db")
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


def test_failed_batch_releases_its_id_and_later_ones(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.db")
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


def test_nonce_replay(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.db")
    assert s.check_and_bump_nonce("0xabc", 5)
    assert not s.check_and_bump_nonce("0xabc", 5)
    assert not s.check_and_bump_nonce("0xabc", 4)
    assert s.check_and_bump_nonce("0xabc", 6)
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
    assert 'sheaf_x_total{code="A"} 3' in text
    assert 'sheaf_lat_seconds_bucket{le="0.005"} 1' in text
    assert 'sheaf_lat_seconds_bucket{le="+Inf"} 2' in text
    assert "sheaf_lat_seconds_count 2" in text
    assert 'sheaf_q{status="QUEUED"} 4' in text
