"""The recursion tree's jobs on the PostgreSQL job queue (issue 14): `recursion.queue = "postgres"` with
a tree deployment (aggregator/tree_prover.py queue mode, aggregator.jobs.TreeJob, aggregator/worker.py).

The workers are real `aggregator worker` processes on the session's PostgreSQL (aggregator/pg_local.py)
with tree keys only (`--tree-cache`); each runs the stand-in `tree serve --level L`
(bench/standins/tree.py: the real protocol, real Merkle nodes, a deterministic fake proof) on demand.
The leader is a TreeProver with the queue, as `aggregator run` builds it.

- one batch's two leaf jobs are proved by TWO workers at once (the job rows name both), the merge
  after them, and the top Output is exactly the local prover's; the progress text walks the levels;
- a worker killed (-9, with its tree process) mid-job: its job runs again on the other worker after
  the stalled bound (its runs: lost, then done) and the top is the same;
- a leader stopped after one leaf job's output was kept in the store (`tree_nodes`, PostgreSQL): the
  next leader on the same store and queue restores that job (outcome "restored") and enqueues only the
  other leaf job and the merge; the top is the uninterrupted run's;
- a worker serves only the levels whose proving key it holds: without the top level's, the leaf jobs
  are proved and the merge waits on its own queue until it is given up (PROVER_UNAVAILABLE);
- a tree job is self-contained and named by batch, level, circuit and inputs.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from test_tree_resume import _new_proof

from aggregator.jobs import KIND_TREE, PROVER_UNAVAILABLE, TreeJob, unit_from_json
from aggregator.jobs_pg import PgJobQueue, queue_for
from aggregator.leaves import leaf_statement_hash
from aggregator.merkle import merkle_root
from aggregator.metrics import Metrics
from aggregator.pg_local import LocalPostgres
from aggregator.proving import ProvingFailed
from aggregator.records import KIND_RECURSIVE
from aggregator.store import StoreThread
from aggregator.store_pg import PostgresStore
from aggregator.tree_prover import TreeProver, TreeRun
from bench.standins import tree as tree_standin
from bench.standins import write_binary
from bench.standins.tree import make_keys
from sheaf.recursion_tree import TreePlan

ROOT = Path(__file__).resolve().parents[2]
PLAN = TreePlan(k=2, npub=1, fanin=2, levels=1)  # 4 leaves: 2 leaf jobs, 1 merge (the top)
HEARTBEAT, STALLED = 0.5, 2.5  # worker heartbeat and the stalled bound (production: 10 s / 30 s)


def leaf(i: int, vk: int) -> dict[str, Any]:
    """A Groth16 worker leaf; a leaf job's K proofs share one vk."""
    return {
        "scheme": "groth16",
        "vk": "0x" + (bytes([vk]) * 128).hex(),
        "proof": "0x" + (bytes([i]) * 256).hex(),
        "public_inputs": ["0x" + i.to_bytes(32, "big").hex()],
    }


