"""PostgresStore under concurrent writers (what SQLite never sees: several aggregator instances on one
database), on the real server the session starts (aggregator/pg_local.py). The behaviour shared
with SQLite is in test_agg_store.py, run on both backends.

Each race holds the first writer's transaction open (psycopg: the store's own transaction nests as
a savepoint inside it) while a second store, on its own connection, runs the same call in a thread:
the second must wait for the first's COMMIT and then see it, never both succeed."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from aggregator.pg_local import LocalPostgres
from aggregator.records import KIND_ATTESTED, BatchState, NewProof, Status
from aggregator.store_pg import PostgresStore, is_postgres_url
from sheaf.errors import Unavailable, status_of
from sheaf.hashing import keccak256


def _p(i: int) -> NewProof:
    st = keccak256(b"stmt" + i.to_bytes(4, "big"))
    return NewProof(
        1, st, b"\x11" * 32, KIND_ATTESTED, "groth16", "snarkjs", b"p%d" % i, b"vk", None, None, "0xp"
    )


class Blocked:
    """`fn()` on a thread that must still be waiting (on a row lock) after 0.3 s."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = fn()
            except BaseException as e:
                self.error = e

        self.t = threading.Thread(target=run)
        self.t.start()
        time.sleep(0.3)
        assert self.t.is_alive(), "the second writer did not wait for the first"

    def join(self) -> Any:
        self.t.join(10)
        assert not self.t.is_alive()
        return self.result


def test_same_proof_from_two_instances_is_inserted_once(pg_url: str) -> None:
    a, b = PostgresStore(pg_url), PostgresStore(pg_url)
    with a.conn.transaction():
        assert not a.insert_proofs([_p(1)])[0].duplicate
        second = Blocked(lambda: b.insert_proofs([_p(1), _p(2)]))
    got = second.join()
    assert [(r.duplicate, r.status) for r in got] == [(True, Status.QUEUED), (False, Status.QUEUED)]
    assert [e.status for e in b.events_after(_p(1).proof_id, 0)] == [
        Status.RECEIVED,
        Status.VALID,
        Status.QUEUED,
    ]
    a.close()
    b.close()


def test_two_instances_batching_the_same_proofs_make_one_batch(pg_url: str) -> None:
    a, b = PostgresStore(pg_url), PostgresStore(pg_url)
    a.insert_proofs([_p(1), _p(2)])
    pids = [_p(1).proof_id, _p(2).proof_id]
    with a.conn.transaction():
        first = a.create_batch(1, KIND_ATTESTED, pids, b"\x01" * 32)
        second = Blocked(lambda: b.create_batch(1, KIND_ATTESTED, pids, b"\x02" * 32))
    second.join()
    assert isinstance(second.error, RuntimeError) and "no longer queued" in str(second.error)
    assert [x.batch_id for x in b.batches_in(BatchState.PENDING)] == [first.batch_id]
    assert {p.batch_id for p in (b.get_proof(i) for i in pids) if p} == {first.batch_id}
    # the loser changed nothing, and the domain's ids stay sequential
    b.insert_proofs([_p(3)])
    nxt = b.create_batch(1, KIND_ATTESTED, [_p(3).proof_id], b"\x03" * 32)
    assert (first.aggregation_id, nxt.aggregation_id) == (1, 2)
    a.close()
    b.close()


def test_signatures_arriving_on_two_instances_at_once_promote_the_batch(pg_url: str) -> None:
    a, b = PostgresStore(pg_url), PostgresStore(pg_url)
    a.insert_proofs([_p(1)])
    batch = a.create_batch(1, KIND_ATTESTED, [_p(1).proof_id], b"\x01" * 32)
    ops = ["0xaa", "0xbb"]
    with a.conn.transaction():
        assert a.add_signature_and_promote(batch.batch_id, "0xaa", b"sa", 2, ops) == (1, False)
        second = Blocked(lambda: b.add_signature_and_promote(batch.batch_id, "0xbb", b"sb", 2, ops))
    assert second.join() == (2, True)  # it counted the first one's committed signature
    got = b.get_batch(batch.batch_id)
    assert got is not None and got.state == BatchState.SIGNED
    a.close()
    b.close()


def test_nonce_bumps_from_two_instances(pg_url: str) -> None:
    a, b = PostgresStore(pg_url), PostgresStore(pg_url)
    with a.conn.transaction():
        assert a.check_and_bump_nonce("0xp", 5)
        second = Blocked(lambda: b.check_and_bump_nonce("0xp", 5))
    assert second.join() is False  # the same nonce on another instance is a replay
    assert b.check_and_bump_nonce("0xp", 6) and not a.check_and_bump_nonce("0xp", 6)
    a.close()
    b.close()


def test_a_broken_connection_fails_the_call_and_the_next_one_reconnects(pg_url: str) -> None:
    s = PostgresStore(pg_url)
    s.insert_proofs([_p(1)])
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (s.conn.info.backend_pid,))
    with pytest.raises(Unavailable) as ei:
        s.insert_proofs([_p(2)])  # not acked: the caller sees a retryable failure
    assert ei.value.code == "STORE_UNAVAILABLE" and status_of(ei.value).grpc == "UNAVAILABLE"
    assert s.get_proof(_p(1).proof_id) is not None  # reconnected
    assert s.insert_proofs([_p(2)])[0].duplicate is False  # the failed call committed nothing
    s.close()


def test_migrations_run_once_and_the_url_selects_the_backend(pg_url: str) -> None:
    a = PostgresStore(pg_url)
    v = a.schema_version()
    b = PostgresStore(pg_url)  # a second instance starting on a migrated database
    assert b.schema_version() == v >= 1
    assert is_postgres_url(pg_url) and is_postgres_url("postgres://x/y") and not is_postgres_url("a.db")
    a.close()
    b.close()


def test_local_server_runs_unprivileged_and_wants_its_password(pg_server: LocalPostgres) -> None:
    if os.geteuid() == 0:
        assert os.stat(pg_server.data).st_uid != 0  # PostgreSQL never runs as root
    with psycopg.connect(pg_server.url(), autocommit=True) as c:
        pid = c.execute("SELECT pg_backend_pid()").fetchone()
        assert pid is not None
        assert os.stat(f"/proc/{pid[0]}").st_uid != 0 or os.geteuid() != 0
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(pg_server.url().replace(pg_server.password, "wrong"), connect_timeout=5).close()
