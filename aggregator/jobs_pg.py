"""Proving jobs on PostgreSQL: the queue between the leading aggregator and `aggregator worker`s.

    q = PgJobQueue(db_url, schema="sheaf_queue")
    await q.open()                                   # creates the schema on first use
    res = await q.run(unit, max_attempts=3)          # the leader: enqueue (idempotent) + wait
    await q.serve(execute, queues=[...])             # a worker (aggregator/worker.py)

The queue library is procrastinate (3.10, pinned): a maintained PostgreSQL task queue whose jobs are
rows taken with FOR UPDATE SKIP LOCKED, woken by LISTEN/NOTIFY, with per-worker heartbeats
(`procrastinate_workers`), retries with a strategy, queueing locks (no two waiting jobs with one
key) and locks (no two running), and the stalled-job API (jobs of workers whose heartbeat stopped)
this module uses to re-run the job of a killed worker. It works on psycopg 3 (3.3.9 here) through
psycopg-pool; its alternative, pgqueuer, was not needed (docs/dependencies.md).

Everything lives in one schema of its own (`recursion.queue_schema`, default `sheaf_queue`; every
connection of this module puts it alone on its search path): procrastinate's tables, types and
functions (its schema.sql, applied once under an advisory lock) and two of ours:

- `sheaf_jobs`: one row per unit (job_id = aggregator.jobs.ProofJob.derive_id of the batch, or a
  tree job's TreeJob.for_node): the unit itself (input), its state (queued, running, done, failed),
  attempts, the worker that has it, the result (proof, leaves; a tree job's Output) or the failure
  code. Inputs and results live here, not in the procrastinate job, whose only arguments are the job
  id and the attempt bound.
- `sheaf_job_runs`: one row per attempt (worker, start, end, outcome): what happened to a job.

Idempotency: a unit is inserted once (ON CONFLICT DO NOTHING); a procrastinate job is deferred only
while the unit has none waiting or running (queueing lock and lock = the job id, so even a race
between two leaders cannot run it twice at once, and a late duplicate finds the result and returns);
a result already stored is returned at once. A worker never overwrites a stored result.

Crash recovery: a worker killed mid-job (kill -9, lost host) stops heartbeating; after
`stalled_after_s` every waiting leader and every live worker (whoever looks first) finds the job
with procrastinate's get_stalled_jobs and retries it (procrastinate's retry_job: attempts + 1), so
another worker runs it; after `max_attempts` runs the job fails (PROVER_LOST) and the leader attests
the batch. Refusals and errors follow the same bound (aggregator.jobs.RETRYABLE codes are retried,
the others fail at once).

Routing: a job goes to the queue of its circuit (`sheaf-outer-<hash[:16]>` for a flat outer proof,
`sheaf-tree-<hash[:16]>` for a recursion-tree job of the level with that circuit: aggregator.jobs
.TreeJob); a worker listens only to the queues of circuits whose keys it holds, so a job waits for a
worker that can prove it; none within `pickup_timeout_s`: PROVER_UNAVAILABLE (the batch is attested).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import psycopg
from procrastinate import App, PsycopgConnector, RetryDecision
from procrastinate import exceptions as pexc
from procrastinate import jobs as pjobs
from procrastinate.job_context import JobContext
from procrastinate.retry import BaseRetryStrategy
from procrastinate.schema import SchemaManager
from procrastinate.worker import Worker

from aggregator.jobs import (
    JOB_MALFORMED,
    KIND_OUTER,
    KIND_TREE,
    PROVER_LOST,
    PROVER_TIMEOUT,
    PROVER_UNAVAILABLE,
    PROVER_WORKER_ERROR,
    RETRYABLE,
    JobResult,
    Unit,
    failure_json,
    unit_from_json,
)
from aggregator.proving import ProvingFailed

log = logging.getLogger("sheaf.jobs")

TASK = "sheaf.prove"
QUEUE_PREFIX = "sheaf-outer-"
TREE_QUEUE_PREFIX = "sheaf-tree-"
RETRY_DELAY_S = 1  # a failed attempt is offered again after this
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_LOCK_KEY = 0x5E4F_0B5E  # pg_advisory_xact_lock key of the schema setup

Execute = Callable[[Unit], Awaitable[JobResult]]


def queue_for(circuit_hash: str, kind: str = KIND_OUTER) -> str:
    """The procrastinate queue of one circuit: a flat outer circuit's or a tree level's."""
    prefix = TREE_QUEUE_PREFIX if kind == KIND_TREE else QUEUE_PREFIX
    return prefix + circuit_hash.lower().removeprefix("0x")[:16]


_TABLES = """
CREATE TABLE IF NOT EXISTS sheaf_jobs (
    job_id        text PRIMARY KEY,
    kind          text NOT NULL,
    circuit_hash  text NOT NULL,
    domain_id     bigint NOT NULL DEFAULT 0,
    batch_id      bigint NOT NULL DEFAULT 0,
    input         jsonb NOT NULL,
    max_attempts  integer NOT NULL,
    state         text NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts      integer NOT NULL DEFAULT 0,
    queue_job_id  bigint,
    worker        text,
    result        jsonb,
    error_code    text,
    error         jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    started_at    timestamptz,
    finished_at   timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS sheaf_job_runs (
    id            bigserial PRIMARY KEY,
    job_id        text NOT NULL REFERENCES sheaf_jobs (job_id) ON DELETE CASCADE,
    attempt       integer NOT NULL,
    worker        text NOT NULL,
    queue_job_id  bigint,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    outcome       text NOT NULL DEFAULT 'running'
);
CREATE INDEX IF NOT EXISTS sheaf_job_runs_job ON sheaf_job_runs (job_id);
"""

_INSERT = """
INSERT INTO sheaf_jobs (job_id, kind, circuit_hash, domain_id, batch_id, input, max_attempts)
VALUES (%(job_id)s, %(kind)s, %(circuit_hash)s, %(domain_id)s, %(batch_id)s, %(input)s::jsonb,
        %(max_attempts)s)
ON CONFLICT (job_id) DO NOTHING
"""
_STATE = """
SELECT j.state, j.queue_job_id, j.result, j.error_code, j.error, j.attempts, j.worker,
       q.status::text AS queue_status
  FROM sheaf_jobs j LEFT JOIN procrastinate_jobs q ON q.id = j.queue_job_id
 WHERE j.job_id = %(job_id)s
"""
_SET_QUEUE_JOB = "UPDATE sheaf_jobs SET queue_job_id = %(qid)s, updated_at = now() WHERE job_id = %(job_id)s"
_TAKE = """
UPDATE sheaf_jobs SET state = 'running', attempts = %(attempt)s, worker = %(worker)s,
       started_at = now(), updated_at = now(), queue_job_id = %(qid)s
 WHERE job_id = %(job_id)s AND state IN ('queued', 'running')
RETURNING input
"""
_RUN = """
INSERT INTO sheaf_job_runs (job_id, attempt, worker, queue_job_id)
VALUES (%(job_id)s, %(attempt)s, %(worker)s, %(qid)s) RETURNING id
"""
_END_RUN = "UPDATE sheaf_job_runs SET finished_at = now(), outcome = %(outcome)s WHERE id = %(id)s"
_END_RUNS_OF = """
UPDATE sheaf_job_runs SET finished_at = now(), outcome = %(outcome)s
 WHERE job_id = %(job_id)s AND outcome = 'running'
"""
_DONE = """
UPDATE sheaf_jobs SET state = 'done', result = %(result)s::jsonb, worker = %(worker)s,
       error_code = NULL, finished_at = now(), updated_at = now()
 WHERE job_id = %(job_id)s AND state IN ('queued', 'running')
RETURNING job_id
"""
_FAIL = """
UPDATE sheaf_jobs SET state = %(state)s, error_code = %(code)s, error = %(error)s::jsonb,
       finished_at = CASE WHEN %(state)s = 'failed' THEN now() END, updated_at = now()
 WHERE job_id = %(job_id)s AND state IN ('queued', 'running')
"""


class JobFailed(Exception):
    """An attempt failed with a code; `final`: no further attempt (procrastinate's retry strategy
    reads it)."""

    def __init__(self, code: str, message: str, final: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.final = code, final


class _Retry(BaseRetryStrategy):
    """Retry a failed attempt unless it was final or the job has had its max_attempts runs (the
    bound travels with the job: its `max_attempts` argument, the leader's recursion.max_attempts)."""

    def get_retry_decision(self, *, exception: BaseException, job: pjobs.Job) -> RetryDecision | None:
        if isinstance(exception, JobFailed) and exception.final:
            return None
        if not _attempts_left(job):
            return None
        return RetryDecision(retry_in={"seconds": RETRY_DELAY_S})


def _attempts_left(job: pjobs.Job) -> bool:
    bound = job.task_kwargs.get("max_attempts", 1)
    return job.attempts + 1 < (bound if isinstance(bound, int) else 1)


def default_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class PgJobQueue:
    """Both sides of the queue on one PostgreSQL schema (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        schema: str = "sheaf_queue",
        stalled_after_s: float = 30.0,
        name: str = "",
        pool_max: int = 4,
        poll_s: float = 0.25,
    ) -> None:
        if not _SCHEMA.fullmatch(schema):
            raise ValueError(f"queue schema {schema!r} is not a lower-case SQL identifier")
        self.url = url
        self.schema = schema
        self.stalled_after_s = stalled_after_s
        self.name = name or default_name()
        self.poll_s = poll_s
        self._kwargs = {
            "options": f"-c search_path={schema}",
            "application_name": f"sheaf-jobs {self.name}"[:63],
        }
        self.connector = PsycopgConnector(conninfo=url, kwargs=self._kwargs, min_size=1, max_size=pool_max)
        self.app = App(connector=self.connector)
        self._open = False
        self._opening = asyncio.Lock()
        self._last_sweep = 0.0
        self._unsettled: dict[str, float] = {}  # job id -> when its queue job was seen ended
        self._attempts = 0  # attempts this worker runs now (serve's stop bound)

    def queue_for(self, circuit_hash: str, kind: str = KIND_OUTER) -> str:
        return queue_for(circuit_hash, kind)

    # -- lifecycle --------------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the schema if needed (once, under an advisory lock), then open the pool."""
        if self._open:
            return
        async with self._opening:
            if not self._open:
                await self.ensure_schema()
                await self.app.open_async()
                self._open = True

    async def close(self) -> None:
        if self._open:
            self._open = False
            await self.app.close_async()

    async def ensure_schema(self) -> None:
        """procrastinate's schema and ours, in `self.schema`: applied by the first process to get
        here (others wait on the advisory lock, then find it)."""
        async with await psycopg.AsyncConnection.connect(
            self.url, options=self._kwargs["options"], application_name=self._kwargs["application_name"]
        ) as c:
            async with c.transaction():
                await c.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                await c.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                cur = await c.execute("SELECT to_regclass(%s)", (f"{self.schema}.procrastinate_jobs",))
                row = await cur.fetchone()
                if row is None or row[0] is None:
                    log.info("jobs: creating procrastinate's schema in %s", self.schema)
                    await c.execute(SchemaManager.get_schema())
                await c.execute(_TABLES)

    # -- the leader's side -------------------------------------------------------------------------

    async def submit(self, unit: Unit, *, max_attempts: int) -> dict[str, Any]:
        """Enqueue `unit` unless it is already there: a unit is stored once, and a queue job is
        deferred only while none waits or runs for it. Returns the unit's row state."""
        args = {
            "job_id": unit.job_id,
            "kind": unit.kind,
            "circuit_hash": unit.circuit_hash,
            "domain_id": unit.domain_id,
            "batch_id": unit.batch_id,
            "input": json.dumps(unit.to_json(), separators=(",", ":")),
            "max_attempts": max_attempts,
        }
        await self.connector.execute_query_async(_INSERT, **args)
        st = await self.state(unit.job_id)
        if st["state"] in ("done", "failed"):
            return st
        if st["queue_status"] in ("todo", "doing"):
            return st  # a queue job already waits or runs for it
        if st["queue_job_id"] is not None and st["queue_status"] is not None:
            # its queue job ended without settling the unit (a worker of another version?)
            why = f"the queue job ended {st['queue_status']} without a result"
            await self._fail(unit.job_id, PROVER_WORKER_ERROR, why, final=True)
            return await self.state(unit.job_id)
        qid: int | None
        try:
            qid = await self.app.configure_task(
                TASK,
                queue=queue_for(unit.circuit_hash, unit.kind),
                lock=unit.job_id,
                queueing_lock=unit.job_id,
            ).defer_async(job_id=unit.job_id, max_attempts=max_attempts)
        except pexc.AlreadyEnqueued:
            qid = await self._waiting_job(unit.job_id)
        if qid is not None:
            await self.connector.execute_query_async(_SET_QUEUE_JOB, qid=qid, job_id=unit.job_id)
            log.info(
                "job %s (batch %d): queued as %d on %s",
                unit.job_id,
                unit.batch_id,
                qid,
                queue_for(unit.circuit_hash, unit.kind),
            )
        return await self.state(unit.job_id)

    async def _waiting_job(self, job_id: str) -> int | None:
        row = await self._one(
            "SELECT max(id) AS id FROM procrastinate_jobs WHERE queueing_lock = %(k)s AND status = 'todo'",
            k=job_id,
        )
        return int(row["id"]) if row and row["id"] is not None else None

    async def _one(self, query: str, **args: Any) -> dict[str, Any] | None:
        rows = await self.connector.execute_query_all_async(query, **args)
        return dict(rows[0]) if rows else None

    async def state(self, job_id: str) -> dict[str, Any]:
        """The job's row (state, attempts, worker, result, error) and its queue job's status;
        KeyError if there is none."""
        await self.open()
        row = await self._one(_STATE, job_id=job_id)
        if row is None:
            raise KeyError(job_id)
        return row

    async def run(
        self,
        unit: Unit,
        *,
        max_attempts: int,
        pickup_timeout_s: float = 600.0,
        total_timeout_s: float | None = None,
    ) -> JobResult:
        """Enqueue (idempotent) and wait for the result: JobResult, or ProvingFailed with the
        job's code once it failed for good (or no worker took it within pickup_timeout_s)."""
        t0 = time.monotonic()
        bound = total_timeout_s or max_attempts * (unit.prove_timeout_s + pickup_timeout_s)
        queued_since: float | None = None
        st: dict[str, Any] | None = None
        while True:
            try:
                if st is None:  # (again, after a database error: it is idempotent)
                    await self.open()
                    st = await self.submit(unit, max_attempts=max_attempts)
                else:
                    st = await self.state(unit.job_id)
                res = await self._settle(unit, st, t0, bound, pickup_timeout_s, queued_since)
            except (pexc.ConnectorException, psycopg.Error, OSError) as e:
                # PostgreSQL restarting, a dropped connection: the job goes on; wait and ask again
                if time.monotonic() - t0 > bound:
                    raise ProvingFailed(PROVER_TIMEOUT, f"the job queue is unreachable: {e}") from None
                log.warning("job %s: the queue is unreachable (%s); retrying", unit.job_id, e)
                await asyncio.sleep(1.0)
                continue
            if isinstance(res, JobResult):
                return res
            queued_since = res
            if st["state"] not in ("done", "failed"):
                await self.maybe_sweep()
                await asyncio.sleep(self.poll_s)

    async def _settle(
        self,
        unit: Unit,
        st: dict[str, Any],
        t0: float,
        bound: float,
        pickup_timeout_s: float,
        queued_since: float | None,
    ) -> JobResult | float | None:
        """One look at the job: its result, ProvingFailed, or (still waiting) since when it has
        been waiting for a worker. Gives a job up when no worker took it in time, or after `bound`."""
        if st["state"] == "done":
            return JobResult.from_json(st["result"])
        if st["state"] == "failed":
            err = st["error"] or {}
            raise ProvingFailed(
                str(st["error_code"] or PROVER_WORKER_ERROR),
                str(err.get("message", "")),
                bad_leaves=[int(i) for i in err.get("bad_leaves", [])],
            )
        now = time.monotonic()
        qid = st["queue_job_id"]
        jm = self.app.job_manager
        if st["queue_status"] in ("succeeded", "failed", "cancelled", "aborted"):
            # the queue job ended but the row is not settled: a sweeper settles it just after
            # the queue job (a moment), else the worker's database writes failed and nothing will
            first = self._unsettled.setdefault(unit.job_id, now)
            if now - first > 5.0:
                why = f"the queue job ended {st['queue_status']} without a stored result"
                log.error("job %s: %s", unit.job_id, why)
                await self._fail(unit.job_id, PROVER_WORKER_ERROR, why, final=True)
            return None
        self._unsettled.pop(unit.job_id, None)
        since = (queued_since or now) if st["state"] == "queued" else None
        if since is not None and now - since > pickup_timeout_s:
            # only a job still waiting is cancelled; one a worker just took goes on
            if qid is None or await jm.cancel_job_by_id_async(int(qid)):
                why = (
                    f"no worker took the job in {pickup_timeout_s:g} s (is a worker serving circuit "
                    f"{unit.circuit_hash[:16]}, queue {queue_for(unit.circuit_hash, unit.kind)}?)"
                )
                log.error("job %s: %s", unit.job_id, why)
                await self._fail(unit.job_id, PROVER_UNAVAILABLE, why, final=True)
        elif now - t0 > bound:
            if qid is not None:
                with contextlib.suppress(pexc.ConnectorException):
                    await jm.cancel_job_by_id_async(int(qid), abort=True)
            why = f"no result after {bound:g} s"
            log.error("job %s: %s", unit.job_id, why)
            await self._fail(unit.job_id, PROVER_TIMEOUT, why, final=True)
        return since

    # -- stalled jobs (both sides) -----------------------------------------------------------------

    async def maybe_sweep(self) -> None:
        """sweep_stalled, at most every stalled_after_s / 4."""
        now = time.monotonic()
        if now - self._last_sweep >= max(0.5, self.stalled_after_s / 4):
            self._last_sweep = now
            try:
                await self.sweep_stalled()
            except (pexc.ConnectorException, psycopg.Error) as e:
                log.warning("jobs: stalled-job sweep failed: %s", e)

    async def sweep_stalled(self) -> list[int]:
        """Jobs of workers that stopped heartbeating (procrastinate's get_stalled_jobs): run again
        elsewhere while they have attempts left, else failed (PROVER_LOST). Returns their ids."""
        jm = self.app.job_manager
        stalled = await jm.get_stalled_jobs(task_name=TASK, seconds_since_heartbeat=self.stalled_after_s)
        out = []
        for j in stalled:
            assert j.id is not None
            job_id = str(j.task_kwargs.get("job_id", ""))
            try:
                if _attempts_left(j):
                    await jm.retry_job(j)
                    outcome, state = "lost", "queued"
                else:
                    await jm.finish_job(j, pjobs.Status.FAILED, delete_job=False)
                    outcome, state = "lost", "failed"
            except pexc.ConnectorException:
                continue  # someone else took care of it first
            out.append(j.id)
            n = j.attempts + 1
            why = f"the worker running attempt {n} stopped heartbeating (killed or lost)"
            log.warning(
                "job %s: %s; %s",
                job_id,
                why,
                "it runs again elsewhere" if state == "queued" else "no attempt left: failed",
            )
            await self.connector.execute_query_async(_END_RUNS_OF, outcome=outcome, job_id=job_id)
            await self._fail(job_id, PROVER_LOST, why, final=state == "failed")
        return out

    async def _fail(
        self, job_id: str, code: str, message: str, *, final: bool, bad_leaves: Iterable[int] = ()
    ) -> None:
        err = failure_json(ProvingFailed(code, message, bad_leaves=list(bad_leaves)))
        await self.connector.execute_query_async(
            _FAIL,
            state="failed" if final else "queued",
            code=code,
            error=json.dumps(err),
            job_id=job_id,
        )

    # -- the worker's side -------------------------------------------------------------------------

    def register(self, execute: Execute) -> None:
        """The task a worker runs: take the unit, prove it with `execute`, store the result (or the
        failure) in sheaf_jobs."""

        async def prove(context: JobContext, job_id: str, max_attempts: int) -> str:
            self._attempts += 1
            try:
                return await self._run_attempt(context, job_id, max_attempts, execute)
            finally:
                self._attempts -= 1

        self.app.task(name=TASK, pass_context=True, retry=_Retry())(prove)

    async def _run_attempt(
        self, context: JobContext, job_id: str, max_attempts: int, execute: Execute
    ) -> str:
        job = context.job
        attempt = job.attempts + 1
        row = await self._one(_TAKE, job_id=job_id, attempt=attempt, worker=self.name, qid=job.id)
        if row is None:
            return "settled before this attempt"  # a late duplicate: done or failed already
        run = await self._one(_RUN, job_id=job_id, attempt=attempt, worker=self.name, qid=job.id)
        assert run is not None
        run_id = int(run["id"])
        final_attempt = attempt >= max_attempts
        t0 = time.monotonic()
        try:
            try:
                unit = unit_from_json(row["input"])
                if unit.job_id != job_id:
                    raise ProvingFailed(JOB_MALFORMED, f"the stored unit is {unit.job_id}")
                log.info(
                    "job %s (batch %d, %s): attempt %d/%d on %s",
                    job_id,
                    unit.batch_id,
                    unit.shape,
                    attempt,
                    max_attempts,
                    self.name,
                )
                res = await execute(unit)
            except ProvingFailed:
                raise
            except Exception as e:  # a bug or an unexpected failure: retried within the bound
                log.exception("job %s: attempt %d failed", job_id, attempt)
                raise ProvingFailed(PROVER_WORKER_ERROR, f"{type(e).__name__}: {e}") from e
        except ProvingFailed as e:
            final = final_attempt or str(e.code) not in RETRYABLE
            await self._fail(job_id, str(e.code), e.message, final=final, bad_leaves=e.bad_leaves)
            await self.connector.execute_query_async(_END_RUN, outcome=f"failed:{e.code}", id=run_id)
            log.error(
                "job %s: attempt %d/%d failed: %s%s",
                job_id,
                attempt,
                max_attempts,
                e,
                "" if final else " (it will run again)",
            )
            raise JobFailed(str(e.code), e.message, final) from None
        except asyncio.CancelledError:  # the worker stops (shutdown): offered again to the next one
            with contextlib.suppress(Exception):
                await asyncio.shield(self._interrupted(job_id, run_id, final_attempt))
            raise
        stored = await self._one(
            _DONE,
            result=json.dumps(res.to_json(), separators=(",", ":")),
            worker=self.name,
            job_id=job_id,
        )
        await self.connector.execute_query_async(
            _END_RUN, outcome="done" if stored else "done:duplicate", id=run_id
        )
        log.info(
            "job %s: proved in %.1f s by %s%s",
            job_id,
            time.monotonic() - t0,
            self.name,
            "" if stored else " (a result was already stored: kept)",
        )
        return "done"

    async def _interrupted(self, job_id: str, run_id: int, final: bool) -> None:
        try:
            await self._fail(
                job_id, PROVER_LOST, f"worker {self.name} stopped during the attempt", final=final
            )
            await self.connector.execute_query_async(_END_RUN, outcome="interrupted", id=run_id)
        except (pexc.ConnectorException, psycopg.Error, OSError) as e:  # the database is gone
            log.warning(
                "job %s: not handed back (%s): it runs again elsewhere once this worker's "
                "heartbeat is %g s old",
                job_id,
                str(e).strip() or type(e).__name__,
                self.stalled_after_s,
            )

    async def serve(
        self,
        execute: Execute,
        *,
        queues: list[str],
        concurrency: int = 1,
        heartbeat_s: float = 10.0,
        drain_s: float = 30.0,
        install_signal_handlers: bool = True,
        stop_grace_s: float = 5.0,
    ) -> None:
        """Run jobs of `queues` until stopped (SIGTERM/SIGINT with the signal handlers: running
        jobs get `drain_s` to finish, then are interrupted and offered again). Sweeps stalled jobs
        meanwhile. procrastinate's worker stops when it loses the database (its heartbeat fails):
        it is started again after a pause, until a signal stops this one.

        The stop is bounded: once stopped, procrastinate's worker gets `stop_grace_s` (plus
        `drain_s` while a job runs) to hand its jobs back and unregister. Its database calls wait
        up to 30 s for a pool connection each, so while PostgreSQL is down it would take minutes:
        past the bound it is abandoned (logged) and serve returns. A job it had stays `running` in
        the queue with this worker's heartbeat stopped: the stalled-job recovery (sweep_stalled)
        runs it again elsewhere, as after a kill -9."""
        await self.open()
        self.register(execute)
        stopping = asyncio.Event()
        current: list[Worker] = []

        def stop() -> None:
            stopping.set()
            for w in current:
                w.stop()  # type: ignore[no-untyped-call]

        if install_signal_handlers:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop)
        sweeper = asyncio.create_task(self._sweep_loop(), name="stalled-sweep")
        try:
            while not stopping.is_set():
                w = Worker(
                    self.app,
                    queues=queues,
                    name=self.name,
                    concurrency=concurrency,
                    wait=True,
                    update_heartbeat_interval=heartbeat_s,
                    stalled_worker_timeout=self.stalled_after_s,
                    install_signal_handlers=False,
                    fetch_job_polling_interval=2.0,
                    shutdown_graceful_timeout=drain_s,
                )
                current[:] = [w]
                try:
                    if not await self._run_bounded(w, stopping, drain_s, stop_grace_s):
                        return  # abandoned: the database did not answer the stop path in time
                except (pexc.ConnectorException, psycopg.Error, OSError) as e:
                    log.warning("worker %s: the queue is unreachable (%s)", self.name, e)
                if not stopping.is_set():
                    log.warning(
                        "worker %s: the queue worker stopped (database lost?); restarting in 2 s", self.name
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), 2.0)
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
            if install_signal_handlers:
                loop = asyncio.get_running_loop()
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)

    async def _run_bounded(self, w: Worker, stopping: asyncio.Event, drain_s: float, grace_s: float) -> bool:
        """Run procrastinate's worker `w` until it returns (True); once `stopping` is set, give it
        grace_s (+ drain_s while a job runs) more, then cancel it (False: abandoned)."""
        run = asyncio.create_task(w.run(), name="queue-worker")  # type: ignore[no-untyped-call]
        stop_wait = asyncio.create_task(stopping.wait(), name="queue-worker-stop")
        try:
            await asyncio.wait({run, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            if not run.done():
                # run() has started (it clears a stop requested before): ask it again
                w.stop()  # type: ignore[no-untyped-call]
                bound = grace_s + (drain_s if self._attempts else 0.0)
                await asyncio.wait({run}, timeout=bound)
                if not run.done():
                    log.warning(
                        "worker %s: stopping: the queue's PostgreSQL did not answer within %g s; "
                        "exiting without unregistering (a job it was running is re-run elsewhere "
                        "once its heartbeat is %g s old)",
                        self.name,
                        bound,
                        self.stalled_after_s,
                    )
                    for _ in range(10):  # run() awaits its loop again once cancelled: twice
                        run.cancel()
                        await asyncio.wait({run}, timeout=0.2)
                        if run.done():
                            break
                    return False
        finally:
            stop_wait.cancel()
            if not run.done():  # serve itself was cancelled
                run.cancel()
        await run  # its exception, if any
        return True

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(max(0.5, self.stalled_after_s / 4))
            await self.maybe_sweep()