LEAVES = [leaf(i, vk=1 + i // 2) for i in range(4)]


class Env:
    def __init__(self, url: str, tmp: Path) -> None:
        self.url, self.tmp = url, tmp
        self.schema = "q_" + uuid.uuid4().hex[:12]
        self.cache = tmp / "tree"
        self.hashes = make_keys(self.cache, PLAN)
        self.binary = write_binary(tmp / "sheaf-gnark", tree_standin)

    def prover(self, queue: PgJobQueue | None = None, pickup_s: float = 600.0) -> TreeProver:
        return TreeProver(
            PLAN,
            circuit_hashes=self.hashes,
            binary=self.binary,
            cache_dir=self.cache,
            metrics=Metrics(),
            restart_backoff_s=0.01,
            queue=queue,
            queue_pickup_timeout_s=pickup_s,
        )

    def queue(self) -> PgJobQueue:
        return PgJobQueue(self.url, schema=self.schema, stalled_after_s=STALLED, name="leader")

    def start_worker(self, name: str, *, prove_s: float) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "wb")
        cmd = [
            *(sys.executable, "-m", "aggregator.cli", "worker", "--db-url", self.url),
            *("--schema", self.schema, "--name", name, "--worker-bin", self.binary),
            *("--cache", str(self.tmp / "no-flat-keys"), "--tree-cache", str(self.cache)),
            *("--heartbeat-s", str(HEARTBEAT), "--stalled-after-s", str(STALLED), "--drain-s", "0"),
        ]
        environ = {**os.environ, "SHEAF_TREE_STANDIN_PROVE_S": str(prove_s)}
        # its own process group: kill -9 takes the worker and its tree process, as a lost host would
        return subprocess.Popen(
            cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=environ, start_new_session=True
        )


@pytest.fixture
def env(pg_server: LocalPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    for v in ("PROVE_S", "EXIT_ON", "BAD_ROOT", "SALT"):
        monkeypatch.delenv(f"SHEAF_TREE_STANDIN_{v}", raising=False)
    return Env(pg_server.url(), tmp_path)


def stop(p: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if p.poll() is None:
        if sig == signal.SIGKILL:
            os.killpg(p.pid, sig)
        else:
            p.send_signal(sig)
    try:
        return p.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        return p.wait(10)


async def wait_for(what: str, cond: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while not (v := await cond()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
    return v


async def listening(q: PgJobQueue, n: int) -> None:
    """Until n workers take jobs (procrastinate's worker rows)."""

    async def enough() -> bool:
        return len(await rows(q, "SELECT id FROM procrastinate_workers")) >= n

    await wait_for(f"{n} workers", enough, 30)


async def rows(q: PgJobQueue, sql: str, **kw: Any) -> list[dict[str, Any]]:
    await q.open()
    return [dict(r) for r in await q.connector.execute_query_all_async(sql, **kw)]


async def local_run(env: Env) -> TreeRun:
    p = env.prover()
    try:
        return await p.prove_tree(LEAVES, batch_id=5)
    finally:
        await p.close()


def test_tree_job_is_self_contained_and_named_by_its_inputs() -> None:
    hashes = ["ab" * 32, "cd" * 32]
    plan = {"k": 2, "npub": 1, "fanin": 2, "levels": 1}

    def job(batch_id: int = 5, inputs: bytes = b"x", level: int = 0) -> TreeJob:
        fields = {"leaves": LEAVES[:2], "top": False} if level == 0 else {"level": 1, "children": []}
        return TreeJob.for_node(
            plan=plan,
            level=level,
            index=0,
            fields=fields,
            circuit_hashes=hashes,
            inputs=inputs,
            batch_id=batch_id,
            domain_id=1,
        )

    j = job()
    back = unit_from_json(j.to_json())
    assert back == j and isinstance(back, TreeJob) and back.circuit_hash == hashes[0]
    assert job().job_id == j.job_id  # a resumed leader names the same job
    assert job(batch_id=6).job_id != j.job_id and job(inputs=b"y").job_id != j.job_id
    assert job(level=1).circuit_hash == hashes[1] and job(level=1).op == "merge"
    assert queue_for(hashes[1], KIND_TREE) == "sheaf-tree-" + hashes[1][:16]
    with pytest.raises(ProvingFailed) as ei:
        unit_from_json({**j.to_json(), "op": "merge"})  # a leaf level takes leaf jobs only
    assert ei.value.code == "JOB_MALFORMED"


async def test_two_workers_share_a_batchs_leaf_jobs(env: Env) -> None:
    want = await local_run(env)
    q = env.queue()
    workers = [env.start_worker(n, prove_s=1.0) for n in ("worker-a", "worker-b")]
    prover = env.prover(q)
    try:
        await listening(q, 2)
        prover.start()
        run = asyncio.create_task(prover.prove_tree(LEAVES, batch_id=5, domain_id=1))
        seen: set[str] = set()
        gauges = prover.metrics.gauges
        busy: set[tuple[float, float]] = set()  # (jobs being proved, their highest level)
        while not run.done():
            seen.add(prover.progress(5) or "")
            busy.add((gauges["sheaf_recursive_proving"]()[()], gauges["sheaf_tree_proving_level"]()[()]))
            await asyncio.sleep(0.05)
        got = await run
        assert got.top == want.top and got.proof == want.proof and got.count == 4
        assert got.root == want.root
        assert {"level 0 of 1, 0 of 2 jobs done", "level 1 of 1, 0 of 1 jobs done"} <= seen, seen
        # the metrics show the jobs out on the queue: both leaf jobs at once, then the merge; none after
        assert {(2.0, 0.0), (1.0, 1.0)} <= busy, busy
        assert gauges["sheaf_recursive_proving"]()[()] == 0 and gauges["sheaf_tree_proving_level"]()[()] == -1
        jobs = await rows(q, "SELECT job_id, worker, state FROM sheaf_jobs ORDER BY job_id")
        leafs = [r for r in jobs if "-l0-" in r["job_id"]]
        assert len(jobs) == 3 and all(r["state"] == "done" for r in jobs)
        # the level's two leaf jobs were proved at once, one by each worker
        assert {r["worker"] for r in leafs} == {"worker-a", "worker-b"}, jobs
        # a resumed leader names the same jobs and gets the stored results (no new queue job)
        again = await prover.prove_tree(LEAVES, batch_id=5, domain_id=1)
        assert again.top == want.top
        assert len(await rows(q, "SELECT id FROM procrastinate_jobs")) == 3
    finally:
        await prover.close()
        rcs = [stop(w) for w in workers]
        await q.close()
    assert rcs == [0, 0], (env.tmp / "worker-a.log").read_text()[-3000:]


async def test_a_killed_workers_job_runs_again_on_the_other(env: Env) -> None:
    want = await local_run(env)
    q = env.queue()
    a = env.start_worker("worker-a", prove_s=30.0)
    b: subprocess.Popen[bytes] | None = None
    prover = env.prover(q)
    try:
        run = asyncio.create_task(prover.prove_tree(LEAVES, batch_id=5, domain_id=1))

        async def a_busy() -> list[dict[str, Any]]:
            return await rows(
                q, "SELECT job_id FROM sheaf_jobs WHERE state = 'running' AND worker = 'worker-a'"
            )

        lost = (await wait_for("worker-a to take a leaf job", a_busy, 30))[0]["job_id"]
        b = env.start_worker("worker-b", prove_s=0.05)
        assert stop(a, signal.SIGKILL) == -signal.SIGKILL
        got = await asyncio.wait_for(run, 60)
        assert got.top == want.top and got.proof == want.proof
        runs = await rows(
            q, "SELECT worker, outcome FROM sheaf_job_runs WHERE job_id = %(j)s ORDER BY id", j=lost
        )
        assert [(r["worker"], r["outcome"]) for r in runs] == [("worker-a", "lost"), ("worker-b", "done")]
        jobs = await rows(q, "SELECT worker, state FROM sheaf_jobs")
        assert len(jobs) == 3 and {(r["worker"], r["state"]) for r in jobs} == {("worker-b", "done")}
    finally:
        await prover.close()
        stop(a, signal.SIGKILL)
        rc = stop(b) if b is not None else 0
        await q.close()
    assert rc == 0, (env.tmp / "worker-b.log").read_text()[-3000:]


async def test_a_new_leader_enqueues_only_the_jobs_not_kept(
    env: Env, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept tree nodes with the queue: the first leader (one worker, so the leaf jobs run one after the
    other) is stopped once one leaf job's output is kept in the PostgreSQL store; the next leader on
    the same store and queue restores it and puts only the other leaf job and the merge on the queue."""
    want = await local_run(env)
    hashes = [leaf_statement_hash(x) for x in LEAVES]
    db1: StoreThread | None = StoreThread(PostgresStore(pg_url))
    assert db1 is not None
    s = db1.store
    await db1.run(s.insert_proofs, [_new_proof(h, i) for i, h in enumerate(hashes)])
    ids = [r.proof_id for r in await db1.run(s.take_queued, 1, KIND_RECURSIVE, 4)]
    b = await db1.run(s.create_batch, 1, KIND_RECURSIVE, ids, merkle_root(hashes), defer_id=True)
    q1, q2 = env.queue(), env.queue()
    w = env.start_worker("worker-a", prove_s=1.5)
    first, second = env.prover(q1), env.prover(q2)
    first.use_store(db1)
    db2: StoreThread | None = None
    try:
        await listening(q1, 1)
        run = asyncio.create_task(
            first.prove_tree(LEAVES, hashes, batch_id=b.batch_id, domain_id=1, root=b.root)
        )

        async def one_kept() -> list[Any]:
            assert not run.done(), run
            assert db1 is not None
            return list(await db1.run(s.tree_nodes, b.batch_id))

        await wait_for("a leaf job's node kept", one_kept, 30)
        assert first.progress(b.batch_id) == "level 0 of 1, 1 of 2 jobs done"
        run.cancel()  # the leader stops; the other leaf job runs on with the worker
        await asyncio.gather(run, return_exceptions=True)
        await first.close()
        [kept] = await db1.run(s.tree_nodes, b.batch_id)
        assert (kept.level, kept.circuit_hash) == (0, env.hashes[0])
        db1.close()
        db1 = None

        # the next leader: same store, same queue; what it puts on the queue is recorded
        db2 = StoreThread(PostgresStore(pg_url))
        second.use_store(db2)
        sent: list[tuple[int, int]] = []
        put = q2.run

        async def recorded(unit: TreeJob, **kw: Any) -> Any:
            sent.append((unit.level, unit.index))
            return await put(unit, **kw)

        monkeypatch.setattr(q2, "run", recorded)
        seen: list[str] = []
        run = asyncio.create_task(
            second.prove_tree(LEAVES, hashes, batch_id=b.batch_id, domain_id=1, root=b.root)
        )
        while not run.done():
            text = second.progress(b.batch_id)
            if text and (not seen or seen[-1] != text):
                seen.append(text)
            await asyncio.sleep(0.02)
        got = await run
        assert got.top == want.top and got.proof == want.proof and got.root == b.root == want.root
        # only the job without a kept node, then the merge over both leaf nodes
        assert sent == [(0, 1 - kept.job_index), (1, 0)], sent
        assert seen[0] == "level 0 of 1, 1 of 2 jobs done" and "level 0 of 1, 0 of 2 jobs done" not in seen
        m = second.metrics
        assert m.counter_value("sheaf_tree_jobs_total", level="0", outcome="restored") == 1
        assert m.counter_value("sheaf_tree_jobs_total", level="0", outcome="proved") == 1
        assert m.counter_value("sheaf_tree_jobs_total", level="1", outcome="proved") == 1
        # each job went on the queue once, and the kept one's ran once
        jobs = await rows(q2, "SELECT job_id, state FROM sheaf_jobs ORDER BY job_id")
        assert len(jobs) == 3 and all(r["state"] == "done" for r in jobs), jobs
        assert len(await rows(q2, "SELECT id FROM procrastinate_jobs")) == 3
        runs = await rows(q2, "SELECT job_id FROM sheaf_job_runs")
        assert sorted(r["job_id"].split("-")[3:5] for r in runs) == [["l0", "0"], ["l0", "1"], ["l1", "0"]]
        # the new leader kept what it proved beside the restored node
        nodes = await db2.run(db2.store.tree_nodes, b.batch_id)
        assert [(x.level, x.job_index) for x in nodes] == [(0, 0), (0, 1), (1, 0)]
        assert [x for x in nodes if (x.level, x.job_index) == (0, kept.job_index)] == [kept]
    finally:
        await first.close()
        await second.close()
        rc = stop(w)
        for db in (db1, db2):
            if db is not None:
                db.close()
    assert rc == 0, (env.tmp / "worker-a.log").read_text()[-3000:]


async def test_a_worker_serves_only_the_levels_it_has_keys_for(env: Env) -> None:
    (env.cache / env.hashes[1][:32] / "pk.dump").unlink()  # level 1's vk only: no merge here
    q = env.queue()
    w = env.start_worker("worker-a", prove_s=0.05)
    prover = env.prover(q, pickup_s=1.5)
    try:
        await listening(q, 1)  # the pickup bound is short
        with pytest.raises(ProvingFailed) as ei:
            await asyncio.wait_for(prover.prove_tree(LEAVES, batch_id=7, domain_id=1), 60)
        assert ei.value.code == PROVER_UNAVAILABLE and queue_for(env.hashes[1], KIND_TREE) in ei.value.message
        jobs = await rows(q, "SELECT job_id, worker, state, error_code FROM sheaf_jobs ORDER BY job_id")
        got = [(r["job_id"].split("-")[3], r["worker"], r["state"], r["error_code"]) for r in jobs]
        assert got == [
            ("l0", "worker-a", "done", None),
            ("l0", "worker-a", "done", None),
            ("l1", None, "failed", PROVER_UNAVAILABLE),
        ]
    finally:
        await prover.close()
        rc = stop(w)
        await q.close()
    assert rc == 0
    log = (env.tmp / "worker-a.log").read_text()
    assert "serves tree level 0" in log and "serves tree level 1" not in log


@pytest.mark.skipif(
    os.environ.get("SHEAF_TREE_PROVE") != "1",
    reason="set SHEAF_TREE_PROVE=1 (real tree proving on the queue: cached K=2/F=2 tree keys in "
    "$SHEAF_CACHE/tree, two ~5.6 GB leaf jobs at once, minutes)",
)
async def test_real_tree_batch_split_across_two_workers(pg_server: LocalPostgres, tmp_path: Path) -> None:
    """Real proofs, real `sheaf-gnark tree serve`: 3 proofs (2 snarkjs of one vk + 1 gnark: leaf jobs
    [2] + [1]) through the queue, the two leaf jobs proved by two `aggregator worker` processes at
    once, the merge after; the top's root is the flat batch's. Prints each run's worker and time."""
    from agg_helpers import SRS, fixture_inputs

    from aggregator.leaves import leaf_statement_hash
    from aggregator.merkle import merkle_root
    from aggregator.recursion import worker_leaf
    from normalizers.api import Normalizer, ProofInput
    from sheaf.recursion_tree import tree_cache_root

    cache = tree_cache_root(None)
    metas = [json.loads(m.read_text()) for m in cache.glob("*/meta.json")]
    by_level = {int(m["level"]): str(m["circuit_hash"]) for m in metas}
    hashes = [by_level[lv] for lv in range(PLAN.levels + 1)]
    inputs = {i.name: i for i in fixture_inputs()}
    names = ["snarkjs/mul1_groth16/0", "snarkjs/mul1_groth16/1", "gnark/groth16_n1"]
    with Normalizer(srs=SRS, groth16_backend="groth16py") as n:
        leaves = [
            await worker_leaf(
                ProofInput(i.scheme, i.format, i.proof, i.vk, public=i.public), normalizer=n, npub=1
            )
            for i in (inputs[x] for x in names)
        ]
    url, schema = pg_server.url(), "q_" + uuid.uuid4().hex[:12]
    binary = str(ROOT / "build" / "bin" / "sheaf-gnark")

    def worker(name: str) -> subprocess.Popen[bytes]:
        cmd = [
            *(sys.executable, "-m", "aggregator.cli", "worker", "--db-url", url, "--schema", schema),
            *("--name", name, "--worker-bin", binary, "--tree-cache", str(cache)),
            *("--cache", str(tmp_path / "no-flat-keys"), "--drain-s", "0"),
        ]
        log = open(tmp_path / f"{name}.log", "wb")
        return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    q = PgJobQueue(url, schema=schema, name="leader")
    workers = [worker(x) for x in ("worker-a", "worker-b")]
    prover = TreeProver(
        PLAN, circuit_hashes=hashes, binary=binary, cache_dir=cache, metrics=Metrics(), queue=q
    )
    try:
        await listening(q, 2)
        prover.start()
        t0 = time.monotonic()
        run = await prover.prove_tree(leaves, batch_id=1, domain_id=1)
        wall = time.monotonic() - t0
        assert run.count == 3 and run.root == merkle_root([leaf_statement_hash(x) for x in leaves])
        assert len(run.proof) > 0
        jobs = await rows(q, "SELECT job_id, worker, state FROM sheaf_jobs ORDER BY job_id")
        leafs = [r for r in jobs if "-l0-" in r["job_id"]]
        assert len(leafs) == 2 and {r["worker"] for r in leafs} == {"worker-a", "worker-b"}, jobs
        runs = await rows(
            q,
            "SELECT job_id, worker, outcome, EXTRACT(EPOCH FROM finished_at - started_at) AS s, "
            "started_at FROM sheaf_job_runs ORDER BY started_at",
        )
    finally:
        await prover.close()
        for w in workers:
            stop(w)
        await q.close()
    print(
        f"\n[tree queue, real] 3 proofs, 2 workers: {wall:.1f}s from enqueue to top; runs "
        + "; ".join(
            f"{r['job_id'].split('-')[-3:]} on {r['worker']} {float(r['s']):.1f}s {r['outcome']}"
            for r in runs
        ),
        file=sys.stderr,
    )
