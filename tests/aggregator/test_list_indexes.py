"""Indexes for the list filters (issue 16, store schema v4): the query the store really sends for each
filter is planned on its index (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN with sequential scans
priced out, as a table of millions would), and a database of the previous schema version migrates.
Also list_inferences (newest first, a cursor, filters) on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_agg_store import BACKENDS

from aggregator import crypto
from aggregator import store as store_mod
from aggregator import store_pg as store_pg_mod
from aggregator.records import KIND_ATTESTED, NewProof
from aggregator.store import MIGRATIONS, SqliteStore, Store
from aggregator.store_pg import PG_MIGRATIONS, PostgresStore
from sheaf.hashing import keccak256

H = b"\x33" * 32
ADDR = "0x" + "aa" * 20
# (store method, filters) -> the index its query must use
CASES: list[tuple[str, dict[str, Any], str]] = [
    ("list_proofs", {"status": 3}, "proofs_status"),
    ("list_proofs", {"vk_hash": H}, "proofs_vk"),
    ("list_proofs", {"prover": ADDR}, "proofs_prover_id"),
    ("list_proofs", {"domain_id": 1}, "proofs_domain"),
    ("list_proofs", {"statement_hash": H}, "proofs_statement"),
    ("list_batches", {"domain_id": 1}, "batches_domain"),
    ("list_batches", {"state": "finalized"}, "batches_state"),
    ("list_batches", {"tx_hash": H}, "batches_tx"),
    ("list_batches", {"root": H}, "batches_root"),
    ("list_inferences", {}, "inferences_created"),
]


class _Recorder:
    """Stands in for the store's connection: records each statement, then runs it."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.sent: list[tuple[str, tuple[Any, ...]]] = []

    def execute(self, sql: str, args: Any = ()) -> Any:
        self.sent.append((sql, tuple(args)))
        return self.conn.execute(sql, args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


def _last_query(store: Any, attr: str, method: str, filters: dict[str, Any], before: Any) -> tuple[str, Any]:
    rec = _Recorder(getattr(store, attr))
    setattr(store, attr, rec)
    try:
        getattr(store, method)(20, before, **filters)
    finally:
        setattr(store, attr, rec.conn)
    return rec.sent[-1]


@pytest.mark.parametrize(("method", "filters", "index"), CASES)
def test_sqlite_plans_each_filter_on_its_index(
    tmp_path: Path, method: str, filters: dict[str, Any], index: str
) -> None:
    s = SqliteStore(tmp_path / "a.db")
    try:
        before = (1 << 40, "z") if method == "list_inferences" else 1 << 40
        sql, args = _last_query(s, "conn", method, filters, before)
        plan = " | ".join(r[3] for r in s.conn.execute("EXPLAIN QUERY PLAN " + sql, args))
        assert f"USING INDEX {index}" in plan or f"USING COVERING INDEX {index}" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # the index gives the order: no sort of the matches
    finally:
        s.close()


def test_postgres_plans_each_filter_on_its_index(pg_url: str) -> None:
    s = PostgresStore(pg_url)
    try:
        for method, filters, index in CASES:
            before = (1 << 40, "z") if method == "list_inferences" else 1 << 40
            sql, args = _last_query(s, "conn", method, filters, before)
            with s.c.transaction():
                s.c.execute("SET LOCAL enable_seqscan = off")  # an empty table: price scans as a big one
                plan = " | ".join(str(r[0]) for r in s.c.execute(("EXPLAIN " + sql).encode(), args))
            assert index in plan, (method, filters, plan)
    finally:
        s.close()


def _old_proof(i: int) -> NewProof:
    return NewProof(
        1, keccak256(b"old%d" % i), H, KIND_ATTESTED, "groth16", "snarkjs", b"p", b"vk", b"[]", None, ADDR
    )


def _write_v3(s: Store) -> None:
    assert s.schema_version() == 3
    s.insert_proofs([_old_proof(0)])
    s.insert_proofs([_old_proof(1)])
    s.create_batch(1, KIND_ATTESTED, [_old_proof(0).proof_id], crypto.merkle_root([keccak256(b"old0")]))


def _check_migrated(s: Store, index_names: set[str]) -> None:
    assert s.schema_version() == len(MIGRATIONS) == len(PG_MIGRATIONS) >= 4  # v4 and any later
    assert {c[2] for c in CASES} <= index_names
    got = s.list_proofs(10, vk_hash=H, prover=ADDR)
    assert [e.row.proof_id for e in got] == [_old_proof(1).proof_id, _old_proof(0).proof_id]
    (b,) = s.list_batches(10, state="pending", domain_id=1)
    assert b.leaf_count == 1


def test_sqlite_database_of_v3_migrates_to_v4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database written by the previous release (schema v3, rows in it) gains the indexes when
    this release opens it, keeps its rows, and lists them."""
    path = tmp_path / "old.db"
    with monkeypatch.context() as m:
        m.setattr(store_mod, "MIGRATIONS", MIGRATIONS[:3])  # the previous release's schema
        old = SqliteStore(path)
        _write_v3(old)
        assert not {
            r[0] for r in old.conn.execute("SELECT name FROM sqlite_master WHERE name='proofs_status'")
        }
        old.close()
    s = SqliteStore(path)
    try:
        _check_migrated(
            s, {r[0] for r in s.conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        )
    finally:
        s.close()


def test_postgres_database_of_v3_migrates_to_v4(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        m.setattr(store_pg_mod, "PG_MIGRATIONS", PG_MIGRATIONS[:3])
        old = PostgresStore(pg_url)
        _write_v3(old)
        old.close()
    s = PostgresStore(pg_url)
    try:
        q = "SELECT indexname FROM pg_indexes WHERE schemaname=current_schema()"
        _check_migrated(s, {str(r[0]) for r in s.c.execute(q)})
        # batches_state (state) of v1 was replaced by (state, batch_id)
        d = s.c.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname=current_schema() AND indexname='batches_state'"
        ).fetchone()
        assert d is not None and "(state, batch_id)" in str(d[0])
    finally:
        s.close()


# -- list_inferences, per backend ----------------------------------------------------------------


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s = BACKENDS[request.param](request, tmp_path)()
    yield s
    s.close()


def test_list_inferences_pages_newest_first_with_filters(store: Store) -> None:
    ids = []
    for i in range(5):
        iid = f"{1 + i % 2}-{keccak256(b'inf%d' % i).hex()}"
        model = b"\x01" * 32 if i < 3 else b"\x02" * 32
        assert store.put_inference(iid, 1 + i % 2, model, keccak256(iid.encode()), 0, "[]")
        ids.append(iid)
    seen: list[str] = []
    before = None
    while page := store.list_inferences(2, before):
        seen += [e.inference_id for e in page]
        before = page[-1].cursor
    by_age = sorted(store.list_inferences(10), key=lambda e: e.cursor, reverse=True)
    assert seen == [e.inference_id for e in by_age] and sorted(seen) == sorted(ids)
    got = store.list_inferences(10, domain_id=2)
    assert {e.inference_id for e in got} == {ids[1], ids[3]} and all(e.domain_id == 2 for e in got)
    got = store.list_inferences(10, model_id=b"\x02" * 32)
    assert {e.inference_id for e in got} == {ids[3], ids[4]}
    e = got[0]
    assert (e.required_kind, e.slices_json, e.inference_hash) == (0, "[]", keccak256(e.inference_id.encode()))
