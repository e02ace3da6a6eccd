"""Issue 15's done-criterion with the real outer proof: 2 `aggregator run` instances and 2
`aggregator worker` processes on ONE PostgreSQL, recursion through the queue (opt-in:
SHEAF_TEST_WORKERS=1; it needs the b1_p1 recursion keys in $SHEAF_CACHE/recursion, which
tests/aggregator/test_agg_recursive.py creates or finds, and a few minutes of real proving).

anvil with SheafRegistry + the b1_p1 outer verifier (deploy_recursive_verifier on the cached keys);
the instances share the store schema and the queue schema, recursion.queue = "postgres"; the workers
load the keys pinned by the manifest's circuit hash (--preload). Recursive proofs (gnark and snarkjs
Groth16, one public input) and attested ones (PLONK, Halo2) are submitted to both instances; the
operators talk to the follower only. While an outer proof is being computed, its worker is killed
with SIGKILL (with its prover): the other worker re-runs the job after the stalled bound; then the
leading instance is killed with SIGKILL too: the follower takes the lease, resumes the PENDING batch,
finds the same job (same id) and its result. Checked: every proof FINALIZED; the recursive ones in
RECURSIVE aggregations accepted by verifyProofAggregationKind, every statement posted exactly once;
one job row and one queue job per recursive batch, all done, the killed one run twice
(lost, done). Measured figures are printed (run with -s) and recorded in docs/performance.md."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from agg_helpers import (
    OPERATOR_KEYS,
    OWNER_KEY,
    AggregatorProc,
    ChainEnv,
    check_exactly_once,
    deploy_for_recursion,
    fixture_inputs,
    start_operator,
    stop_process,
    wait_all_finalized,
    write_config,
)

from aggregator.client import AsyncClient
from aggregator.config import RecursionConfig
from aggregator.pg_local import LocalPostgres
from aggregator.recursion import cache_root
from deploy.anvil import Anvil, free_port
from deploy.api import deploy_recursive_verifier, load_manifest, registry
from deploy.chain import connect
from sheaf.v1 import aggregator_pb2 as pb

pytestmark = [
    pytest.mark.slow,
    pytest.mark.outer_keys,
    pytest.mark.skipif(
        not os.environ.get("SHEAF_TEST_WORKERS"),
        reason="set SHEAF_TEST_WORKERS=1 (real outer proofs on 2 workers + 2 instances: minutes, ~10 GB)",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
TTL = 2.0  # lease_ttl_s
HEARTBEAT, STALLED = 1.0, 6.0  # the workers' heartbeat and the stalled bound
RECURSIVE_KIND = 1


class Deployed:
    def __init__(self, node: Anvil, out: Path, registry: str, operators: list[str], man: dict[str, Any]):
        self.node, self.out, self.registry, self.operators, self.man = node, out, registry, operators, man


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    with Anvil(block_time=0.5) as node:
        out = tmp_path_factory.mktemp("deployments")
        reg, ops = deploy_for_recursion(node.rpc_url, out)
        deploy_recursive_verifier(node.rpc_url, OWNER_KEY, batch=1, npub=1, out_dir=out, log=print)
        man = load_manifest(31337, out).recursive
        yield Deployed(node, out, str(reg.address), ops, man)


def start_worker(url: str, schema: str, name: str, log: Path, circuit: str) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "aggregator.cli",
        "worker",
        "--db-url",
        url,
        "--schema",
        schema,
        "--cache",
        cache_root(RecursionConfig()),
        "--circuit",
        circuit,
        "--preload",
        "--name",
        name,
        "--heartbeat-s",
        str(HEARTBEAT),
        "--stalled-after-s",
        str(STALLED),
        "--drain-s",
        "0",
    ]
    return subprocess.Popen(
        cmd, cwd=ROOT, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def kill_group(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()


def queue_rows(url: str, schema: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a query on the queue schema ([] while the schema does not exist yet)."""
    try:
        with psycopg.connect(url, options=f"-c search_path={schema}") as c:
            return c.execute(sql).fetchall()  # type: ignore[arg-type]
    except psycopg.errors.UndefinedTable:
        return []


