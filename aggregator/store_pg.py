"""`PostgresStore`: the Store protocol on PostgreSQL, for several aggregator instances sharing one
database (docs/operations.md, "PostgreSQL"). Chosen by `db_url = "postgresql://..."`; SQLite
(aggregator.store.SqliteStore) stays the embedded default.

Same semantics as SqliteStore, method for method (tests/aggregator/test_agg_store.py runs both):
every method is one transaction, committed before it returns (a submission is acked only after
its COMMIT). What SQLite got from being the only writer, this backend gets from PostgreSQL's locks,
because several instances write at once (READ COMMITTED, the default):

- a guarded UPDATE (`... WHERE state = expected`) re-checks its condition after waiting for a
  concurrent writer of the row, so two instances can never move one proof or batch twice;
- inserts of the same statement from two instances: ON CONFLICT, the second reports a duplicate;
- aggregation ids (MAX + 1 per domain) are allocated under a per-domain transaction advisory lock,
  and a unique index backs it;
- a signature and the PENDING -> SIGNED promotion lock the batch row first, so two operators'
  signatures arriving on two instances at once cannot both miss the threshold;
- a proof's events are appended after its row is updated (row lock held to COMMIT), so per proof
  the `events.seq` order is the commit order and WatchProof's "after seq" never skips one.

One connection per store; StoreThread uses it from one thread. A broken connection (server
restart, network), a deadlock or a serialization failure fails the call in progress with
`Unavailable("STORE_UNAVAILABLE")` (UNAVAILABLE / 503: nothing was acked, the client retries), and
the next call reconnects.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import psycopg

from aggregator.records import (
    KIND_ATTESTED,
    KIND_RECURSIVE,
    BatchRow,
    BatchState,
    Event,
    InsertResult,
    NewProof,
    ProofRow,
    Status,
)
from aggregator.store import (
    _BATCH_COLS,
    _INFERENCE_COLS,
    _PROOF_COLS,
    _TREE_NODE_COLS,
    ListedInference,
    ListedProof,
    Store,
    TreeNode,
    _batch,
    _inference,
    _proof,
    _tree_node,
    now_ms,
)
from sheaf.errors import Unavailable

__all__ = ["PG_MIGRATIONS", "PostgresStore", "is_postgres_url"]

# keys of pg_advisory_xact_lock(key, domain) and pg_advisory_xact_lock(key)
_LOCK_AGG_IDS = 0x5EAF_0001
_LOCK_MIGRATE = 0x5EAF_0002

PG_MIGRATIONS: tuple[str, ...] = (
    # v1: SqliteStore's v1 schema, plus the leader lease (aggregator.leader)
    """
    CREATE TABLE vks (
        vk_hash BYTEA PRIMARY KEY, scheme TEXT NOT NULL, format TEXT NOT NULL,
        vk BYTEA NOT NULL, settings BYTEA, created_ms BIGINT NOT NULL
    );
    CREATE TABLE proofs (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        proof_id TEXT NOT NULL UNIQUE,
        domain_id BIGINT NOT NULL,
        statement_hash BYTEA NOT NULL,
        vk_hash BYTEA NOT NULL,
        kind TEXT NOT NULL,
        scheme TEXT NOT NULL, format TEXT NOT NULL,
        proof BYTEA NOT NULL, vk BYTEA NOT NULL, public BYTEA, settings BYTEA,
        prover TEXT,
        status INTEGER NOT NULL,
        reason_code TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '',
        batch_id BIGINT, leaf_index INTEGER,
        created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL,
        UNIQUE (domain_id, statement_hash)
    );
    CREATE INDEX proofs_queue ON proofs (domain_id, kind, status, id);
    CREATE INDEX proofs_batch ON proofs (batch_id, leaf_index);
    CREATE INDEX proofs_prover ON proofs (prover, status);
    CREATE TABLE batches (
        batch_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        domain_id BIGINT NOT NULL, kind TEXT NOT NULL,
        aggregation_id BIGINT,
        root BYTEA NOT NULL, leaf_count INTEGER NOT NULL,
        state TEXT NOT NULL,
        tx_hash BYTEA, block_number BIGINT, block_hash BYTEA,
        reason TEXT NOT NULL DEFAULT '',
        agg_proof BYTEA,
        created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL
    );
    CREATE UNIQUE INDEX batches_aggid ON batches (domain_id, aggregation_id)
        WHERE aggregation_id IS NOT NULL;
    CREATE INDEX batches_state ON batches (state);
    CREATE TABLE signatures (
        batch_id BIGINT NOT NULL, operator TEXT NOT NULL, signature BYTEA,
        refusal_code TEXT NOT NULL DEFAULT '', created_ms BIGINT NOT NULL,
        PRIMARY KEY (batch_id, operator)
    );
    CREATE TABLE events (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        proof_id TEXT NOT NULL, status INTEGER NOT NULL,
        reason_code TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '',
        ts_ms BIGINT NOT NULL
    );
    CREATE INDEX events_proof ON events (proof_id, seq);
    CREATE TABLE provers (address TEXT PRIMARY KEY, last_nonce NUMERIC NOT NULL);
    CREATE TABLE leases (
        name TEXT PRIMARY KEY, holder TEXT NOT NULL, epoch BIGINT NOT NULL,
        expires_at TIMESTAMPTZ NOT NULL, acquired_at TIMESTAMPTZ NOT NULL
    );
    """,
    # v2: whole inferences (issue 17), as SqliteStore's v2
    """
    CREATE TABLE models (model_id BYTEA PRIMARY KEY, spec TEXT NOT NULL, created_ms BIGINT NOT NULL);
    CREATE TABLE inferences (
        inference_id TEXT PRIMARY KEY, domain_id BIGINT NOT NULL, model_id BYTEA NOT NULL,
        inference_hash BYTEA NOT NULL, required_kind INTEGER NOT NULL, slices TEXT NOT NULL,
        created_ms BIGINT NOT NULL
    );
    """,
    # v3: attestation deadlines (issue 13), as SqliteStore's v3
    """
    CREATE TABLE attest_deadlines (batch_id BIGINT PRIMARY KEY, deadline BIGINT NOT NULL);
    """,
    # v4: indexes for the list filters (issue 16), as SqliteStore's v4; batches_state (state) of v1
    # becomes (state, batch_id), which still serves batches_in's `state IN (...)`
    """
    CREATE INDEX proofs_status ON proofs (status, id);
    CREATE INDEX proofs_vk ON proofs (vk_hash, id);
    CREATE INDEX proofs_prover_id ON proofs (prover, id);
    CREATE INDEX proofs_domain ON proofs (domain_id, id);
    CREATE INDEX proofs_statement ON proofs (statement_hash);
    CREATE INDEX batches_domain ON batches (domain_id, batch_id);
    DROP INDEX batches_state;
    CREATE INDEX batches_state ON batches (state, batch_id);
    CREATE INDEX batches_tx ON batches (tx_hash);
    CREATE INDEX batches_root ON batches (root);
    CREATE INDEX inferences_created ON inferences (created_ms, inference_id);
    """,
    # v5: recursion-tree nodes kept while a batch proves (issue 14), as SqliteStore's v5
    """
    CREATE TABLE tree_nodes (
        batch_id BIGINT NOT NULL, level INTEGER NOT NULL, job_index INTEGER NOT NULL,
        circuit_hash TEXT NOT NULL, inputs BYTEA NOT NULL, output TEXT NOT NULL,
        created_ms BIGINT NOT NULL,
        PRIMARY KEY (batch_id, level, job_index)
    );
    """,
)


F = TypeVar("F", bound=Callable[..., Any])


def _retryable(fn: F) -> F:
    """A transient database failure (psycopg.OperationalError: connection lost, server shutting down,
    deadlock, serialization failure) becomes STORE_UNAVAILABLE, which clients retry."""

    @functools.wraps(fn)
    def call(*args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except psycopg.OperationalError as e:
            raise Unavailable("STORE_UNAVAILABLE", "", f"the database is unavailable: {e}") from e

    return call  # type: ignore[return-value]


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


class PostgresStore:
    """The PostgreSQL Store. `url`: a libpq URL (postgresql://user:pw@host:port/db?options=...)."""

    def __init__(self, url: str, *, application_name: str = "sheaf-aggregator") -> None:
        self.url = url
        self.application_name = application_name
        self.conn = self._connect()
        self._migrate()

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        # autocommit: single statements are their own transaction; multi-statement methods open one
        # with conn.transaction(). TCP keepalives: a dead peer is noticed in ~30 s, not hours.
        return psycopg.connect(
            self.url,
            autocommit=True,
            application_name=self.application_name,
            connect_timeout=10,
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )

    @property
    def c(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self.conn.closed or self.conn.broken:
            self.conn = self._connect()
        return self.conn

    def close(self) -> None:
        self.conn.close()

    def _migrate(self) -> None:
        c = self.c
        with c.transaction():
            # instances starting together: one migrates, the others wait and find it done
            c.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_MIGRATE,))
            c.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            r = c.execute("SELECT version FROM schema_version").fetchone()
            if r is None:
                c.execute("INSERT INTO schema_version VALUES (0)")
            version = 0 if r is None else int(r[0])
            for i, script in enumerate(PG_MIGRATIONS[version:], start=version + 1):
                c.execute(script.encode())
                c.execute("UPDATE schema_version SET version=%s", (i,))

    def schema_version(self) -> int:
        r = self.c.execute("SELECT version FROM schema_version").fetchone()
        return int(r[0]) if r else 0

    # -- verifying keys ---------------------------------------------------------------------------

    def put_vk(self, vk_hash: bytes, scheme: str, fmt: str, vk: bytes, settings: bytes | None) -> None:
        self.c.execute(
            "INSERT INTO vks (vk_hash, scheme, format, vk, settings, created_ms) "
            "VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
            (vk_hash, scheme, fmt, vk, settings, now_ms()),
        )

    def get_vk(self, vk_hash: bytes) -> tuple[str, str, bytes, bytes | None] | None:
        r = self.c.execute(
            "SELECT scheme, format, vk, settings FROM vks WHERE vk_hash=%s", (vk_hash,)
        ).fetchone()
        return None if r is None else (r[0], r[1], r[2], r[3])

    # -- submissions ------------------------------------------------------------------------------

    def insert_proofs(self, items: Sequence[NewProof]) -> list[InsertResult]:
        """One transaction for a group of verified submissions; acks happen after its COMMIT."""
        out: list[InsertResult] = []
        ts = now_ms()
        c = self.c
        with c.transaction(), c.cursor() as cur:
            for p in items:
                pid = p.proof_id
                cur.execute(
                    "INSERT INTO proofs (proof_id, domain_id, statement_hash, vk_hash, kind, scheme, format, "
                    "proof, vk, public, settings, prover, status, created_ms, updated_ms) "
                    "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
                    "ON CONFLICT DO NOTHING RETURNING id",
                    (
                        pid,
                        p.domain_id,
                        p.statement_hash,
                        p.vk_hash,
                        p.kind,
                        p.scheme,
                        p.format,
                        p.proof,
                        p.vk,
                        p.public,
                        p.settings,
                        p.prover,
                        int(Status.QUEUED),
                        ts,
                        ts,
                    ),
                )
                if cur.fetchone() is not None:
                    # verified before this transaction: RECEIVED/VALID are events, the row starts QUEUED
                    cur.executemany(
                        "INSERT INTO events (proof_id, status, ts_ms) VALUES (%s,%s,%s)",
                        [(pid, int(st), ts) for st in (Status.RECEIVED, Status.VALID, Status.QUEUED)],
                    )
                    out.append(InsertResult(pid, False, Status.QUEUED))
                    continue
                row = cur.execute("SELECT status FROM proofs WHERE proof_id=%s FOR UPDATE", (pid,)).fetchone()
                assert row is not None  # a conflict on (domain, statement) is a conflict on proof_id
                if Status(row[0]) != Status.FAILED:
                    out.append(InsertResult(pid, True, Status(row[0])))
                    continue
                # FAILED before: a new attempt with the proof just verified
                cur.execute(
                    "UPDATE proofs SET vk_hash=%s, kind=%s, scheme=%s, format=%s, proof=%s, vk=%s, "
                    "public=%s, settings=%s, prover=%s, status=%s, reason_code='', message='', "
                    "batch_id=NULL, leaf_index=NULL, updated_ms=%s WHERE proof_id=%s",
                    (
                        p.vk_hash,
                        p.kind,
                        p.scheme,
                        p.format,
                        p.proof,
                        p.vk,
                        p.public,
                        p.settings,
                        p.prover,
                        int(Status.QUEUED),
                        ts,
                        pid,
                    ),
                )
                cur.executemany(
                    "INSERT INTO events (proof_id, status, message, ts_ms) VALUES (%s,%s,%s,%s)",
                    [
                        (pid, int(st), "resubmitted after FAILED", ts)
                        for st in (Status.RECEIVED, Status.VALID, Status.QUEUED)
                    ],
                )
                out.append(InsertResult(pid, False, Status.QUEUED))
        return out

    def check_and_bump_nonce(self, address: str, nonce: int) -> bool:
        # one statement: the row lock makes concurrent bumps of one prover serial
        r = self.c.execute(
            "INSERT INTO provers (address, last_nonce) VALUES (%s,%s) "
            "ON CONFLICT (address) DO UPDATE SET last_nonce=excluded.last_nonce "
            "WHERE provers.last_nonce < excluded.last_nonce RETURNING 1",
            (address, nonce),
        ).fetchone()
        return r is not None

    def get_proof(self, proof_id: str) -> ProofRow | None:
        r = self.c.execute(f"SELECT {_PROOF_COLS} FROM proofs WHERE proof_id=%s", (proof_id,)).fetchone()
        return None if r is None else _proof(r)

    def events_after(self, proof_id: str, seq: int) -> list[Event]:
        rows = self.c.execute(
            "SELECT seq, proof_id, status, reason_code, message, ts_ms FROM events "
            "WHERE proof_id=%s AND seq>%s ORDER BY seq",
            (proof_id, seq),
        ).fetchall()
        return [Event(r[0], r[1], Status(r[2]), r[3], r[4], r[5]) for r in rows]

    def count_by_status(self) -> dict[Status, int]:
        rows = self.c.execute("SELECT status, COUNT(*) FROM proofs GROUP BY status").fetchall()
        return {Status(r[0]): int(r[1]) for r in rows}

    def status_times(self, limit: int, before_seq: int | None = None) -> list[tuple[int, Status, int]]:
        rows = self.c.execute(
            "SELECT seq, status, ts_ms FROM events WHERE seq < %s ORDER BY seq DESC LIMIT %s",
            (before_seq if before_seq is not None else 1 << 62, limit),
        ).fetchall()
        return [(int(r[0]), Status(r[1]), int(r[2])) for r in rows]

    def queued_groups(self) -> list[tuple[int, str, int, int]]:
        rows = self.c.execute(
            "SELECT domain_id, kind, COUNT(*), MIN(updated_ms) FROM proofs WHERE status=%s "
            "GROUP BY domain_id, kind",
            (int(Status.QUEUED),),
        ).fetchall()
        return [(int(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]

    def queued_count(self, prover: str) -> int:
        r = self.c.execute(
            "SELECT COUNT(*) FROM proofs WHERE prover=%s AND status IN (%s,%s)",
            (prover, int(Status.QUEUED), int(Status.AGGREGATING)),
        ).fetchone()
        return int(r[0]) if r else 0

    def oldest_unposted(self) -> dict[int, int]:
        rows = self.c.execute(  # see SqliteStore.oldest_unposted
            "SELECT domain_id, MIN(CASE WHEN kind=%s THEN updated_ms ELSE created_ms END) FROM batches "
            "WHERE (state=%s AND aggregation_id IS NOT NULL) OR state=%s "
            "OR (state=%s AND block_number IS NULL) GROUP BY domain_id",
            (KIND_RECURSIVE, BatchState.PENDING, BatchState.SIGNED, BatchState.SUBMITTED),
        ).fetchall()
        return {int(r[0]): int(r[1]) for r in rows}

    def take_queued(self, domain_id: int, kind: str, limit: int) -> list[ProofRow]:
        rows = self.c.execute(
            f"SELECT {_PROOF_COLS} FROM proofs WHERE domain_id=%s AND kind=%s AND status=%s "
            "ORDER BY id LIMIT %s",
            (domain_id, kind, int(Status.QUEUED), limit),
        ).fetchall()
        return [_proof(r) for r in rows]

    # -- batches ----------------------------------------------------------------------------------

    @staticmethod
    def _set_status(
        cur: psycopg.Cursor[tuple[Any, ...]],
        proof_ids: Iterable[str],
        status: Status,
        ts: int,
        reason: str = "",
        msg: str = "",
    ) -> None:
        pids = list(proof_ids)
        if not pids:
            return
        # row locks taken in one order (proof_id) by every writer: no deadlock between instances
        pids.sort()
        cur.execute(
            "UPDATE proofs SET status=%s, reason_code=%s, message=%s, updated_ms=%s WHERE proof_id = ANY(%s)",
            (int(status), reason, msg, ts, pids),
        )
        cur.executemany(
            "INSERT INTO events (proof_id, status, reason_code, message, ts_ms) VALUES (%s,%s,%s,%s,%s)",
            [(pid, int(status), reason, msg, ts) for pid in pids],
        )

    def next_aggregation_id(self, domain_id: int) -> int:
        r = self.c.execute(
            "SELECT MAX(aggregation_id) FROM batches WHERE domain_id=%s AND state != %s",
            (domain_id, BatchState.FAILED),
        ).fetchone()
        return int((r[0] if r else None) or 0) + 1

    @staticmethod
    def _next_id(cur: psycopg.Cursor[tuple[Any, ...]], domain_id: int, min_id: int) -> int:
        # the caller holds the domain's id lock (_lock_ids) until it commits
        r = cur.execute(
            "SELECT MAX(aggregation_id) FROM batches WHERE domain_id=%s AND state != %s",
            (domain_id, BatchState.FAILED),
        ).fetchone()
        return max(int((r[0] if r else None) or 0) + 1, min_id)

    @staticmethod
    def _lock_ids(cur: psycopg.Cursor[tuple[Any, ...]], domain_id: int) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_AGG_IDS, domain_id % (1 << 31)))

    def set_agg_proof(self, batch_id: int, proof: bytes) -> None:
        self.c.execute("UPDATE batches SET agg_proof=%s WHERE batch_id=%s", (proof, batch_id))

    def get_agg_proof(self, batch_id: int) -> bytes | None:
        r = self.c.execute("SELECT agg_proof FROM batches WHERE batch_id=%s", (batch_id,)).fetchone()
        return None if r is None or r[0] is None else bytes(r[0])

    def create_batch(
        self,
        domain_id: int,
        kind: str,
        proof_ids: Sequence[str],
        root: bytes,
        min_id: int = 1,
        *,
        defer_id: bool = False,
    ) -> BatchRow:
        """As SqliteStore.create_batch; raises (and changes nothing) if a proof is no longer QUEUED
        (another instance batched it first)."""
        ts = now_ms()
        c = self.c
        with c.transaction(), c.cursor() as cur:
            agg_id = None
            if not defer_id:
                self._lock_ids(cur, domain_id)
                agg_id = self._next_id(cur, domain_id, min_id)
            r = cur.execute(
                "INSERT INTO batches (domain_id, kind, aggregation_id, root, leaf_count, state, created_ms, "
                "updated_ms) VALUES (%s,%s,%s,%s,%s,%s,%s,%s) RETURNING batch_id",
                (domain_id, kind, agg_id, root, len(proof_ids), BatchState.PENDING, ts, ts),
            ).fetchone()
            assert r is not None
            batch_id = int(r[0])
            cur.executemany(
                "UPDATE proofs SET batch_id=%s, leaf_index=%s WHERE proof_id=%s AND status=%s",
                [(batch_id, i, pid, int(Status.QUEUED)) for i, pid in enumerate(proof_ids)],
                returning=False,
            )
            n = cur.execute(
                "SELECT COUNT(*) FROM proofs WHERE batch_id=%s AND status=%s", (batch_id, int(Status.QUEUED))
            ).fetchone()
            if n is None or int(n[0]) != len(proof_ids):
                raise RuntimeError(f"a proof of batch {batch_id} is no longer queued")
            self._set_status(cur, proof_ids, Status.AGGREGATING, ts)
        b = self.get_batch(batch_id)
        assert b is not None
        return b

    def finish_proving(self, batch_id: int, proof: bytes, min_id: int = 1) -> BatchRow | None:
        ts = now_ms()
        c = self.c
        with c.transaction(), c.cursor() as cur:
            r = cur.execute(
                "SELECT domain_id, aggregation_id FROM batches WHERE batch_id=%s AND state=%s FOR UPDATE",
                (batch_id, BatchState.PENDING),
            ).fetchone()
            if r is None:
                return None
            if r[1] is not None:
                agg_id = int(r[1])
            else:
                self._lock_ids(cur, int(r[0]))
                agg_id = self._next_id(cur, int(r[0]), min_id)
            cur.execute(
                "UPDATE batches SET agg_proof=%s, aggregation_id=%s, state=%s, updated_ms=%s "
                "WHERE batch_id=%s",
                (proof, agg_id, BatchState.SIGNED, ts, batch_id),
            )
            cur.execute("DELETE FROM tree_nodes WHERE batch_id=%s", (batch_id,))  # the top proof is kept
        return self.get_batch(batch_id)

    def get_batch(self, batch_id: int) -> BatchRow | None:
        r = self.c.execute(f"SELECT {_BATCH_COLS} FROM batches WHERE batch_id=%s", (batch_id,)).fetchone()
        return None if r is None else _batch(r)

    def get_batch_by_aggregation(self, domain_id: int, aggregation_id: int) -> BatchRow | None:
        r = self.c.execute(
            f"SELECT {_BATCH_COLS} FROM batches WHERE domain_id=%s AND aggregation_id=%s",
            (domain_id, aggregation_id),
        ).fetchone()
        return None if r is None else _batch(r)

    def batches_in(self, *states: str) -> list[BatchRow]:
        rows = self.c.execute(
            f"SELECT {_BATCH_COLS} FROM batches WHERE state = ANY(%s) "
            "ORDER BY domain_id, aggregation_id NULLS FIRST, batch_id",
            (list(states),),
        ).fetchall()
        return [_batch(r) for r in rows]

    def batch_proofs(self, batch_id: int) -> list[ProofRow]:
        rows = self.c.execute(
            f"SELECT {_PROOF_COLS} FROM proofs WHERE batch_id=%s ORDER BY leaf_index", (batch_id,)
        ).fetchall()
        return [_proof(r) for r in rows]

    def domains(self) -> list[int]:
        rows = self.c.execute("SELECT DISTINCT domain_id FROM batches ORDER BY domain_id").fetchall()
        return [int(r[0]) for r in rows]

    def max_aggregation(self, domain_id: int, state: str) -> int:
        r = self.c.execute(
            "SELECT MAX(aggregation_id) FROM batches WHERE domain_id=%s AND state=%s", (domain_id, state)
        ).fetchone()
        return int((r[0] if r else None) or 0)

    def add_signature(self, batch_id: int, operator: str, signature: bytes | None, refusal: str = "") -> None:
        self.c.execute(
            "INSERT INTO signatures (batch_id, operator, signature, refusal_code, created_ms) "
            "VALUES (%s,%s,%s,%s,%s) "
            "ON CONFLICT (batch_id, operator) DO UPDATE SET signature=excluded.signature, "
            "refusal_code=excluded.refusal_code",
            (batch_id, operator, signature, refusal, now_ms()),
        )

    @staticmethod
    def _signed_by(cur: psycopg.Cursor[tuple[Any, ...]], batch_id: int, operators: Sequence[str]) -> int:
        r = cur.execute(
            "SELECT COUNT(*) FROM signatures WHERE batch_id=%s AND signature IS NOT NULL "
            "AND operator = ANY(%s)",
            (batch_id, list(operators)),
        ).fetchone()
        return int(r[0]) if r else 0

    @staticmethod
    def _promote(cur: psycopg.Cursor[tuple[Any, ...]], batch_id: int, ts: int) -> bool:
        cur.execute(
            "UPDATE batches SET state=%s, updated_ms=%s WHERE batch_id=%s AND state=%s "
            "AND aggregation_id IS NOT NULL",
            (BatchState.SIGNED, ts, batch_id, BatchState.PENDING),
        )
        return cur.rowcount == 1

    def add_signature_and_promote(
        self, batch_id: int, operator: str, signature: bytes, threshold: int, operators: Sequence[str]
    ) -> tuple[int, bool]:
        ts = now_ms()
        c = self.c
        with c.transaction(), c.cursor() as cur:
            # the batch row first: signatures of one batch arriving on several instances are counted
            # one transaction after the other (each sees the ones committed before it)
            cur.execute("SELECT 1 FROM batches WHERE batch_id=%s FOR UPDATE", (batch_id,))
            cur.execute(
                "INSERT INTO signatures (batch_id, operator, signature, refusal_code, created_ms) "
                "VALUES (%s,%s,%s,'',%s) "
                "ON CONFLICT (batch_id, operator) DO UPDATE SET signature=excluded.signature, "
                "refusal_code=''",
                (batch_id, operator, signature, ts),
            )
            n = self._signed_by(cur, batch_id, operators)
            promoted = n >= threshold and self._promote(cur, batch_id, ts)
        return n, promoted

    def promote_attested(self, threshold: int, operators: Sequence[str]) -> list[int]:
        ts = now_ms()
        c = self.c
        with c.transaction(), c.cursor() as cur:
            pending = [
                int(r[0])
                for r in cur.execute(
                    "SELECT batch_id FROM batches WHERE state=%s AND kind=%s AND aggregation_id IS NOT NULL "
                    "ORDER BY batch_id FOR UPDATE",
                    (BatchState.PENDING, KIND_ATTESTED),
                ).fetchall()
            ]
            return [
                b
                for b in pending
                if self._signed_by(cur, b, operators) >= threshold and self._promote(cur, b, ts)
            ]

    def reopen_batch(self, batch_id: int, drop_operators: Sequence[str]) -> bool:
        ts = now_ms()
        c = self.c
        with c.transaction(), c.cursor() as cur:
            cur.execute(
                "UPDATE batches SET state=%s, tx_hash=NULL, block_number=NULL, block_hash=NULL, "
                "updated_ms=%s WHERE batch_id=%s AND state IN (%s,%s) AND kind=%s",
                (BatchState.PENDING, ts, batch_id, BatchState.SIGNED, BatchState.SUBMITTED, KIND_ATTESTED),
            )
            if cur.rowcount != 1:
                return False
            sent = cur.execute(
                "SELECT proof_id FROM proofs WHERE batch_id=%s AND status != %s",
                (batch_id, int(Status.AGGREGATING)),
            ).fetchall()
            self._set_status(cur, [r[0] for r in sent], Status.AGGREGATING, ts)
            if drop_operators:
                cur.execute(
                    "DELETE FROM signatures WHERE batch_id=%s AND operator = ANY(%s)",
                    (batch_id, list(drop_operators)),
                )
            return True

    # -- attestation deadlines (issue 13; the Store protocol's block of the same name) ------------

    def attest_deadline(self, batch_id: int) -> int:
        r = self.c.execute("SELECT deadline FROM attest_deadlines WHERE batch_id=%s", (batch_id,)).fetchone()
        return 0 if r is None else int(r[0])

    def ensure_attest_deadline(self, batch_id: int, deadline: int, renew_before: int) -> int:
        c = self.c
        with c.transaction(), c.cursor() as cur:
            st = cur.execute("SELECT state FROM batches WHERE batch_id=%s FOR UPDATE", (batch_id,)).fetchone()
            r = cur.execute("SELECT deadline FROM attest_deadlines WHERE batch_id=%s", (batch_id,)).fetchone()
            cur_dl = 0 if r is None else int(r[0])
            if cur_dl == 0 or (cur_dl < renew_before and st is not None and st[0] == BatchState.PENDING):
                if cur_dl:
                    cur.execute("DELETE FROM signatures WHERE batch_id=%s", (batch_id,))
                cur.execute(
                    "INSERT INTO attest_deadlines (batch_id, deadline) VALUES (%s,%s) "
                    "ON CONFLICT (batch_id) DO UPDATE SET deadline=excluded.deadline",
                    (batch_id, deadline),
                )
                cur_dl = deadline
            return cur_dl

    def renew_attestation(self, batch_id: int, deadline: int) -> bool:
        ts = now_ms()
        c = self.c
        with c.transaction(), c.cursor() as cur:
            cur.execute(
                "UPDATE batches SET state=%s, tx_hash=NULL, block_number=NULL, block_hash=NULL, "
                "updated_ms=%s WHERE batch_id=%s AND state IN (%s,%s,%s) AND kind=%s",
                (
                    BatchState.PENDING,
                    ts,
                    batch_id,
                    BatchState.PENDING,
                    BatchState.SIGNED,
                    BatchState.SUBMITTED,
                    KIND_ATTESTED,
                ),
            )
            if cur.rowcount != 1:
                return False
            sent = cur.execute(
                "SELECT proof_id FROM proofs WHERE batch_id=%s AND status != %s",
                (batch_id, int(Status.AGGREGATING)),
            ).fetchall()
            self._set_status(cur, [r[0] for r in sent], Status.AGGREGATING, ts)
            cur.execute("DELETE FROM signatures WHERE batch_id=%s", (batch_id,))
            cur.execute(
                "INSERT INTO attest_deadlines (batch_id, deadline) VALUES (%s,%s) "
                "ON CONFLICT (batch_id) DO UPDATE SET deadline=excluded.deadline",
                (batch_id, deadline),
            )
            return True

    # -- end of attestation deadlines -----------------------------------------------------------

    def signatures(self, batch_id: int) -> list[tuple[str, bytes | None, str]]:
        rows = self.c.execute(
            "SELECT operator, signature, refusal_code FROM signatures WHERE batch_id=%s ORDER BY operator",
            (batch_id,),
        ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def set_batch_state(
        self,
        batch_id: int,
        expect: Sequence[str],
        state: str,
        *,
        tx_hash: bytes | None = None,
        block_number: int | None = None,
        block_hash: bytes | None = None,
        proof_status: Status | None = None,
        reason: str = "",
    ) -> bool:
        ts = now_ms()
        c = self.c
        with c.transaction(), c.cursor() as cur:
            cur.execute(
                "UPDATE batches SET state=%s, tx_hash=COALESCE(%s, tx_hash), block_number=%s, block_hash=%s, "
                "reason=%s, updated_ms=%s WHERE batch_id=%s AND state = ANY(%s)",
                (state, tx_hash, block_number, block_hash, reason, ts, batch_id, list(expect)),
            )
            if cur.rowcount != 1:
                return False
            if proof_status is not None:
                pids = [
                    r[0]
                    for r in cur.execute(
                        "SELECT proof_id FROM proofs WHERE batch_id=%s AND status != %s",
                        (batch_id, int(proof_status)),
                    ).fetchall()
                ]
                self._set_status(cur, pids, proof_status, ts)
            return True

    def fail_batch(
        self,
        batch_id: int,
        reason: str,
        bad_statements: Sequence[bytes] = (),
        from_states: Sequence[str] = (BatchState.PENDING,),
        *,
        reroute: Iterable[bytes] = (),
        message: str = "operator refused",
    ) -> bool:
        """As SqliteStore.fail_batch (later unsent batches of the domain lose their ids too)."""
        ts = now_ms()
        c = self.c
        with c.transaction(), c.cursor() as cur:
            r = cur.execute(
                "SELECT domain_id, aggregation_id FROM batches WHERE batch_id=%s AND state = ANY(%s) "
                "FOR UPDATE",
                (batch_id, list(from_states)),
            ).fetchone()
            if r is None:
                return False
            if r[1] is None:
                victims = [batch_id]
            else:
                self._lock_ids(cur, int(r[0]))
                victims = [
                    int(v[0])
                    for v in cur.execute(
                        "SELECT batch_id FROM batches WHERE domain_id=%s AND aggregation_id>=%s "
                        "AND state IN (%s,%s,%s) ORDER BY batch_id FOR UPDATE",
                        (r[0], r[1], BatchState.PENDING, BatchState.SIGNED, BatchState.SUBMITTED),
                    ).fetchall()
                ]
            bad = set(bad_statements)
            moved = set(reroute)
            for b in victims:
                why = reason if b == batch_id else f"cascade from batch {batch_id}"
                cur.execute(
                    "UPDATE batches SET state=%s, aggregation_id=NULL, reason=%s, updated_ms=%s "
                    "WHERE batch_id=%s",
                    (BatchState.FAILED, why, ts, b),
                )
                rows = [
                    (str(x[0]), bytes(x[1]))
                    for x in cur.execute(
                        "SELECT proof_id, statement_hash FROM proofs WHERE batch_id=%s", (b,)
                    ).fetchall()
                ]
                cur.execute("UPDATE proofs SET batch_id=NULL, leaf_index=NULL WHERE batch_id=%s", (b,))
                cur.execute("DELETE FROM tree_nodes WHERE batch_id=%s", (b,))
                self._set_status(cur, [x[0] for x in rows if x[1] in bad], Status.FAILED, ts, reason, message)
                if b == batch_id and moved:
                    rerouted = [x[0] for x in rows if x[1] in moved and x[1] not in bad]
                    if rerouted:
                        cur.execute(
                            "UPDATE proofs SET kind=%s WHERE proof_id = ANY(%s)", (KIND_ATTESTED, rerouted)
                        )
                    self._set_status(cur, rerouted, Status.QUEUED, ts, reason, "routed to attestation")
                self._set_status(
                    cur,
                    [x[0] for x in rows if x[1] not in bad and not (b == batch_id and x[1] in moved)],
                    Status.QUEUED,
                    ts,
                )
            return True

    # -- whole inferences (issue 17; the Store protocol's block of the same name) -----------------

    def put_model(self, model_id: bytes, spec_json: str) -> bool:
        r = self.c.execute(
            "INSERT INTO models (model_id, spec, created_ms) VALUES (%s,%s,%s) ON CONFLICT DO NOTHING "
            "RETURNING 1",
            (model_id, spec_json, now_ms()),
        ).fetchone()
        return r is not None

    def get_model(self, model_id: bytes) -> str | None:
        r = self.c.execute("SELECT spec FROM models WHERE model_id=%s", (model_id,)).fetchone()
        return None if r is None else str(r[0])

    def put_inference(
        self,
        inference_id: str,
        domain_id: int,
        model_id: bytes,
        inference_hash: bytes,
        required_kind: int,
        slices_json: str,
    ) -> bool:
        r = self.c.execute(
            "INSERT INTO inferences (inference_id, domain_id, model_id, inference_hash, required_kind, "
            "slices, created_ms) VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING RETURNING 1",
            (inference_id, domain_id, model_id, inference_hash, required_kind, slices_json, now_ms()),
        ).fetchone()
        return r is not None

    def get_inference(self, inference_id: str) -> tuple[int, bytes, bytes, int, str] | None:
        r = self.c.execute(
            "SELECT domain_id, model_id, inference_hash, required_kind, slices FROM inferences "
            "WHERE inference_id=%s",
            (inference_id,),
        ).fetchone()
        return None if r is None else (int(r[0]), bytes(r[1]), bytes(r[2]), int(r[3]), str(r[4]))

    # -- lists (issue 16; the Store protocol's block of the same name) ----------------------------

    def list_proofs(
        self,
        limit: int,
        before: int | None = None,
        *,
        status: Status | None = None,
        scheme: str | None = None,
        prover: str | None = None,
        domain_id: int | None = None,
        vk_hash: bytes | None = None,
        statement_hash: bytes | None = None,
    ) -> list[ListedProof]:
        where, args = ["TRUE"], list[object]()
        for col, v in (
            ("id<%s", before),
            ("status=%s", None if status is None else int(status)),
            ("scheme=%s", scheme),
            ("prover=%s", prover),
            ("domain_id=%s", domain_id),
            ("vk_hash=%s", vk_hash),
            ("statement_hash=%s", statement_hash),
        ):
            if v is not None:
                where.append(col)
                args.append(v)
        rows = self.c.execute(
            f"SELECT id, COALESCE(prover, ''), created_ms, {_PROOF_COLS} FROM proofs "
            f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT %s",
            (*args, limit),
        ).fetchall()
        return [ListedProof(int(r[0]), str(r[1]), int(r[2]), _proof(r[3:])) for r in rows]

    def list_batches(
        self,
        limit: int,
        before: int | None = None,
        *,
        domain_id: int | None = None,
        state: str | None = None,
        kind: str | None = None,
        tx_hash: bytes | None = None,
        root: bytes | None = None,
    ) -> list[BatchRow]:
        where, args = ["TRUE"], list[object]()
        for col, v in (
            ("batch_id<%s", before),
            ("domain_id=%s", domain_id),
            ("state=%s", state),
            ("kind=%s", kind),
            ("tx_hash=%s", tx_hash),
            ("root=%s", root),
        ):
            if v is not None:
                where.append(col)
                args.append(v)
        rows = self.c.execute(
            f"SELECT {_BATCH_COLS} FROM batches WHERE {' AND '.join(where)} ORDER BY batch_id DESC LIMIT %s",
            (*args, limit),
        ).fetchall()
        return [_batch(r) for r in rows]

    def list_inferences(
        self,
        limit: int,
        before: tuple[int, str] | None = None,
        *,
        domain_id: int | None = None,
        model_id: bytes | None = None,
        inference_id: str | None = None,
    ) -> list[ListedInference]:
        where, args = ["TRUE"], list[object]()
        if before is not None:
            where.append("(created_ms, inference_id) < (%s, %s)")
            args += before
        for col, v in (
            ("domain_id=%s", domain_id),
            ("model_id=%s", model_id),
            ("inference_id=%s", inference_id),
        ):
            if v is not None:
                where.append(col)
                args.append(v)
        rows = self.c.execute(
            f"SELECT {_INFERENCE_COLS} FROM inferences WHERE {' AND '.join(where)} "
            "ORDER BY created_ms DESC, inference_id DESC LIMIT %s",
            (*args, limit),
        ).fetchall()
        return [_inference(r) for r in rows]

    # -- recursion-tree nodes (the Store protocol's block of the same name) --------------------------

    def put_tree_node(self, node: TreeNode) -> bool:
        c = self.c
        with c.transaction(), c.cursor() as cur:
            # FOR SHARE waits for a concurrent fail_batch/finish_proving of the batch (row lock) and
            # re-reads its state: a node is never kept after they deleted the batch's nodes
            pending = cur.execute(
                "SELECT 1 FROM batches WHERE batch_id=%s AND state=%s FOR SHARE",
                (node.batch_id, BatchState.PENDING),
            ).fetchone()
            if pending is None:
                return False
            cur.execute(
                "INSERT INTO tree_nodes (batch_id, level, job_index, circuit_hash, inputs, output, "
                "created_ms) VALUES (%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (batch_id, level, job_index) DO "
                "UPDATE SET circuit_hash=EXCLUDED.circuit_hash, inputs=EXCLUDED.inputs, "
                "output=EXCLUDED.output, created_ms=EXCLUDED.created_ms",
                (
                    node.batch_id,
                    node.level,
                    node.job_index,
                    node.circuit_hash,
                    node.inputs,
                    node.output,
                    now_ms(),
                ),
            )
        return True

    def tree_nodes(self, batch_id: int) -> list[TreeNode]:
        rows = self.c.execute(
            f"SELECT {_TREE_NODE_COLS} FROM tree_nodes WHERE batch_id=%s ORDER BY level, job_index",
            (batch_id,),
        ).fetchall()
        return [_tree_node(r) for r in rows]


# every Store method (the protocol's names), not the constructor: a failed connect at startup stays
# a plain error (the instance must not start)
for _name in [n for n, v in vars(Store).items() if callable(v) and not n.startswith("_")]:
    setattr(PostgresStore, _name, _retryable(getattr(PostgresStore, _name)))
