"""Proving jobs on a real PostgreSQL (issue 15): the queue between the leader and `aggregator worker`
processes (aggregator/jobs.py, jobs_pg.py, worker.py).

The workers are real `aggregator worker` processes on the session's PostgreSQL (aggregator/pg_local.py)
running the production path (ProofJob -> PgJobQueue -> ProvingWorker -> RecursiveProver.run_unit ->
a prover process -> verify -> result row). Only the prover process is the protocol stand-in
(bench/standins/jobs.py: a digest instead of a minute-long outer proof); the real outer proof
through 2 workers and 2 aggregator instances is test_worker_e2e.py (SHEAF_TEST_WORKERS=1).

Checked: a unit's id is the batch's and survives serialization; enqueue, a worker takes the job,
kill -9 of that worker (and its prover) mid-job, another worker re-runs it (stalled heartbeat), the
result is the expected one, stored once, in one queue job; a re-enqueue returns the stored result;
RecursiveProver in queue mode (the aggregator's side, with real snarkjs leaves); a retried error
ends after max_attempts with its code; a job no worker serves ends PROVER_UNAVAILABLE; a worker
without the job's keys refuses it (KEYS_MISSING) and one whose binary would set up another circuit
is stopped (CIRCUIT_MISMATCH); `aggregator worker` exit statuses; a SIGTERM while the worker's
PostgreSQL is down exits within the stop bound and its job is re-run elsewhere; tree keys copied in
after a KEYS_MISSING refusal are found without a restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from agg_helpers import FIX

from aggregator.jobs import (
    CIRCUIT_MISMATCH,
    KEYS_MISSING,
    PROVER_UNAVAILABLE,
    PROVER_WORKER_ERROR,
    JobResult,
    ProofJob,
)
from aggregator.jobs_pg import PgJobQueue
from aggregator.leaves import leaf_statement_hash
from aggregator.pg_local import LocalPostgres
from aggregator.proving import ProvingFailed
from aggregator.recursion import RecursiveProver, worker_leaf
from bench.standins import jobs as jobs_standin
from bench.standins import write_binary
from bench.standins.jobs import circuit_hash, make_keys, proof_of
from normalizers.api import ProofInput

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT, STALLED = 0.5, 2.5  # worker heartbeat and the stalled bound (production: 10 s / 30 s)


def wire_leaf(i: int) -> dict[str, Any]:
    """A well-formed Groth16 worker leaf (the stand-in hashes it like the circuit)."""
    return {
        "scheme": "groth16",
        "vk": "0x" + (bytes([i]) * 128).hex(),
        "proof": "0x" + (bytes([i]) * 256).hex(),
        "public_inputs": ["0x" + (i).to_bytes(32, "big").hex()],
    }


def unit_of(batch_id: int, n: int = 2, *, batch: int = 2, chash: str = "", timeout: float = 60.0) -> ProofJob:
    leaves = [wire_leaf(batch_id * 10 + i) for i in range(n)]
    return ProofJob.for_batch(
        batch_id=batch_id,
        domain_id=1,
        batch=batch,
        npub=1,
        plonk=0,
        circuit_hash=chash or circuit_hash(batch, 1),
        leaves=leaves,
        statement_hashes=[leaf_statement_hash(x) for x in leaves],
        prove_timeout_s=timeout,
    )


class Env(SimpleNamespace):
    url: str
    schema: str
    cache: Path
    binary: str
    chash: str
    tmp: Path


@pytest.fixture
def env(pg_server: LocalPostgres, tmp_path: Path) -> Env:
    cache = tmp_path / "keys"
    chash = make_keys(cache, 2, 1)
    return Env(
        url=pg_server.url(),
        schema="q_" + uuid.uuid4().hex[:12],
        cache=cache,
        binary=write_binary(tmp_path / "sheaf-gnark", jobs_standin),
        chash=chash,
        tmp=tmp_path,
    )


def start_worker(
    e: Env,
    name: str,
    *,
    prove_s: float,
    extra: list[str] | None = None,
    env_extra: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    log = open(e.tmp / f"{name}.log", "wb")
    cmd = [
        sys.executable,
        "-m",
        "aggregator.cli",
        "worker",
        "--db-url",
        e.url,
        "--schema",
        e.schema,
        "--cache",
        str(e.cache),
        "--worker-bin",
        e.binary,
        "--name",
        name,
        "--heartbeat-s",
        str(HEARTBEAT),
        "--stalled-after-s",
        str(STALLED),
        "--drain-s",
        "0",
        *(extra or []),
    ]
    environ = {**os.environ, "SHEAF_STANDIN_PROVE_S": str(prove_s), **(env_extra or {})}
    # its own process group: kill -9 takes the worker and its prover process, as a lost host would
    return subprocess.Popen(
        cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=environ, start_new_session=True
    )


def stop(p: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if p.poll() is None:
        if sig == signal.SIGKILL:
            os.killpg(p.pid, sig)
        else:  # a graceful stop: the worker stops its prover itself
            p.send_signal(sig)
    try:
        return p.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        return p.wait(10)


async def wait_for(what: str, cond: Any, timeout: float, step: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = await cond()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(step)


async def rows(q: PgJobQueue, sql: str, **kw: Any) -> list[dict[str, Any]]:
    return await q.connector.execute_query_all_async(sql, **kw)


def test_unit_is_self_contained_and_named_by_its_batch() -> None:
    u = unit_of(7)
    back = ProofJob.from_json(u.to_json())
    assert back == u and back.job_id == u.job_id
    assert unit_of(7).job_id == u.job_id  # the same batch names the same job
    assert unit_of(8).job_id != u.job_id and unit_of(7, 1).job_id != u.job_id
    assert unit_of(7, chash="ab" * 32).job_id != u.job_id  # another circuit, another job
    with pytest.raises(ProvingFailed) as ei:
        ProofJob.from_json({**u.to_json(), "v": 99})
    assert ei.value.code == "JOB_MALFORMED"
    r = JobResult(b"\x01" * 256, list(u.statement_hashes), u.circuit_hash, 5, "w")
    assert JobResult.from_json(r.to_json()) == r


async def test_worker_killed_mid_job_another_worker_finishes(env: Env) -> None:
    q = PgJobQueue(env.url, schema=env.schema, stalled_after_s=STALLED, name="leader")
    a = start_worker(env, "worker-a", prove_s=60.0)
    b: subprocess.Popen[bytes] | None = None
    try:
        await q.open()
        u = unit_of(1)
        t_enq = time.monotonic()
        run = asyncio.create_task(q.run(u, max_attempts=3, pickup_timeout_s=60))

        async def taken_by_a() -> bool:
            try:
                st = await q.state(u.job_id)
            except KeyError:  # not enqueued yet
                return False
            return st["state"] == "running" and st["worker"] == "worker-a"

        await wait_for("worker-a to take the job", taken_by_a, 60)
        t_taken = time.monotonic() - t_enq
        await asyncio.sleep(1.0)  # mid-proof
        b = start_worker(env, "worker-b", prove_s=0.5)
        t_kill = time.monotonic()
        assert stop(a, signal.SIGKILL) == -signal.SIGKILL
        res = await asyncio.wait_for(run, 60)
        recovered = time.monotonic() - t_kill
        # the result: the expected proof of exactly these leaves, by the surviving worker
        assert res.proof == proof_of(env.chash, list(u.statement_hashes))
        assert res.leaves == list(u.statement_hashes) and res.worker == "worker-b"
        st = await q.state(u.job_id)
        assert st["state"] == "done" and st["attempts"] == 2 and st["worker"] == "worker-b"
        runs = await rows(
            q, "SELECT worker, outcome FROM sheaf_job_runs WHERE job_id = %(j)s ORDER BY id", j=u.job_id
        )
        assert [(r["worker"], r["outcome"]) for r in runs] == [("worker-a", "lost"), ("worker-b", "done")]
        qjobs = await rows(q, "SELECT id, status::text AS status, attempts FROM procrastinate_jobs")
        # one queue job, run twice (procrastinate counts the finished run too)
        assert len(qjobs) == 1 and qjobs[0]["status"] == "succeeded" and qjobs[0]["attempts"] == 2
        # idempotent: the same batch again gets the stored result, and no new queue job
        again = await q.run(u, max_attempts=3)
        assert again == res
        assert len(await rows(q, "SELECT id FROM procrastinate_jobs")) == 1
        assert len(await rows(q, "SELECT job_id FROM sheaf_jobs")) == 1
        print(
            f"\nworker killed mid-job: taken after {t_taken:.2f} s, result {recovered:.2f} s after "
            f"the kill (stalled bound {STALLED} s, heartbeat {HEARTBEAT} s)"
        )

        # the aggregator's side: RecursiveProver in queue mode, real snarkjs leaves converted by
        # the leader, the same unit proved by the live worker
        await prover_in_queue_mode(env, q)
    finally:
        stop(a, signal.SIGKILL)
        rc = stop(b) if b is not None else 0
        await q.close()
    assert rc == 0, (env.tmp / "worker-b.log").read_text()[-3000:]


async def prover_in_queue_mode(env: Env, q: PgJobQueue) -> None:
    sj = FIX / "snarkjs" / "mul1_groth16"
    items = [
        ProofInput(
            "groth16",
            "snarkjs",
            (sj / "proof0.json").read_bytes(),
            (sj / "verification_key.json").read_bytes(),
            public=(sj / "public0.json").read_bytes(),
        )
    ]
    p = RecursiveProver(
        batch=2,
        npub=1,
        normalizer=None,
        expected_circuit_hash=env.chash,
        max_attempts=2,
        queue=PgJobQueue(env.url, schema=env.schema, stalled_after_s=STALLED, name="agg"),
    )
    p.start()
    try:
        info = await p.wait_ready(10)
        assert info["queue"] == "postgres" and p.worker_pid is None  # no local prover process
        leaves = await p.leaves(
            items, [leaf_statement_hash(await worker_leaf(items[0], normalizer=None, npub=1))]
        )
        h = leaf_statement_hash(leaves[0])
        job = SimpleNamespace(batch_id=2, domain_id=1, aggregation_id=None, leaves=[h], items=items)
        proof = await p.prove(job)  # type: ignore[arg-type]
        assert proof == proof_of(env.chash, [h])
        st = await q.state(p.unit(job, leaves).job_id)  # type: ignore[arg-type]
        assert st["state"] == "done" and st["worker"] == "worker-b"
    finally:
        await p.close()


async def test_errors_are_retried_within_the_bound_then_coded(env: Env) -> None:
    q = PgJobQueue(env.url, schema=env.schema, stalled_after_s=STALLED, name="leader")
    w = start_worker(env, "worker-err", prove_s=0.1, env_extra={"SHEAF_STANDIN_ERROR": "INTERNAL"})
    try:
        u = unit_of(3)
        with pytest.raises(ProvingFailed) as ei:
            await asyncio.wait_for(q.run(u, max_attempts=2, pickup_timeout_s=60), 60)
        assert ei.value.code == PROVER_WORKER_ERROR
        st = await q.state(u.job_id)
        assert st["state"] == "failed" and st["attempts"] == 2
        runs = await rows(q, "SELECT outcome FROM sheaf_job_runs WHERE job_id = %(j)s", j=u.job_id)
        assert [r["outcome"] for r in runs] == [f"failed:{PROVER_WORKER_ERROR}"] * 2
        # a job of a circuit no worker holds keys for waits on its own queue, then is given up
        other = unit_of(4, chash="cd" * 32)
        t0 = time.monotonic()
        with pytest.raises(ProvingFailed) as ei:
            await q.run(other, max_attempts=2, pickup_timeout_s=1.5)
        assert ei.value.code == PROVER_UNAVAILABLE and time.monotonic() - t0 < 10
        assert (await q.state(other.job_id))["queue_status"] == "cancelled"
    finally:
        rc = stop(w)
        await q.close()
    assert rc == 0


async def test_worker_refuses_circuits_it_has_no_keys_for(env: Env) -> None:
    from aggregator.worker import ProvingWorker

    q = PgJobQueue(env.url, schema=env.schema, name="w")
    w = ProvingWorker(q, cache_dir=str(env.cache), binary=env.binary)
    try:
        assert set(w.served()) == {env.chash}
        with pytest.raises(ProvingFailed) as ei:
            await w.execute(unit_of(5, chash="ef" * 32))
        assert ei.value.code == KEYS_MISSING
        res = await w.execute(unit_of(6))  # the one it has: proved and verified
        assert res.proof == proof_of(env.chash, list(unit_of(6).statement_hashes)) and res.worker == "w"
    finally:
        await w.close()
    # pinned keys only: a binary that compiles another circuit (it would run a dev setup) is stopped
    p = RecursiveProver(
        batch=2,
        npub=1,
        normalizer=None,
        binary=env.binary,
        cache_dir=str(env.cache),
        expected_circuit_hash=env.chash,
        max_attempts=1,
        allow_setup=False,
        restart_backoff_s=0.01,
    )
    os.environ["SHEAF_STANDIN_CIRCUIT"] = "12" * 32
    try:
        with pytest.raises(ProvingFailed) as ei:
            await p.wait_ready(20)
        assert ei.value.code == CIRCUIT_MISMATCH
        assert not (env.cache / ("12" * 16)).exists()  # no keys were created
    finally:
        del os.environ["SHEAF_STANDIN_CIRCUIT"]
        await p.close()
    # and without the keys at all it does not even start
    p = RecursiveProver(
        batch=3,
        npub=1,
        normalizer=None,
        binary=env.binary,
        cache_dir=str(env.cache),
        expected_circuit_hash="34" * 32,
        allow_setup=False,
    )
    with pytest.raises(ProvingFailed) as ei:
        await p.wait_ready(20)
    assert ei.value.code == KEYS_MISSING
    await p.close()


def test_worker_cli_exit_statuses(env: Env, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "aggregator.cli", "worker", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    r = run("--db-url", env.url, "--schema", env.schema, "--cache", str(tmp_path / "empty"))
    assert r.returncode == 2 and "KEYS_MISSING" in r.stdout + r.stderr
    r = run("--cache", str(env.cache))
    assert r.returncode == 8 and "--db-url" in r.stderr  # no database named
    r = run("--db-url", "postgresql://sheaf@127.0.0.1:1/x", "--cache", str(env.cache))
    assert r.returncode == 6 and "UNREACHABLE" in r.stderr


async def test_sigterm_hands_the_running_job_back(env: Env) -> None:
    """A worker stopped gracefully (SIGTERM, --drain-s 0) mid-job hands the job back at once: no
    stalled wait; the next worker runs it."""
    q = PgJobQueue(env.url, schema=env.schema, stalled_after_s=30.0, name="leader")  # no stall path
    a = start_worker(env, "worker-a", prove_s=60.0)
    b: subprocess.Popen[bytes] | None = None
    try:
        u = unit_of(9)
        run = asyncio.create_task(q.run(u, max_attempts=3, pickup_timeout_s=60))

        async def running() -> bool:
            try:
                return (await q.state(u.job_id))["state"] == "running"
            except KeyError:
                return False

        await wait_for("worker-a to take the job", running, 60)
        assert stop(a) == 0  # SIGTERM: exits 0 after handing the job back
        st = await q.state(u.job_id)
        assert st["state"] == "queued" and st["queue_status"] == "todo", st
        b = start_worker(env, "worker-b", prove_s=0.2)
        res = await asyncio.wait_for(run, 60)
        assert res.worker == "worker-b"
        runs = await rows(
            q, "SELECT worker, outcome FROM sheaf_job_runs WHERE job_id = %(j)s ORDER BY id", j=u.job_id
        )
        assert [(r["worker"], r["outcome"]) for r in runs] == [
            ("worker-a", "interrupted"),
            ("worker-b", "done"),
        ]
    finally:
        stop(a, signal.SIGKILL)
        if b is not None:
            stop(b)
        await q.close()


async def test_postgres_restart_while_a_worker_proves(env: Env, pg_server: LocalPostgres) -> None:
    """PostgreSQL restarts (every connection cut) while a worker proves: the worker and the
    leader's wait reconnect, the job ends done with the expected result, the worker lives on."""
    q = PgJobQueue(env.url, schema=env.schema, stalled_after_s=STALLED, name="leader")
    w = start_worker(env, "worker-r", prove_s=3.0)
    try:
        u = unit_of(11)
        run = asyncio.create_task(q.run(u, max_attempts=3, pickup_timeout_s=60))

        async def running() -> bool:
            try:
                return (await q.state(u.job_id))["state"] == "running"
            except KeyError:
                return False

        await wait_for("the worker to take the job", running, 60)
        await asyncio.to_thread(pg_server.restart)
        res = await asyncio.wait_for(run, 90)
        assert res.proof == proof_of(env.chash, list(u.statement_hashes)) and res.worker == "worker-r"
        assert w.poll() is None, "the worker exited on a database restart"
        # and it still takes new jobs
        res2 = await asyncio.wait_for(q.run(unit_of(12), max_attempts=3, pickup_timeout_s=60), 60)
        assert res2.worker == "worker-r"
    finally:
        rc = stop(w)
        await q.close()
    assert rc == 0, (env.tmp / "worker-r.log").read_text()[-3000:]