def leader_of(ports: list[tuple[int, int]]) -> int | None:
    import urllib.request

    for i, (_, h) in enumerate(ports):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{h}/readyz", timeout=2) as r:
                st = json.load(r)
        except Exception as e:  # 503 still carries the body
            st = json.load(e) if hasattr(e, "read") else {}
        if st.get("lease", {}).get("leader"):
            return i
    return None


async def wait(what: str, cond: Any, timeout: float, step: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(step)


async def test_two_instances_two_workers_real_recursion(
    deployed: Deployed, pg_server: LocalPostgres, pg_url: str, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    chash = str(deployed.man["circuit_hash"])
    schema = "sq_" + uuid.uuid4().hex[:12]
    qurl = pg_server.url()
    ins = {i.name: i for i in fixture_inputs()}
    recursive = [ins["gnark/groth16_n1"], ins["snarkjs/mul1_groth16/0"], ins["snarkjs/mul1_groth16/1"]]
    attested = [ins["gnark/plonk_n1"], ins["ezkl/gemm_relu/proof0"]]
    env = ChainEnv(deployed.node, deployed.registry, deployed.operators)

    workers = {n: start_worker(qurl, schema, n, tmp_path / f"{n}.log", chash) for n in ("w1", "w2")}
    ports = [(free_port(), free_port()) for _ in range(2)]
    aggs = []
    for i, (g, h) in enumerate(ports):
        cfg = tmp_path / f"sheaf{i}.toml"
        write_config(
            cfg,
            env,
            tmp_path / "unused.db",
            g,
            h,
            db_url=pg_url,
            lease_ttl_s=TTL,
            instance_name=f"i{i}",
            deployments_dir=str(deployed.out),
            max_wait_ms=300,
        )
        with open(cfg, "a") as f:
            f.write(
                f'[aggregator.recursion]\nqueue = "postgres"\nqueue_url = "{qurl}"\n'
                f'queue_schema = "{schema}"\n'
                f"queue_stalled_after_s = {STALLED}\nmax_wait_ms = 500\nmax_attempts = 3\n"
            )
        aggs.append(AggregatorProc(cfg, tmp_path / f"aggregator{i}.log"))
    targets = [f"127.0.0.1:{g}" for g, _ in ports]
    ops: list[subprocess.Popen[bytes]] = []
    try:
        aggs[0].start()
        await aggs[0].wait_ready(120)
        await wait("a leader", lambda: leader_of(ports) == 0, 20)
        aggs[1].start()
        await aggs[1].wait_ready(120)
        ops = [
            start_operator(targets[1], k, tmp_path / f"op{i}.log") for i, k in enumerate(OPERATOR_KEYS[:2])
        ]

        subs = []
        for n, inp in enumerate([*recursive, *attested]):
            async with AsyncClient(targets[n % 2], timeout=30) as c:
                subs.append(
                    await c.submit(
                        inp.scheme, inp.format, inp.proof, vk=inp.vk, public=inp.public, settings=inp.settings
                    )
                )
        t_sub = time.monotonic()

        def running() -> list[tuple[Any, ...]]:
            return queue_rows(qurl, schema, "SELECT job_id, worker FROM sheaf_jobs WHERE state = 'running'")

        first = (await wait("a worker to prove", running, 600))[0]
        job_id, victim = str(first[0]), str(first[1])
        # mid-proof: its prover has the keys loaded and the request (not while loading keys)
        await wait(
            "the victim to prove",
            lambda: "leaves on worker pid" in (tmp_path / f"{victim}.log").read_text(),
            600,
        )
        await asyncio.sleep(10)
        kill_group(workers[victim])
        t_kill = time.monotonic()
        other = "w2" if victim == "w1" else "w1"

        def retaken() -> bool:
            r = queue_rows(qurl, schema, f"SELECT state, worker FROM sheaf_jobs WHERE job_id = '{job_id}'")
            return bool(r) and r[0][1] == other and r[0][0] in ("running", "done")

        # (the other worker may be proving another batch first: each takes one job at a time)
        await wait("the other worker to re-run the job", retaken, 900)
        rerun_s = time.monotonic() - t_kill
        # the leading instance dies too, while the job runs on the other worker
        lead = leader_of(ports)
        assert lead is not None
        aggs[lead].kill9()
        t_lead_kill = time.monotonic()
        survivor = 1 - lead
        await wait("the follower to lead", lambda: leader_of(ports) == survivor, 10 * TTL)
        takeover_s = time.monotonic() - t_lead_kill
        if survivor == 0:  # the operators were on instance 1: move them
            for p in ops:
                stop_process(p)
            ops = [
                start_operator(targets[0], k, tmp_path / f"op{i}b.log")
                for i, k in enumerate(OPERATOR_KEYS[:2])
            ]

        ids = [s.proof_id for s in subs]
        await wait_all_finalized(targets[survivor], ids, timeout=1500)
        t_final = time.monotonic() - t_sub
        acked = {s.proof_id: bytes(s.statement_hash) for s in subs}
        n_aggs = await check_exactly_once(targets[survivor], env, acked)
        w3 = connect(deployed.node.rpc_url)
        reg = registry(w3, load_manifest(31337, deployed.out))
        async with AsyncClient(targets[survivor], timeout=30) as c:
            for s in subs[: len(recursive)]:
                inc = await c.inclusion(s.proof_id)
                assert inc.kind == pb.RECURSIVE and inc.leaf_count == 1
                fn = reg.functions.verifyProofAggregationKind(
                    1, inc.aggregation_id, inc.leaf, list(inc.merkle_path), inc.leaf_count, inc.index
                )
                assert tuple(fn.call()) == (True, RECURSIVE_KIND)
            for s in subs[len(recursive) :]:
                assert (await c.inclusion(s.proof_id)).kind == pb.ATTESTED
        jobs = queue_rows(
            qurl, schema, "SELECT job_id, state, attempts, worker FROM sheaf_jobs ORDER BY job_id"
        )
        qjobs = queue_rows(qurl, schema, "SELECT queueing_lock, status::text FROM procrastinate_jobs")
        runs = queue_rows(
            qurl, schema, f"SELECT worker, outcome FROM sheaf_job_runs WHERE job_id = '{job_id}' ORDER BY id"
        )
        assert len(jobs) == len(recursive) and all(j[1] == "done" for j in jobs), jobs
        assert sorted(q[0] for q in qjobs) == sorted(j[0] for j in jobs)  # one queue job each
        assert all(q[1] == "succeeded" for q in qjobs), qjobs
        assert runs == [(victim, "lost"), (other, "done")], runs
        by_worker = {w: sum(1 for j in jobs if j[3] == w) for w in ("w1", "w2")}
        times = queue_rows(
            qurl, schema, "SELECT job_id, extract(epoch FROM finished_at - started_at) FROM sheaf_jobs"
        )
        print(
            f"\nWORKERS e2e: {len(subs)} proofs ({len(recursive)} recursive) FINALIZED in {t_final:.1f} s, "
            f"{n_aggs} aggregations; worker {victim} killed mid-proof: job re-run on {other} "
            f"{rerun_s:.1f} s after the kill (stalled bound {STALLED} s); leader killed, takeover "
            f"{takeover_s:.1f} s; jobs per worker {by_worker}; last attempt per job (s) "
            f"{sorted(round(float(t[1]), 1) for t in times)}; total {time.monotonic() - t0:.0f} s"
        )
    finally:
        for p in ops:
            stop_process(p)
        for a in aggs:
            a.stop()
        for p in workers.values():
            kill_group(p)
