"""Durable state behind one interface, `Store`, so that a second backend (PostgreSQL) can replace
SQLite without touching the aggregator's parts.

`SqliteStore`: SQLite in WAL mode with synchronous=FULL, so a commit survives kill -9 and power
loss. Its connection is used from one thread: the aggregator runs every store call through one
`StoreThread` (one worker thread: SQLite sees a single writer). Status transitions are single
transactions guarded by the expected previous state, and each one appends to `events`, which
WatchProof tails. The records are in aggregator.records.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

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

# BatchState and Status are also read from here by tests/demo/test_demo.py.
__all__ = [
    "KIND_ATTESTED",
    "BatchState",
    "ListedProof",
    "SqliteStore",
    "Status",
    "Store",
    "StoreThread",
    "TreeNode",
]

T = TypeVar("T")


@dataclass(frozen=True)
class ListedProof:
    """A proof as the list queries give it (issue 16): the row, who submitted it, when, and its
    cursor (pass it as `before` for the next page)."""

    cursor: int
    prover: str
    created_ms: int
    row: ProofRow


@dataclass(frozen=True)
class ListedInference:
    """An inference record as list_inferences gives it (plain values, as get_inference); its cursor
    (`before` of the next page) is (created_ms, inference_id)."""

    inference_id: str
    domain_id: int
    model_id: bytes
    inference_hash: bytes
    required_kind: int
    slices_json: str
    created_ms: int

    @property
    def cursor(self) -> tuple[int, str]:
        return (self.created_ms, self.inference_id)


@dataclass(frozen=True)
class TreeNode:
    """A recursion-tree job's checked output kept for its PENDING batch (aggregator/tree_prover.py):
    after a restart the tree resumes from these instead of proving every job again. `inputs` is the
    digest of what the job took (its leaves' statement hashes, or its children's nodes) and `output`
    the worker's Output as JSON; both, with the level's circuit hash, must still match to be reused."""

    batch_id: int
    level: int
    job_index: int
    circuit_hash: str
    inputs: bytes
    output: str
    created_ms: int = 0


class Store(Protocol):
    """What the aggregator needs from durable state. Every method is one transaction (atomic and
    durable when it returns); methods are called from one thread at a time (see StoreThread).
    tests/aggregator/test_agg_store.py runs against every implementation (the `store` fixture)."""

    def close(self) -> None: ...

    def schema_version(self) -> int: ...

    # verifying keys
    def put_vk(self, vk_hash: bytes, scheme: str, fmt: str, vk: bytes, settings: bytes | None) -> None: ...

    def get_vk(self, vk_hash: bytes) -> tuple[str, str, bytes, bytes | None] | None: ...

    # submissions
    def insert_proofs(self, items: Sequence[NewProof]) -> list[InsertResult]:
        """A group of verified proofs, QUEUED (RECEIVED/VALID/QUEUED events); duplicates (same
        domain and statement hash) are reported with their current status and left alone, except a
        FAILED one: the resubmission is a new attempt (the row takes the new proof, back to QUEUED,
        not a duplicate)."""
        ...

    def check_and_bump_nonce(self, address: str, nonce: int) -> bool:
        """False unless `nonce` is above the prover's last one (which it then becomes)."""
        ...

    def get_proof(self, proof_id: str) -> ProofRow | None: ...

    def events_after(self, proof_id: str, seq: int) -> list[Event]: ...

    def count_by_status(self) -> dict[Status, int]: ...

    def status_times(self, limit: int, before_seq: int | None = None) -> list[tuple[int, Status, int]]:
        """(seq, status, ts_ms) of the newest `limit` status events older than `before_seq` (None:
        from the newest), newest first: the explorer's activity charts page back with it (issue
        16). Walks the events' primary key backwards: its cost is the limit, not the table."""
        ...

    def queued_groups(self) -> list[tuple[int, str, int, int]]:
        """(domain_id, kind, queued count, oldest updated_ms) per group with queued proofs."""
        ...

    def queued_count(self, prover: str) -> int:
        """The prover's proofs still QUEUED or AGGREGATING (its queue quota)."""
        ...

    def oldest_unposted(self) -> dict[int, int]:
        """domain -> since when (ms) its oldest batch not yet mined on chain has been waiting to be
        posted (attested PENDING: collecting signatures; SIGNED; SUBMITTED without a block), for the
        domains that have one. A recursive batch is not waiting while it proves (PENDING without an
        aggregation id: a 64-leaf tree proves for ~30 min, shown by /readyz `proving`, bounded by
        recursion.prove_timeout_s and max_attempts) and counts from its updated_ms: when its proof was
        stored, or its last state change since (a re-send after a dropped transaction), so a long
        proof does not read as a stalled domain."""
        ...

    def take_queued(self, domain_id: int, kind: str, limit: int) -> list[ProofRow]:
        """Up to `limit` QUEUED proofs of the group, oldest first (nothing is changed)."""
        ...

    # batches
    def next_aggregation_id(self, domain_id: int) -> int: ...

    def create_batch(
        self,
        domain_id: int,
        kind: str,
        proof_ids: Sequence[str],
        root: bytes,
        min_id: int = 1,
        *,
        defer_id: bool = False,
    ) -> BatchRow: ...

    def finish_proving(self, batch_id: int, proof: bytes, min_id: int = 1) -> BatchRow | None: ...

    def set_agg_proof(self, batch_id: int, proof: bytes) -> None: ...

    def get_agg_proof(self, batch_id: int) -> bytes | None: ...

    def get_batch(self, batch_id: int) -> BatchRow | None: ...

    def get_batch_by_aggregation(self, domain_id: int, aggregation_id: int) -> BatchRow | None: ...

    def batches_in(self, *states: str) -> list[BatchRow]:
        """Batches in any of `states`, by domain, aggregation id, batch id."""
        ...

    def batch_proofs(self, batch_id: int) -> list[ProofRow]:
        """The batch's proofs in leaf order."""
        ...

    def domains(self) -> list[int]: ...

    def max_aggregation(self, domain_id: int, state: str) -> int: ...

    def add_signature(
        self, batch_id: int, operator: str, signature: bytes | None, refusal: str = ""
    ) -> None: ...

    def signatures(self, batch_id: int) -> list[tuple[str, bytes | None, str]]:
        """(operator, signature or None for a refusal, refusal code), by operator."""
        ...

    def add_signature_and_promote(
        self, batch_id: int, operator: str, signature: bytes, threshold: int, operators: Sequence[str]
    ) -> tuple[int, bool]:
        """Record `operator`'s (already verified) signature and, in the same transaction, move the
        batch PENDING -> SIGNED if it now holds >= `threshold` signatures by `operators` (the
        current operator set). Returns (signatures by `operators`, promoted now)."""
        ...

    def promote_attested(self, threshold: int, operators: Sequence[str]) -> list[int]:
        """The sweep: every PENDING attested batch holding >= `threshold` signatures by `operators`
        moves to SIGNED (one transaction); returns their batch ids."""
        ...

    def reopen_batch(self, batch_id: int, drop_operators: Sequence[str]) -> bool:
        """An unposted attested batch, SIGNED or SUBMITTED (its transaction not mined) -> PENDING
        (collect signatures again), deleting the signatures of `drop_operators` (they no longer
        count) so those operators are asked again; False if in another state."""
        ...

    # -- attestation deadlines (issue 13: attestations expire; aggregator/attesting.py) ------------
    def attest_deadline(self, batch_id: int) -> int:
        """The deadline (unix s) operators sign for this attested batch; 0 if none was set yet."""
        ...

    def ensure_attest_deadline(self, batch_id: int, deadline: int, renew_before: int) -> int:
        """One transaction: a batch without a deadline gets `deadline`; a PENDING one whose deadline
        is before `renew_before` gets `deadline` and loses its signatures (they would expire before
        posting: collected again). Returns the batch's deadline after."""
        ...

    def renew_attestation(self, batch_id: int, deadline: int) -> bool:
        """An unposted attested batch (PENDING, SIGNED, or SUBMITTED and not mined) -> PENDING with a
        new deadline and no signatures, in one transaction; False if in another state."""
        ...

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
    ) -> bool: ...

    def fail_batch(
        self,
        batch_id: int,
        reason: str,
        bad_statements: Sequence[bytes] = (),
        from_states: Sequence[str] = (BatchState.PENDING,),
        *,
        reroute: Iterable[bytes] = (),
        message: str = "operator refused",
    ) -> bool: ...

    # -- lists (issue 16: list APIs and the explorer; a new backend mirrors this block) ------------

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
        """Up to `limit` proofs, newest first, matching every filter given; `before` is the cursor
        of the previous page's last entry (entries have strictly decreasing cursors)."""
        ...

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
        """Up to `limit` batches, newest first (by batch id, the cursor), matching every filter."""
        ...

    def list_inferences(
        self,
        limit: int,
        before: tuple[int, str] | None = None,
        *,
        domain_id: int | None = None,
        model_id: bytes | None = None,
        inference_id: str | None = None,
    ) -> list[ListedInference]:
        """Up to `limit` inference records, newest first by (created_ms, inference_id), the cursor."""
        ...

    # -- end of lists -----------------------------------------------------------------------------

    # -- whole inferences (issue 17; aggregator/inference.py) --------------------------------------
    # Models and inference records. Plain values in and out (JSON text for the spec and the slices)
    # so another backend mirrors these four methods as they are.
    def put_model(self, model_id: bytes, spec_json: str) -> bool:
        """Store a validated model spec under its id; False if it was there already (left alone)."""
        ...

    def get_model(self, model_id: bytes) -> str | None: ...

    def put_inference(
        self,
        inference_id: str,
        domain_id: int,
        model_id: bytes,
        inference_hash: bytes,
        required_kind: int,
        slices_json: str,
    ) -> bool:
        """Record an inference whose slice proofs are durable already; False if it was there (left alone)."""
        ...

    def get_inference(self, inference_id: str) -> tuple[int, bytes, bytes, int, str] | None:
        """(domain_id, model_id, inference_hash, required_kind, slices_json)."""
        ...

    # -- end of whole inferences ---------------------------------------------------------------------

    # -- recursion-tree nodes (issue 14; aggregator/tree_prover.py resumes a batch's tree from them) --
    def put_tree_node(self, node: TreeNode) -> bool:
        """Keep a tree job's checked output for its batch, replacing the one kept at its (level, job
        index); False (nothing kept) unless the batch is PENDING. finish_proving and fail_batch
        delete a batch's nodes in their transaction, so they never outlive its proving."""
        ...

    def tree_nodes(self, batch_id: int) -> list[TreeNode]:
        """The batch's kept tree nodes, by level and job index."""
        ...

    # -- end of recursion-tree nodes ----------------------------------------------------------------