def test_queue_configuration(tmp_path: Path) -> None:
    from aggregator.config import Config

    p = tmp_path / "sheaf.toml"
    url = "postgresql://sheaf@127.0.0.1:5432/sheaf"
    p.write_text(f'[aggregator]\ndb_url = "{url}"\n[aggregator.recursion]\nqueue = "postgres"\n')
    rc = Config.load(p).recursion
    assert (rc.queue, rc.queue_url, rc.queue_schema, rc.queue_max_inflight) == (
        "postgres",
        url,
        "sheaf_queue",
        4,
    )
    assert Config().recursion.queue == "local"  # the embedded default
    for body, match in [
        ('[aggregator.recursion]\nqueue = "postgres"\n', "needs db_url"),  # SQLite has no queue
        ('[aggregator.recursion]\nqueue = "redis"\n', "recursion.queue"),
        (
            f'[aggregator]\ndb_url = "{url}"\n[aggregator.recursion]\nqueue_schema = "Bad-Name"\n',
            "queue_schema",
        ),
        ("[aggregator.recursion]\nqueue_stalled_after_s = 1\n", "queue_stalled_after_s"),
    ]:
        p.write_text(body)
        with pytest.raises(ValueError, match=match):
            Config.load(p)
    # queue mode without a pinned circuit: recursion is off (workers prove only with pinned keys)
    p2 = RecursiveProver(batch=2, npub=1, normalizer=None, queue=PgJobQueue(url))
    assert p2.disabled_code == CIRCUIT_MISMATCH and not p2.accepts("groth16", 1)


