"""Scale-out on PostgreSQL (issue 15): acked submissions/s with 1, 2 and 3 aggregator instances on
one PostgreSQL next to one instance on SQLite, and kill -9 of the leading instance during 1,000
submissions (lost, posted twice, time to fail over).

- Throughput: each instance is its own process (ingest only: no chain, as bench.ingest), the
  PostgreSQL server is a real durable one (fsync on, aggregator.pg_local) on the same machine, and
  the load generator (32 concurrent clients, spread evenly over the instances) is a third process
  group. Groth16 proofs (snarkjs) verified in-process (groth16py). Distinct rows: a pool of real
  proofs times many domain ids.
- Failover: two `aggregator run` instances on one PostgreSQL with anvil (0.5 s blocks, 2
  confirmations) and 2-of-3 operator processes; 8 clients submit 1,000 distinct real proofs to
  both; the leader is killed (-9) a third of the way in; clients of the dead instance move to
  the other. Every acked proof must be FINALIZED, on chain exactly once (the tests' checker).
- Worker killed mid-proof (recursion.queue = "postgres"): two `aggregator worker` processes on the
  PostgreSQL queue with the production heartbeat (10 s) and stalled bound (30 s); one outer-proof
  job (a real b1_p1 unit: the snarkjs fixture's leaf) is enqueued the way the leader does
  (PgJobQueue.run); the worker that takes it is killed with SIGKILL (with its prover) a third of
  the way into the proof; measured: kill -> the job running on the other worker -> its result.
  The prover is the protocol stand-in (bench/standins/jobs.py, 20 s per proof): recovery is
  the queue's, not the prover's. SHEAF_BENCH_WORKERS_REAL=1 runs it once more with the real
  `sheaf-gnark aggregate serve` on the cached b1_p1 keys (about a minute per proof, ~2x that for
  key loading; both workers preload).

Writes bench/results/scaleout.json. `python -m bench.scaleout` runs it alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from eth_account import Account

from aggregator.admission import ProofVerifier
from aggregator.app import open_store
from aggregator.client import AsyncClient
from aggregator.config import Config, RecursionConfig
from aggregator.jobs import ProofJob
from aggregator.jobs_pg import PgJobQueue
from aggregator.leaves import leaf_statement_hash, snarkjs_leaf
from aggregator.pg_local import LocalPostgres
from aggregator.records import ChainInfo
from aggregator.recursion import cache_root
from aggregator.server import GrpcServer
from aggregator.service import Service
from aggregator.worker import scan_keys
from bench.standins import jobs as jobs_standin
from bench.standins import write_binary
from bench.standins.jobs import make_keys, proof_of
from deploy.anvil import Anvil, free_port
from normalizers.api import Normalizer
from sheaf.paths import REPO_ROOT as ROOT

RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tests" / "aggregator"))
SRS = ROOT / "tests" / "fixtures" / "ezkl" / "verifier-k1.srs"


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else 0.0


# -- throughput: ingest-only instances ----------------------------------------------------------------


async def _serve(db: str, port_file: str, lead: str) -> None:
    pg = db.startswith("postgresql://")
    cfg = Config(
        db_path="" if pg else db,
        db_url=db if pg else "",
        grpc_listen="127.0.0.1:0",
        max_leaves=256,
        max_wait_ms=1000,
        domains=[],
    )
    svc = Service(
        cfg,
        open_store(cfg),
        ProofVerifier(Normalizer(srs=SRS, groth16_backend="groth16py")),
        ChainInfo(31337, "0x" + "00" * 20),
    )
    svc.start(lead=lead == "1")  # one instance batches (as the lease holder would)
    srv = GrpcServer(svc, cfg.grpc_listen)
    await srv.start()
    Path(port_file).write_text(str(srv.port))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await srv.stop(1.0)
    await svc.stop()


class Instance:
    def __init__(self, tmp: Path, db: str, i: int) -> None:
        self.port_file = tmp / f"port-{i}-{time.monotonic_ns()}"
        self.p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.scaleout",
                "serve",
                db,
                str(self.port_file),
                "1" if i == 0 else "0",
            ],
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not self.port_file.exists():
            if self.p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("bench instance did not start")
            time.sleep(0.05)
        time.sleep(0.1)
        self.target = f"127.0.0.1:{self.port_file.read_text()}"

    def stop(self) -> None:
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()


_domain = [5000]


async def closed_loop(targets: list[str], items: list[Any], n: int, clients: int) -> dict[str, Any]:
    work: list[tuple[Any, int]] = []
    while len(work) < n:
        _domain[0] += 1
        work += [(it, _domain[0]) for it in items]
    work = work[:n]
    lat: list[float] = []
    idx = [0]
    conns = [AsyncClient(t, timeout=60) for t in targets]
    for c in conns:
        await c.__aenter__()
        w = items[0]  # warm up the connection and the instance's vk cache
        await c.submit(w.scheme, w.format, w.proof, vk=w.vk, public=w.public, domain_id=4999)

    async def worker(c: AsyncClient) -> None:
        while idx[0] < len(work):
            it, d = work[idx[0]]
            idx[0] += 1
            t = time.perf_counter()
            r = await c.submit(it.scheme, it.format, it.proof, vk=it.vk, public=it.public, domain_id=d)
            assert not r.duplicate
            lat.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(conns[i % len(conns)]) for i in range(clients)))
    el = time.perf_counter() - t0
    for c in conns:
        await c.__aexit__(None, None, None)
    return {
        "acked_per_s": round(len(lat) / el, 1),
        "submissions": len(lat),
        "clients": clients,
        "p50_ms": round(_pct(lat, 50) * 1000, 2),
        "p99_ms": round(_pct(lat, 99) * 1000, 2),
    }


def throughput(tmp: Path, pg: LocalPostgres, items: list[Any], n: int) -> list[dict[str, Any]]:
    rows = []
    setups: list[tuple[str, int, str]] = [("sqlite", 1, str(tmp / "scaleout.db"))]
    setups += [("postgresql", k, pg.create_database(f"bench{k}")) for k in (1, 2, 3)]
    for backend, k, db in setups:
        insts = [Instance(tmp, db, i) for i in range(k)]
        try:
            r = asyncio.run(closed_loop([x.target for x in insts], items, n, 32))
        finally:
            for x in insts:
                x.stop()
        rows.append({"backend": backend, "instances": k, **r})
        print(
            f"  {backend:<10} x{k}: {r['acked_per_s']:>7} acked/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms"
        )
    return rows


# -- failover: two full instances, kill -9 the leader ------------------------------------------------


async def failover(tmp: Path, pg: LocalPostgres, n: int) -> dict[str, Any]:
    # lazy: test helpers, importable only through the sys.path entry added above
    from agg_helpers import (  # type: ignore[import-not-found]
        OPERATOR_KEYS,
        AggregatorProc,
        ChainEnv,
        check_exactly_once,
        deploy_registry,
        proof_pool,
        start_operator,
        stop_process,
        wait_all_finalized,
        write_config,
    )
    from test_pg_failover import readyz, submit_spread, wait_leader  # type: ignore[import-not-found]

    ttl = 2.0
    proofs = proof_pool(n)
    url = pg.create_database("failover")
    with Anvil(block_time=0.5) as node:
        ops_addr = [Account.from_key(k).address for k in OPERATOR_KEYS]
        env = ChainEnv(node, deploy_registry(node.rpc_url, ops_addr, 2), ops_addr)
        ports = [(free_port(), free_port()) for _ in range(2)]
        aggs = []
        for i, (g, h) in enumerate(ports):
            cfg = tmp / f"fo{i}.toml"
            write_config(
                cfg, env, tmp / "unused.db", g, h, db_url=url, lease_ttl_s=ttl, instance_name=f"i{i}"
            )
            aggs.append(AggregatorProc(cfg, tmp / f"fo{i}.log"))
        targets = [f"127.0.0.1:{g}" for g, _ in ports]
        procs = []
        try:
            aggs[0].start()
            await aggs[0].wait_ready()
            first = await wait_leader(ports[0][1], 10)
            aggs[1].start()
            await aggs[1].wait_ready()
            procs = [
                start_operator(targets[1], k, tmp / f"op{i}.log") for i, k in enumerate(OPERATOR_KEYS[:2])
            ]
            acked: dict[str, bytes] = {}
            t0 = time.monotonic()
            sub = asyncio.create_task(submit_spread(targets, proofs, 8, acked))
            while len(acked) < n // 3:
                await asyncio.sleep(0.01)
            aggs[0].kill9()
            killed = time.monotonic()
            at_kill = len(acked)
            took = await wait_leader(ports[1][1], 6 * ttl)
            takeover = time.monotonic() - killed
            await sub
            submit_s = time.monotonic() - t0
            assert took["lease"]["epoch"] == first["lease"]["epoch"] + 1
            final = await wait_all_finalized(targets[1], list(acked), timeout=600)
            all_final = time.monotonic() - t0
            n_aggs = await check_exactly_once(targets[1], env, acked)
            lost = len(acked) - len(final)  # acked, never FINALIZED (wait_all_finalized raises first)
            out = {
                "submissions": n,
                "acked": len(acked),
                "acked_at_kill": at_kill,
                "lost": lost,
                "posted_twice": 0,  # check_exactly_once raises otherwise
                "aggregations": n_aggs,
                "lease_ttl_s": ttl,
                "takeover_s": round(takeover, 2),
                "submit_s": round(submit_s, 1),
                "all_finalized_s": round(all_final, 1),
                "survivor_readyz": readyz(ports[1][1]),
            }
            print(
                f"  kill -9 leader after {at_kill} of {n} acked: {len(acked)} acked, {lost} lost, "
                f"0 posted twice, {n_aggs} aggregations; takeover {takeover:.2f} s (ttl {ttl} s); "
                f"all FINALIZED at {all_final:.1f} s"
            )
            return out
        finally:
            for a in aggs:
                a.stop()
            for p in procs:
                stop_process(p)


# -- a worker killed mid-proof: the job re-runs elsewhere ---------------------------------------------


def _real_b1_p1() -> tuple[str, str]:
    """(cache root, circuit hash) of the cached real b1_p1 keys, or ("", "") without them."""
    root = cache_root(RecursionConfig())
    for h, k in scan_keys(Path(root)).items():
        if (k.batch, k.npub, k.plonk) == (1, 1, 0):
            return root, h
    return "", ""


async def worker_kill(
    tmp: Path,
    pg: LocalPostgres,
    *,
    real: bool = False,
    heartbeat_s: float = 10.0,
    stalled_s: float = 30.0,
    prove_s: float = 20.0,
) -> dict[str, Any]:
    fx = ROOT / "tests" / "fixtures" / "snarkjs" / "mul1_groth16"
    leaf = snarkjs_leaf(
        (fx / "verification_key.json").read_bytes(),
        (fx / "proof0.json").read_bytes(),
        (fx / "public0.json").read_bytes(),
    )
    if real:
        cache, chash = _real_b1_p1()
        if not chash:
            raise RuntimeError("no cached b1_p1 recursion keys (run the recursive tests first)")
        binary = ""
    else:
        cache = str(tmp / "standin-keys")
        chash = make_keys(Path(cache), 1, 1)
        binary = write_binary(tmp / "standin-gnark", jobs_standin)
    schema = "bench_q_" + uuid.uuid4().hex[:8]
    url = pg.url()
    unit = ProofJob.for_batch(
        batch_id=int(time.time()),
        domain_id=1,
        batch=1,
        npub=1,
        plonk=0,
        circuit_hash=chash,
        leaves=[leaf],
        statement_hashes=[leaf_statement_hash(leaf)],
        prove_timeout_s=1800,
    )
    env = {**os.environ, "SHEAF_STANDIN_PROVE_S": str(prove_s)}
    logs = {n: tmp / f"{schema}-{n}.log" for n in ("w1", "w2")}
    procs: dict[str, subprocess.Popen[bytes]] = {}
    q = PgJobQueue(url, schema=schema, stalled_after_s=stalled_s, name="bench-leader")
    await q.open()  # the schema exists before the workers start
    try:
        for n, log in logs.items():
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
                cache,
                "--circuit",
                chash,
                "--preload",
                "--name",
                n,
                "--heartbeat-s",
                str(heartbeat_s),
                "--stalled-after-s",
                str(stalled_s),
                "--drain-s",
                "0",
            ]
            if binary:
                cmd += ["--worker-bin", binary]
            procs[n] = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env,
                stdout=open(log, "wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        t_load = time.monotonic()
        while not all("ready: circuit" in logs[n].read_text() for n in procs):  # keys preloaded
            if any(p.poll() is not None for p in procs.values()) or time.monotonic() - t_load > 1800:
                raise RuntimeError("a worker did not load its keys")
            await asyncio.sleep(0.5)
        load_s = time.monotonic() - t_load
        t0 = time.monotonic()
        run = asyncio.create_task(q.run(unit, max_attempts=3, pickup_timeout_s=600))
        while True:
            try:
                st = await q.state(unit.job_id)
            except KeyError:
                st = {"state": ""}
            if st["state"] == "running":
                break
            await asyncio.sleep(0.05)
        taken_s = time.monotonic() - t0
        victim = str(st["worker"])
        other = "w2" if victim == "w1" else "w1"
        await asyncio.sleep(prove_s / 3 if not real else 20.0)
        os.killpg(procs[victim].pid, signal.SIGKILL)
        procs[victim].wait()
        t_kill = time.monotonic()
        rerun_s = None
        while not run.done():
            st = await q.state(unit.job_id)
            if rerun_s is None and st["worker"] == other and st["state"] in ("running", "done"):
                rerun_s = time.monotonic() - t_kill
            await asyncio.sleep(0.05)
        res = run.result()
        result_s = time.monotonic() - t_kill
        runs = await q.connector.execute_query_all_async(
            "SELECT worker, outcome, extract(epoch FROM finished_at - started_at)::float AS s "
            "FROM sheaf_job_runs WHERE job_id = %(j)s ORDER BY id",
            j=unit.job_id,
        )
        qjobs = await q.connector.execute_query_all_async("SELECT id FROM procrastinate_jobs")
        assert [r["outcome"] for r in runs] == ["lost", "done"] and len(qjobs) == 1, (runs, qjobs)
        assert res.worker == other and res.leaves == unit.statement_hashes
        if not real:
            assert res.proof == proof_of(chash, unit.statement_hashes)
        out = {
            "prover": "sheaf-gnark aggregate serve b1_p1 (real)"
            if real
            else f"stand-in, {prove_s:g} s per proof",
            "heartbeat_s": heartbeat_s,
            "stalled_after_s": stalled_s,
            "key_preload_s": round(load_s, 1),
            "taken_after_s": round(taken_s, 2),
            "rerun_started_after_kill_s": round(rerun_s or 0.0, 2),
            "result_after_kill_s": round(result_s, 2),
            "rerun_prove_s": round(float(runs[-1]["s"]), 2),
            "runs": [[r["worker"], r["outcome"]] for r in runs],
            "queue_jobs": len(qjobs),
            "result_verified_by_worker": True,
        }
        print(
            f"  worker killed mid-proof ({out['prover']}): job re-run on the other worker "
            f"{out['rerun_started_after_kill_s']} s after the kill (heartbeat {heartbeat_s:g} s, stalled "
            f"bound {stalled_s:g} s), result {out['result_after_kill_s']} s after it; "
            f"1 queue job, runs {out['runs']}"
        )
        return out
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        await q.close()


def main() -> dict[str, Any]:
    from agg_helpers import proof_pool

    n_fail = int(os.environ.get("SHEAF_BENCH_FAILOVER", "1000"))
    res: dict[str, Any] = {
        "machine": {"cores": os.cpu_count()},
        "notes": [
            "every process (instances, PostgreSQL, load generator) on the same machine",
            "PostgreSQL 15 durable (fsync on, synchronous_commit on); SQLite WAL synchronous=FULL",
            "an ack means the submission's transaction has committed",
        ],
    }
    with tempfile.TemporaryDirectory() as td, LocalPostgres(durable=True, max_connections=200) as pg:
        tmp = Path(td)
        print("acked submissions/s (Groth16 snarkjs, 32 clients spread over the instances)")
        res["throughput"] = throughput(tmp, pg, proof_pool(240), 3000)
        print(f"failover ({n_fail} submissions)")
        res["failover"] = asyncio.run(failover(tmp, pg, n_fail))
        print("proving worker killed mid-proof")
        res["worker_kill"] = asyncio.run(worker_kill(tmp, pg))
        if os.environ.get("SHEAF_BENCH_WORKERS_REAL"):
            res["worker_kill_real"] = asyncio.run(worker_kill(tmp, pg, real=True))
    res["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scaleout.json").write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        asyncio.run(_serve(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        main()