class StoreThread:
    """Runs every call of one Store on one worker thread, awaitable from the event loop (SQLite:
    a single writer, and no connection used across threads)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="sheaf-db")

    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args, **kw))

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.store.close()


MIGRATIONS: tuple[str, ...] = (
    # v1
    """
    CREATE TABLE vks (
        vk_hash BLOB PRIMARY KEY, scheme TEXT NOT NULL, format TEXT NOT NULL,
        vk BLOB NOT NULL, settings BLOB, created_ms INTEGER NOT NULL
    );
    CREATE TABLE proofs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        proof_id TEXT NOT NULL UNIQUE,
        domain_id INTEGER NOT NULL,
        statement_hash BLOB NOT NULL,
        vk_hash BLOB NOT NULL,
        kind TEXT NOT NULL,
        scheme TEXT NOT NULL, format TEXT NOT NULL,
        proof BLOB NOT NULL, vk BLOB NOT NULL, public BLOB, settings BLOB,
        prover TEXT,
        status INTEGER NOT NULL,
        reason_code TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '',
        batch_id INTEGER, leaf_index INTEGER,
        created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
        UNIQUE (domain_id, statement_hash)
    );
    CREATE INDEX proofs_queue ON proofs (domain_id, kind, status, id);
    CREATE INDEX proofs_batch ON proofs (batch_id, leaf_index);
    CREATE TABLE batches (
        batch_id INTEGER PRIMARY KEY AUTOINCREMENT,
        domain_id INTEGER NOT NULL, kind TEXT NOT NULL,
        aggregation_id INTEGER,
        root BLOB NOT NULL, leaf_count INTEGER NOT NULL,
        state TEXT NOT NULL,
        tx_hash BLOB, block_number INTEGER, block_hash BLOB,
        reason TEXT NOT NULL DEFAULT '',
        agg_proof BLOB,
        created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX batches_aggid ON batches (domain_id, aggregation_id)
        WHERE aggregation_id IS NOT NULL;
    CREATE TABLE signatures (
        batch_id INTEGER NOT NULL, operator TEXT NOT NULL, signature BLOB,
        refusal_code TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL,
        PRIMARY KEY (batch_id, operator)
    );
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        proof_id TEXT NOT NULL, status INTEGER NOT NULL,
        reason_code TEXT NOT NULL DEFAULT '', message TEXT NOT NULL DEFAULT '',
        ts_ms INTEGER NOT NULL
    );
    CREATE INDEX events_proof ON events (proof_id, seq);
    CREATE TABLE provers (address TEXT PRIMARY KEY, last_nonce INTEGER NOT NULL);
    """,
    # v2: whole inferences (issue 17)
    """
    CREATE TABLE models (model_id BLOB PRIMARY KEY, spec TEXT NOT NULL, created_ms INTEGER NOT NULL);
    CREATE TABLE inferences (
        inference_id TEXT PRIMARY KEY, domain_id INTEGER NOT NULL, model_id BLOB NOT NULL,
        inference_hash BLOB NOT NULL, required_kind INTEGER NOT NULL, slices TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    """,
    # v3: attestation deadlines (issue 13; Store.attest_deadline): no row = none set yet
    """
    CREATE TABLE attest_deadlines (batch_id INTEGER PRIMARY KEY, deadline INTEGER NOT NULL);
    """,
    # v4: indexes for the list filters (issue 16; the "lists" block). Each is (filter, cursor column):
    # an equality filter then walks the cursor newest first and stops at the page size instead of
    # scanning the table. `scheme` and `kind` have a handful of values: not worth an index.
    """
    CREATE INDEX proofs_status ON proofs (status, id);
    CREATE INDEX proofs_vk ON proofs (vk_hash, id);
    CREATE INDEX proofs_prover_id ON proofs (prover, id);
    CREATE INDEX proofs_domain ON proofs (domain_id, id);
    CREATE INDEX proofs_statement ON proofs (statement_hash);
    CREATE INDEX batches_domain ON batches (domain_id, batch_id);
    CREATE INDEX batches_state ON batches (state, batch_id);
    CREATE INDEX batches_tx ON batches (tx_hash);
    CREATE INDEX batches_root ON batches (root);
    CREATE INDEX inferences_created ON inferences (created_ms, inference_id);
    """,
    # v5: recursion-tree nodes kept while a batch proves (issue 14; Store.put_tree_node)
    """
    CREATE TABLE tree_nodes (
        batch_id INTEGER NOT NULL, level INTEGER NOT NULL, job_index INTEGER NOT NULL,
        circuit_hash TEXT NOT NULL, inputs BLOB NOT NULL, output TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        PRIMARY KEY (batch_id, level, job_index)
    );
    """,
)


def now_ms() -> int:
    return int(time.time() * 1000)


_PROOF_COLS = (
    "proof_id, domain_id, statement_hash, vk_hash, kind, scheme, format, proof, vk, public, settings, "
    "status, reason_code, message, batch_id, leaf_index, updated_ms"
)
_BATCH_COLS = (
    "batch_id, domain_id, kind, aggregation_id, root, leaf_count, state, tx_hash, block_number, "
    "block_hash, reason, created_ms"
)


def _proof(r: Sequence[object]) -> ProofRow:
    return ProofRow(*r[:11], Status(r[11]), *r[12:])  # type: ignore[arg-type, call-arg]


def _batch(r: Sequence[object]) -> BatchRow:
    return BatchRow(*r)  # type: ignore[arg-type]


_INFERENCE_COLS = "inference_id, domain_id, model_id, inference_hash, required_kind, slices, created_ms"


def _inference(r: Sequence[Any]) -> ListedInference:
    return ListedInference(str(r[0]), int(r[1]), bytes(r[2]), bytes(r[3]), int(r[4]), str(r[5]), int(r[6]))


_TREE_NODE_COLS = "batch_id, level, job_index, circuit_hash, inputs, output, created_ms"


def _tree_node(r: Sequence[Any]) -> TreeNode:
    return TreeNode(int(r[0]), int(r[1]), int(r[2]), str(r[3]), bytes(r[4]), str(r[5]), int(r[6]))


class SqliteStore:
    """The SQLite Store (the only backend so far)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def close(self) -> None:
        self.conn.close()

    def _migrate(self) -> None:
        version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        for i, script in enumerate(MIGRATIONS[version:], start=version + 1):
            # executescript commits; user_version is bumped in the same script so a crash between
            # statements leaves the old version and the DDL rolled back.
            self.conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version={i};\nCOMMIT;")

    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    # -- verifying keys ---------------------------------------------------------------------------

    def put_vk(self, vk_hash: bytes, scheme: str, fmt: str, vk: bytes, settings: bytes | None) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO vks (vk_hash, scheme, format, vk, settings, created_ms) "
            "VALUES (?,?,?,?,?,?)",
            (vk_hash, scheme, fmt, vk, settings, now_ms()),
        )

    def get_vk(self, vk_hash: bytes) -> tuple[str, str, bytes, bytes | None] | None:
        r = self.conn.execute(
            "SELECT scheme, format, vk, settings FROM vks WHERE vk_hash=?", (vk_hash,)
        ).fetchone()
        return None if r is None else (r[0], r[1], r[2], r[3])

    # -- submissions ------------------------------------------------------------------------------

    def insert_proofs(self, items: Sequence[NewProof]) -> list[InsertResult]:
        """One transaction (one fsync) for a group of verified submissions; acks happen after it."""
        out: list[InsertResult] = []
        ts = now_ms()
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for p in items:
                pid = p.proof_id
                row = cur.execute("SELECT status FROM proofs WHERE proof_id=?", (pid,)).fetchone()
                if row is not None and Status(row[0]) != Status.FAILED:
                    out.append(InsertResult(pid, True, Status(row[0])))
                    continue
                if row is not None:  # FAILED before: a new attempt with the proof just verified
                    cur.execute(
                        "UPDATE proofs SET vk_hash=?, kind=?, scheme=?, format=?, proof=?, vk=?, public=?, "
                        "settings=?, prover=?, status=?, reason_code='', message='', batch_id=NULL, "
                        "leaf_index=NULL, updated_ms=? WHERE proof_id=?",
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
                    for st in (Status.RECEIVED, Status.VALID, Status.QUEUED):
                        cur.execute(
                            "INSERT INTO events (proof_id, status, message, ts_ms) VALUES (?,?,?,?)",
                            (pid, int(st), "resubmitted after FAILED", ts),
                        )
                    out.append(InsertResult(pid, False, Status.QUEUED))
                    continue
                cur.execute(
                    "INSERT INTO proofs (proof_id, domain_id, statement_hash, vk_hash, kind, scheme, format, "
                    "proof, vk, public, settings, prover, status, created_ms, updated_ms) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
                # The proof was verified before this transaction: RECEIVED/VALID are recorded as events
                # so watchers see the whole history, but the durable row starts QUEUED.
                for st in (Status.RECEIVED, Status.VALID, Status.QUEUED):
                    cur.execute(
                        "INSERT INTO events (proof_id, status, ts_ms) VALUES (?,?,?)", (pid, int(st), ts)
                    )
                out.append(InsertResult(pid, False, Status.QUEUED))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return out

    def check_and_bump_nonce(self, address: str, nonce: int) -> bool:
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            r = cur.execute("SELECT last_nonce FROM provers WHERE address=?", (address,)).fetchone()
            if r is not None and nonce <= int(r[0]):
                cur.execute("ROLLBACK")
                return False
            cur.execute(
                "INSERT INTO provers (address, last_nonce) VALUES (?,?) "
                "ON CONFLICT(address) DO UPDATE SET last_nonce=excluded.last_nonce",
                (address, nonce),
            )
            cur.execute("COMMIT")
            return True
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def get_proof(self, proof_id: str) -> ProofRow | None:
        r = self.conn.execute(f"SELECT {_PROOF_COLS} FROM proofs WHERE proof_id=?", (proof_id,)).fetchone()
        return None if r is None else _proof(r)

    def events_after(self, proof_id: str, seq: int) -> list[Event]:
        rows = self.conn.execute(
            "SELECT seq, proof_id, status, reason_code, message, ts_ms FROM events "
            "WHERE proof_id=? AND seq>? ORDER BY seq",
            (proof_id, seq),
        ).fetchall()
        return [Event(r[0], r[1], Status(r[2]), r[3], r[4], r[5]) for r in rows]

    def count_by_status(self) -> dict[Status, int]:
        rows = self.conn.execute("SELECT status, COUNT(*) FROM proofs GROUP BY status").fetchall()
        return {Status(r[0]): int(r[1]) for r in rows}

    def status_times(self, limit: int, before_seq: int | None = None) -> list[tuple[int, Status, int]]:
        rows = self.conn.execute(
            "SELECT seq, status, ts_ms FROM events WHERE seq < ? ORDER BY seq DESC LIMIT ?",
            (before_seq if before_seq is not None else 1 << 62, limit),
        ).fetchall()
        return [(int(r[0]), Status(r[1]), int(r[2])) for r in rows]

    def queued_groups(self) -> list[tuple[int, str, int, int]]:
        """(domain_id, kind, queued count, oldest updated_ms) per group with queued proofs."""
        rows = self.conn.execute(
            "SELECT domain_id, kind, COUNT(*), MIN(updated_ms) FROM proofs WHERE status=? "
            "GROUP BY domain_id, kind",
            (int(Status.QUEUED),),
        ).fetchall()
        return [(int(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]

    def queued_count(self, prover: str) -> int:
        r = self.conn.execute(
            "SELECT COUNT(*) FROM proofs WHERE prover=? AND status IN (?,?)",
            (prover, int(Status.QUEUED), int(Status.AGGREGATING)),
        ).fetchone()
        return int(r[0])

    def oldest_unposted(self) -> dict[int, int]:
        rows = self.conn.execute(
            "SELECT domain_id, MIN(CASE WHEN kind=? THEN updated_ms ELSE created_ms END) FROM batches "
            "WHERE (state=? AND aggregation_id IS NOT NULL) OR state=? "
            "OR (state=? AND block_number IS NULL) GROUP BY domain_id",
            (KIND_RECURSIVE, BatchState.PENDING, BatchState.SIGNED, BatchState.SUBMITTED),
        ).fetchall()
        return {int(r[0]): int(r[1]) for r in rows}

    # -- batches ----------------------------------------------------------------------------------

    def _set_status(
        self,
        cur: sqlite3.Cursor,
        proof_ids: Iterable[str],
        status: Status,
        ts: int,
        reason: str = "",
        msg: str = "",
    ) -> None:
        for pid in proof_ids:
            cur.execute(
                "UPDATE proofs SET status=?, reason_code=?, message=?, updated_ms=? WHERE proof_id=?",
                (int(status), reason, msg, ts, pid),
            )
            cur.execute(
                "INSERT INTO events (proof_id, status, reason_code, message, ts_ms) VALUES (?,?,?,?,?)",
                (pid, int(status), reason, msg, ts),
            )

    def next_aggregation_id(self, domain_id: int) -> int:
        r = self.conn.execute(
            "SELECT MAX(aggregation_id) FROM batches WHERE domain_id=? AND state != ?",
            (domain_id, BatchState.FAILED),
        ).fetchone()
        return int(r[0] or 0) + 1

    def take_queued(self, domain_id: int, kind: str, limit: int) -> list[ProofRow]:
        rows = self.conn.execute(
            f"SELECT {_PROOF_COLS} FROM proofs WHERE domain_id=? AND kind=? AND status=? ORDER BY id LIMIT ?",
            (domain_id, kind, int(Status.QUEUED), limit),
        ).fetchall()
        return [_proof(r) for r in rows]

    def set_agg_proof(self, batch_id: int, proof: bytes) -> None:
        self.conn.execute("UPDATE batches SET agg_proof=? WHERE batch_id=?", (proof, batch_id))

    def get_agg_proof(self, batch_id: int) -> bytes | None:
        r = self.conn.execute("SELECT agg_proof FROM batches WHERE batch_id=?", (batch_id,)).fetchone()
        return None if r is None or r[0] is None else bytes(r[0])

    def _next_id(self, cur: sqlite3.Cursor, domain_id: int, min_id: int) -> int:
        r = cur.execute(
            "SELECT MAX(aggregation_id) FROM batches WHERE domain_id=? AND state != ?",
            (domain_id, BatchState.FAILED),
        ).fetchone()
        # min_id: the chain's next id (another aggregator or an earlier database may have used ids)
        return max(int(r[0] or 0) + 1, min_id)

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
        """Persist the batch (leaf order = proof_ids order) before anyone signs or proves it.

        The aggregation id is the next one in the domain (at least min_id): ids are sequential on chain,
        so a failed batch gives its id back (see fail_batch). With defer_id (recursive batches: the
        outer proof binds root and leaf count, not the id) the id is assigned by finish_proving, so
        minutes of proving do not hold up the domain's later aggregations.
        """
        ts = now_ms()
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            agg_id = None if defer_id else self._next_id(cur, domain_id, min_id)
            cur.execute(
                "INSERT INTO batches (domain_id, kind, aggregation_id, root, leaf_count, state, created_ms, "
                "updated_ms) VALUES (?,?,?,?,?,?,?,?)",
                (domain_id, kind, agg_id, root, len(proof_ids), BatchState.PENDING, ts, ts),
            )
            batch_id = int(cur.lastrowid or 0)
            for i, pid in enumerate(proof_ids):
                n = cur.execute(
                    "UPDATE proofs SET batch_id=?, leaf_index=? WHERE proof_id=? AND status=?",
                    (batch_id, i, pid, int(Status.QUEUED)),
                ).rowcount
                if n != 1:
                    raise RuntimeError(f"proof {pid} is no longer queued")
            self._set_status(cur, proof_ids, Status.AGGREGATING, ts)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        b = self.get_batch(batch_id)
        assert b is not None
        return b

    def finish_proving(self, batch_id: int, proof: bytes, min_id: int = 1) -> BatchRow | None:
        """A PENDING recursive batch got its outer proof: store it, take the domain's next aggregation
        id (if the batch has none yet) and move to SIGNED (ready to post), in one transaction.
        None if the batch is no longer PENDING."""
        ts = now_ms()
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            r = cur.execute(
                "SELECT domain_id, aggregation_id FROM batches WHERE batch_id=? AND state=?",
                (batch_id, BatchState.PENDING),
            ).fetchone()
            if r is None:
                cur.execute("ROLLBACK")
                return None
            agg_id = int(r[1]) if r[1] is not None else self._next_id(cur, int(r[0]), min_id)
            cur.execute(
                "UPDATE batches SET agg_proof=?, aggregation_id=?, state=?, updated_ms=? WHERE batch_id=?",
                (proof, agg_id, BatchState.SIGNED, ts, batch_id),
            )
            cur.execute("DELETE FROM tree_nodes WHERE batch_id=?", (batch_id,))  # the top proof is kept
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return self.get_batch(batch_id)

    def get_batch(self, batch_id: int) -> BatchRow | None:
        r = self.conn.execute(f"SELECT {_BATCH_COLS} FROM batches WHERE batch_id=?", (batch_id,)).fetchone()
        return None if r is None else _batch(r)

    def get_batch_by_aggregation(self, domain_id: int, aggregation_id: int) -> BatchRow | None:
        r = self.conn.execute(
            f"SELECT {_BATCH_COLS} FROM batches WHERE domain_id=? AND aggregation_id=?",
            (domain_id, aggregation_id),
        ).fetchone()
        return None if r is None else _batch(r)

    def batches_in(self, *states: str) -> list[BatchRow]:
        q = ",".join("?" * len(states))
        rows = self.conn.execute(
            f"SELECT {_BATCH_COLS} FROM batches WHERE state IN ({q}) "
            "ORDER BY domain_id, aggregation_id, batch_id",
            states,
        ).fetchall()
        return [_batch(r) for r in rows]

    def batch_proofs(self, batch_id: int) -> list[ProofRow]:
        rows = self.conn.execute(
            f"SELECT {_PROOF_COLS} FROM proofs WHERE batch_id=? ORDER BY leaf_index", (batch_id,)
        ).fetchall()
        return [_proof(r) for r in rows]

    def domains(self) -> list[int]:
        rows = self.conn.execute("SELECT DISTINCT domain_id FROM batches ORDER BY domain_id").fetchall()
        return [int(r[0]) for r in rows]

    def max_aggregation(self, domain_id: int, state: str) -> int:
        r = self.conn.execute(
            "SELECT MAX(aggregation_id) FROM batches WHERE domain_id=? AND state=?", (domain_id, state)
        ).fetchone()
        return int(r[0] or 0)

    def add_signature(self, batch_id: int, operator: str, signature: bytes | None, refusal: str = "") -> None:
        self.conn.execute(
            "INSERT INTO signatures (batch_id, operator, signature, refusal_code, created_ms) "
            "VALUES (?,?,?,?,?) "
            "ON CONFLICT(batch_id, operator) DO UPDATE SET signature=excluded.signature, "
            "refusal_code=excluded.refusal_code",
            (batch_id, operator, signature, refusal, now_ms()),
        )

    def _signed_by(self, cur: sqlite3.Cursor, batch_id: int, operators: Sequence[str]) -> int:
        q = ",".join("?" * len(operators)) or "NULL"
        r = cur.execute(
            f"SELECT COUNT(*) FROM signatures WHERE batch_id=? AND signature IS NOT NULL "
            f"AND operator IN ({q})",
            (batch_id, *operators),
        ).fetchone()
        return int(r[0])

    def _promote(self, cur: sqlite3.Cursor, batch_id: int, ts: int) -> bool:
        return (
            cur.execute(
                "UPDATE batches SET state=?, updated_ms=? WHERE batch_id=? AND state=? "
                "AND aggregation_id IS NOT NULL",
                (BatchState.SIGNED, ts, batch_id, BatchState.PENDING),
            ).rowcount
            == 1
        )

    def add_signature_and_promote(
        self, batch_id: int, operator: str, signature: bytes, threshold: int, operators: Sequence[str]
    ) -> tuple[int, bool]:
        ts = now_ms()
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.execute(
                "INSERT INTO signatures (batch_id, operator, signature, refusal_code, created_ms) "
                "VALUES (?,?,?,'',?) "
                "ON CONFLICT(batch_id, operator) DO UPDATE SET signature=excluded.signature, "
                "refusal_code=''",
                (batch_id, operator, signature, ts),
            )
            n = self._signed_by(cur, batch_id, operators)
            promoted = n >= threshold and self._promote(cur, batch_id, ts)
            cur.execute("COMMIT")
            return n, promoted
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def promote_attested(self, threshold: int, operators: Sequence[str]) -> list[int]:
        ts = now_ms()
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            pending = [
                int(r[0])
                for r in cur.execute(
                    "SELECT batch_id FROM batches WHERE state=? AND kind=? AND aggregation_id IS NOT NULL "
                    "ORDER BY batch_id",
                    (BatchState.PENDING, KIND_ATTESTED),
                ).fetchall()
            ]
            out = [
                b
                for b in pending
                if self._signed_by(cur, b, operators) >= threshold and self._promote(cur, b, ts)
            ]
            cur.execute("COMMIT")
            return out
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def reopen_batch(self, batch_id: int, drop_operators: Sequence[str]) -> bool:
        ts = now_ms()
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            n = cur.execute(
                "UPDATE batches SET state=?, tx_hash=NULL, block_number=NULL, block_hash=NULL, updated_ms=? "
                "WHERE batch_id=? AND state IN (?,?) AND kind=?",
                (BatchState.PENDING, ts, batch_id, BatchState.SIGNED, BatchState.SUBMITTED, KIND_ATTESTED),
            ).rowcount
            if n != 1:
                cur.execute("ROLLBACK")
                return False
            sent = cur.execute(
                "SELECT proof_id FROM proofs WHERE batch_id=? AND status != ?",
                (batch_id, int(Status.AGGREGATING)),
            ).fetchall()
            self._set_status(cur, [r[0] for r in sent], Status.AGGREGATING, ts)
            for op in drop_operators:
                cur.execute("DELETE FROM signatures WHERE batch_id=? AND operator=?", (batch_id, op))
            cur.execute("COMMIT")
            return True
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def attest_deadline(self, batch_id: int) -> int:
        r = self.conn.execute(
            "SELECT deadline FROM attest_deadlines WHERE batch_id=?", (batch_id,)
        ).fetchone()
        return 0 if r is None else int(r[0])

    def ensure_attest_deadline(self, batch_id: int, deadline: int, renew_before: int) -> int:
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            r = cur.execute("SELECT deadline FROM attest_deadlines WHERE batch_id=?", (batch_id,)).fetchone()
            st = cur.execute("SELECT state FROM batches WHERE batch_id=?", (batch_id,)).fetchone()
            cur_dl = 0 if r is None else int(r[0])
            if cur_dl == 0 or (cur_dl < renew_before and st is not None and st[0] == BatchState.PENDING):
                if cur_dl:
                    cur.execute("DELETE FROM signatures WHERE batch_id=?", (batch_id,))
                cur.execute(
                    "INSERT INTO attest_deadlines (batch_id, deadline) VALUES (?,?) "
                    "ON CONFLICT(batch_id) DO UPDATE SET deadline=excluded.deadline",
                    (batch_id, deadline),
                )
                cur_dl = deadline
            cur.execute("COMMIT")
            return cur_dl
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def renew_attestation(self, batch_id: int, deadline: int) -> bool:
        ts = now_ms()
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            n = cur.execute(
                "UPDATE batches SET state=?, tx_hash=NULL, block_number=NULL, block_hash=NULL, updated_ms=? "
                "WHERE batch_id=? AND state IN (?,?,?) AND kind=?",
                (
                    BatchState.PENDING,
                    ts,
                    batch_id,
                    BatchState.PENDING,
                    BatchState.SIGNED,
                    BatchState.SUBMITTED,
                    KIND_ATTESTED,
                ),
            ).rowcount
            if n != 1:
                cur.execute("ROLLBACK")
                return False
            sent = cur.execute(
                "SELECT proof_id FROM proofs WHERE batch_id=? AND status != ?",
                (batch_id, int(Status.AGGREGATING)),
            ).fetchall()
            self._set_status(cur, [r[0] for r in sent], Status.AGGREGATING, ts)
            cur.execute("DELETE FROM signatures WHERE batch_id=?", (batch_id,))
            cur.execute(
                "INSERT INTO attest_deadlines (batch_id, deadline) VALUES (?,?) "
                "ON CONFLICT(batch_id) DO UPDATE SET deadline=excluded.deadline",
                (batch_id, deadline),
            )
            cur.execute("COMMIT")
            return True
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def signatures(self, batch_id: int) -> list[tuple[str, bytes | None, str]]:
        rows = self.conn.execute(
            "SELECT operator, signature, refusal_code FROM signatures WHERE batch_id=? ORDER BY operator",
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
        """Atomic compare-and-set on the batch state; also moves its proofs when proof_status is given."""
        ts = now_ms()
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            q = ",".join("?" * len(expect))
            n = cur.execute(
                f"UPDATE batches SET state=?, tx_hash=COALESCE(?, tx_hash), block_number=?, block_hash=?, "
                f"reason=?, updated_ms=? WHERE batch_id=? AND state IN ({q})",
                (state, tx_hash, block_number, block_hash, reason, ts, batch_id, *expect),
            ).rowcount
            if n != 1:
                cur.execute("ROLLBACK")
                return False
            if proof_status is not None:
                pids = [
                    r[0]
                    for r in cur.execute(
                        "SELECT proof_id FROM proofs WHERE batch_id=? AND status != ?",
                        (batch_id, int(proof_status)),
                    ).fetchall()
                ]
                self._set_status(cur, pids, proof_status, ts)
            cur.execute("COMMIT")
            return True
        except BaseException:
            cur.execute("ROLLBACK")
            raise

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
        """Abandon a pending batch: its aggregation id is released, proofs named bad are FAILED, the
        rest go back to QUEUED for the next batch. Statements in `reroute` (proofs of this batch the
        recursive prover cannot take) are re-queued as attest-only (kind attested, reason_code =
        `reason`)."""
        ts = now_ms()
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            q = ",".join("?" * len(from_states))
            r = cur.execute(
                f"SELECT domain_id, aggregation_id FROM batches WHERE batch_id=? AND state IN ({q})",
                (batch_id, *from_states),
            ).fetchone()
            if r is None:
                cur.execute("ROLLBACK")
                return False
            # Ids are sequential on chain: later unsent batches of the domain lose their ids too.
            # A batch without an id yet (recursive, still proving) takes no one with it.
            victims = (
                [batch_id]
                if r[1] is None
                else [
                    int(v[0])
                    for v in cur.execute(
                        "SELECT batch_id FROM batches "
                        "WHERE domain_id=? AND aggregation_id>=? AND state IN (?,?,?)",
                        (r[0], r[1], BatchState.PENDING, BatchState.SIGNED, BatchState.SUBMITTED),
                    ).fetchall()
                ]
            )
            bad = set(bad_statements)
            moved = set(reroute)
            for b in victims:
                why = reason if b == batch_id else f"cascade from batch {batch_id}"
                cur.execute(
                    "UPDATE batches SET state=?, aggregation_id=NULL, reason=?, updated_ms=? "
                    "WHERE batch_id=?",
                    (BatchState.FAILED, why, ts, b),
                )
                rows = cur.execute(
                    "SELECT proof_id, statement_hash FROM proofs WHERE batch_id=?", (b,)
                ).fetchall()
                cur.execute("UPDATE proofs SET batch_id=NULL, leaf_index=NULL WHERE batch_id=?", (b,))
                cur.execute("DELETE FROM tree_nodes WHERE batch_id=?", (b,))
                self._set_status(cur, [x[0] for x in rows if x[1] in bad], Status.FAILED, ts, reason, message)
                if b == batch_id and moved:
                    rerouted = [x[0] for x in rows if x[1] in moved and x[1] not in bad]
                    for pid in rerouted:
                        cur.execute("UPDATE proofs SET kind=? WHERE proof_id=?", (KIND_ATTESTED, pid))
                    self._set_status(
                        cur,
                        rerouted,
                        Status.QUEUED,
                        ts,
                        reason,
                        "routed to attestation",
                    )
                self._set_status(
                    cur,
                    [x[0] for x in rows if x[1] not in bad and not (b == batch_id and x[1] in moved)],
                    Status.QUEUED,
                    ts,
                )
            cur.execute("COMMIT")
            return True
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    # -- lists (issue 16: list APIs and the explorer; a new backend mirrors this block) ------------

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
        where, args = ["1=1"], []
        for col, v in (
            ("id<?", before),
            ("status=?", None if status is None else int(status)),
            ("scheme=?", scheme),
            ("prover=?", prover),
            ("domain_id=?", domain_id),
            ("vk_hash=?", vk_hash),
            ("statement_hash=?", statement_hash),
        ):
            if v is not None:
                where.append(col)
                args.append(v)
        rows = self.conn.execute(
            f"SELECT id, COALESCE(prover, ''), created_ms, {_PROOF_COLS} FROM proofs "
            f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
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
        where, args = ["1=1"], []
        for col, v in (
            ("batch_id<?", before),
            ("domain_id=?", domain_id),
            ("state=?", state),
            ("kind=?", kind),
            ("tx_hash=?", tx_hash),
            ("root=?", root),
        ):
            if v is not None:
                where.append(col)
                args.append(v)
        rows = self.conn.execute(
            f"SELECT {_BATCH_COLS} FROM batches WHERE {' AND '.join(where)} ORDER BY batch_id DESC LIMIT ?",
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
        where, args = ["1=1"], list[object]()
        if before is not None:
            where.append("(created_ms, inference_id) < (?, ?)")
            args += before
        for col, v in (
            ("domain_id=?", domain_id),
            ("model_id=?", model_id),
            ("inference_id=?", inference_id),
        ):
            if v is not None:
                where.append(col)
                args.append(v)
        rows = self.conn.execute(
            f"SELECT {_INFERENCE_COLS} FROM inferences WHERE {' AND '.join(where)} "
            "ORDER BY created_ms DESC, inference_id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [_inference(r) for r in rows]

    # -- end of lists -----------------------------------------------------------------------------

    # -- whole inferences (issue 17; the Store protocol's block of the same name) -----------------

    def put_model(self, model_id: bytes, spec_json: str) -> bool:
        return (
            self.conn.execute(
                "INSERT OR IGNORE INTO models (model_id, spec, created_ms) VALUES (?,?,?)",
                (model_id, spec_json, now_ms()),
            ).rowcount
            == 1
        )

    def get_model(self, model_id: bytes) -> str | None:
        r = self.conn.execute("SELECT spec FROM models WHERE model_id=?", (model_id,)).fetchone()
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
        return (
            self.conn.execute(
                "INSERT OR IGNORE INTO inferences (inference_id, domain_id, model_id, inference_hash, "
                "required_kind, slices, created_ms) VALUES (?,?,?,?,?,?,?)",
                (inference_id, domain_id, model_id, inference_hash, required_kind, slices_json, now_ms()),
            ).rowcount
            == 1
        )

    def get_inference(self, inference_id: str) -> tuple[int, bytes, bytes, int, str] | None:
        r = self.conn.execute(
            "SELECT domain_id, model_id, inference_hash, required_kind, slices FROM inferences "
            "WHERE inference_id=?",
            (inference_id,),
        ).fetchone()
        return None if r is None else (int(r[0]), bytes(r[1]), bytes(r[2]), int(r[3]), str(r[4]))

    # -- end of whole inferences --------------------------------------------------------------------

    # -- recursion-tree nodes (the Store protocol's block of the same name) --------------------------

    def put_tree_node(self, node: TreeNode) -> bool:
        return (
            self.conn.execute(
                "INSERT OR REPLACE INTO tree_nodes (batch_id, level, job_index, circuit_hash, inputs, "
                "output, created_ms) SELECT ?,?,?,?,?,?,? WHERE EXISTS "
                "(SELECT 1 FROM batches WHERE batch_id=? AND state=?)",
                (
                    node.batch_id,
                    node.level,
                    node.job_index,
                    node.circuit_hash,
                    node.inputs,
                    node.output,
                    now_ms(),
                    node.batch_id,
                    BatchState.PENDING,
                ),
            ).rowcount
            == 1
        )

    def tree_nodes(self, batch_id: int) -> list[TreeNode]:
        rows = self.conn.execute(
            f"SELECT {_TREE_NODE_COLS} FROM tree_nodes WHERE batch_id=? ORDER BY level, job_index",
            (batch_id,),
        ).fetchall()
        return [_tree_node(r) for r in rows]

    # -- end of recursion-tree nodes ----------------------------------------------------------------