async def test_sigterm_during_a_database_outage_exits_within_the_bound(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM while the queue's PostgreSQL is down (a worker mid-job): procrastinate's stop path
    waits for pool connections (30 s each); the worker exits within its stop bound (--drain-s 0 +
    worker.STOP_GRACE_S) with exit 0 and a log line naming the outage. The job it had is not lost:
    once PostgreSQL is back, the stalled-job recovery runs it on another worker, and the leader's
    waiting run gets that result. A server of its own: stopping the session's would disturb the
    other tests."""
    from aggregator import pg_local
    from aggregator.worker import STOP_GRACE_S

    with pg_local.local_postgres() as pg:
        e = Env(**{**vars(env), "url": pg.url()})
        q = PgJobQueue(e.url, schema=e.schema, stalled_after_s=STALLED, name="leader")
        a = start_worker(e, "worker-o", prove_s=60.0)
        b: subprocess.Popen[bytes] | None = None
        u = unit_of(13)
        run = asyncio.create_task(q.run(u, max_attempts=3, pickup_timeout_s=60))
        try:

            async def running() -> bool:
                try:
                    return (await q.state(u.job_id))["state"] == "running"
                except KeyError:
                    return False

            await wait_for("worker-o to take the job", running, 30)
            port = pg.port
            await asyncio.to_thread(pg.stop, remove=False)
            await asyncio.sleep(0.5)  # (a heartbeat missed) the worker's database calls now wait
            t0 = time.monotonic()
            a.send_signal(signal.SIGTERM)
            try:
                rc = await asyncio.to_thread(a.wait, STOP_GRACE_S + 5)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the worker did not exit within {STOP_GRACE_S + 5} s of SIGTERM")
            took = time.monotonic() - t0
            log = (e.tmp / "worker-o.log").read_text()
            assert rc == 0, log[-3000:]
            assert "did not answer" in log, log[-3000:]
            assert "unhandled exception" not in log and '"logger": "asyncio"' not in log, log[-3000:]

            # the job is recovered once PostgreSQL is back (on its port: the leader still waits)
            monkeypatch.setattr(pg_local, "_free_port", lambda: port)
            await asyncio.to_thread(pg.start)
            t1 = time.monotonic()
            b = start_worker(e, "worker-p", prove_s=0.2)
            res = await asyncio.wait_for(run, 30)
            assert res.worker == "worker-p" and res.proof == proof_of(e.chash, list(u.statement_hashes))
            st = await q.state(u.job_id)
            assert st["state"] == "done" and st["attempts"] == 2, st
            print(
                f"\nSIGTERM during a database outage: exited in {took:.2f} s (rc {rc}); the job "
                f"re-run by another worker {time.monotonic() - t1:.2f} s after PostgreSQL was back"
            )
        finally:
            run.cancel()  # (a failure above: the leader would retry for minutes)
            await asyncio.gather(run, return_exceptions=True)
            stop(a, signal.SIGKILL)
            rc_b = stop(b) if b is not None else 0
            await q.close()
        assert rc_b == 0, (e.tmp / "worker-p.log").read_text()[-3000:]


async def test_tree_keys_copied_in_later_are_found_without_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process (no queue: ProvingWorker.execute) with the tree stand-in (bench/standins/tree.py):
    level 1's keys are there but level 0's vk (which `tree serve --level 1` needs) is not, so a merge
    job is refused (KEYS_MISSING) and refused again at once within the back-off; once the vk is copied
    in and the back-off has passed, the next merge job is proved by the same worker."""
    from aggregator.jobs import TreeJob
    from aggregator.worker import ProvingWorker
    from bench.standins import tree as tree_standin
    from sheaf.recursion_tree import TreePlan

    for v in ("PROVE_S", "EXIT_ON", "BAD_ROOT", "SALT"):
        monkeypatch.delenv(f"SHEAF_TREE_STANDIN_{v}", raising=False)
    plan = TreePlan(k=2, npub=1, fanin=2, levels=1)
    cache = tmp_path / "tree"
    hashes = tree_standin.make_keys(cache, plan)
    vk0 = cache / hashes[0][:32] / "vk.bin"
    kept = vk0.read_bytes()
    vk0.unlink()
    recheck = 1.0
    w = ProvingWorker(
        PgJobQueue("postgresql://unused@127.0.0.1:1/x", name="w-tree"),
        cache_dir=str(tmp_path / "flat"),
        binary=write_binary(tmp_path / "sheaf-gnark", tree_standin),
        tree_cache_dir=str(cache),
        tree_keys_recheck_s=recheck,
    )
    leaves = [{**wire_leaf(i), "vk": wire_leaf(1 + i // 2)["vk"]} for i in range(4)]  # one vk a job
    kids = [
        {
            k: v
            for k, v in tree_standin.leaf_job(plan, hashes, {"leaves": leaves[i : i + 2]}).items()
            if k in tree_standin.OUTPUT_FIELDS
        }
        for i in (0, 2)
    ]

    def merge(batch_id: int) -> TreeJob:
        return TreeJob.for_node(
            plan={"k": 2, "npub": 1, "fanin": 2, "levels": 1},
            level=1,
            index=0,
            fields={"level": 1, "children": kids, "top": True},
            circuit_hashes=hashes,
            inputs=b"merge",
            batch_id=batch_id,
            domain_id=1,
            prove_timeout_s=30.0,
        )

    try:
        assert set(w.served_tree().values()) == {1}  # level 0 lacks its vk
        with pytest.raises(ProvingFailed) as ei:
            await w.execute(merge(1))
        assert ei.value.code == KEYS_MISSING and "vk.bin" in ei.value.message
        vk0.write_bytes(kept)  # the operator copies the missing key in
        t0 = time.monotonic()
        with pytest.raises(ProvingFailed) as ei:  # within the back-off: refused again at once
            await w.execute(merge(2))
        assert ei.value.code == KEYS_MISSING and "looked for again" in ei.value.message
        assert time.monotonic() - t0 < recheck
        await asyncio.sleep(recheck)
        res = await asyncio.wait_for(w.execute(merge(3)), 30)
        out = res.extra["output"]
        assert out["level"] == 1 and out["top"] is True and out["node"]["count"] == 4
        assert res.circuit_hash == hashes[1] and w.jobs_done == 1
    finally:
        await w.close()
