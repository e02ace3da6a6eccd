"""`aggregator worker --http-listen`: a worker's /healthz, /readyz and /metrics (aggregator/worker.py).

Real `aggregator worker` processes on a real PostgreSQL (the session's, or one of its own for the
test that stops it) with the protocol stand-in prover (bench/standins/jobs.py), as in
test_worker_queue.py. Checked: the port of `127.0.0.1:0` is written to --ready-file; /readyz is 200
with the worker's queues and shows the job it proves; /metrics counts a proved job and a failed one
(by kind, outcome and code), the job time, the prover process, the queue reachable; once PostgreSQL
stops, /readyz is 503 naming the unreachable queue and then the stalled heartbeat; bad --http-listen
values are CONFIG errors (exit 8); a tree job is counted by kind and shows its level while it runs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aggregator.jobs import CIRCUIT_MISMATCH, ProofJob
from aggregator.jobs_pg import PgJobQueue, queue_for
from aggregator.leaves import leaf_statement_hash
from aggregator.pg_local import LocalPostgres, local_postgres
from aggregator.proving import ProvingFailed
from aggregator.worker import parse_listen
from bench.standins import jobs as jobs_standin
from bench.standins import write_binary
from bench.standins.jobs import make_keys

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT, STALLED = 0.5, 2.5  # as test_worker_queue.py (production: 10 s / 30 s)


def unit_of(batch_id: int, chash: str, *, batch: int = 2) -> ProofJob:
    leaves = [
        {
            "scheme": "groth16",
            "vk": "0x" + (bytes([batch_id + i]) * 128).hex(),
            "proof": "0x" + (bytes([batch_id + i]) * 256).hex(),
            "public_inputs": ["0x" + (batch_id + i).to_bytes(32, "big").hex()],
        }
        for i in range(2)
    ]
    return ProofJob.for_batch(
        batch_id=batch_id,
        domain_id=1,
        batch=batch,
        npub=1,
        plonk=0,
        circuit_hash=chash,
        leaves=leaves,
        statement_hashes=[leaf_statement_hash(x) for x in leaves],
        prove_timeout_s=60.0,
    )


class Worker:
    """One `aggregator worker --http-listen 127.0.0.1:0` process and its HTTP port."""

    def __init__(self, url: str, schema: str, tmp: Path, *, prove_s: float) -> None:
        self.tmp = tmp
        self.cache = tmp / "keys"
        self.chash = make_keys(self.cache, 2, 1)
        ready = tmp / "ready.json"
        cmd = [
            sys.executable,
            "-m",
            "aggregator.cli",
            "worker",
            *("--db-url", url, "--schema", schema, "--cache", str(self.cache)),
            *("--worker-bin", write_binary(tmp / "sheaf-gnark", jobs_standin), "--name", "w-http"),
            *("--heartbeat-s", str(HEARTBEAT), "--stalled-after-s", str(STALLED), "--drain-s", "0"),
            *("--http-listen", "127.0.0.1:0", "--ready-file", str(ready)),
        ]
        self.log = tmp / "worker.log"
        env = {**os.environ, "SHEAF_STANDIN_PROVE_S": str(prove_s)}
        with open(self.log, "wb") as out:
            self.p = subprocess.Popen(
                cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + 30
        while not (ready.exists() and ready.read_text()):
            assert self.p.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no ready file"
            time.sleep(0.05)
        self.port = int(json.loads(ready.read_text())["http_port"])
        assert self.port > 0

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{self.port}{path}") as r:
            return r.status, await r.text()

    async def readyz(self) -> tuple[int, dict[str, Any]]:
        status, body = await self.get("/readyz")
        return status, json.loads(body)

    async def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        status, body = await self.get("/metrics")
        assert status == 200
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(body)
            for s in fam.samples
        }

    async def wait_ready(self, want: int, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status, body = await self.readyz()
            if status == want:
                return body
            assert self.p.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"/readyz still {status}: {body}"
            await asyncio.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.p.poll() is None:
            if sig == signal.SIGKILL:  # the worker and its prover processes
                os.killpg(self.p.pid, sig)
            else:
                self.p.send_signal(sig)
        try:
            return self.p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            return self.p.wait(10)


def m(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


async def test_metrics_count_jobs_and_readyz_shows_the_running_one(
    pg_server: LocalPostgres, tmp_path: Path
) -> None:
    schema = "q_" + uuid.uuid4().hex[:12]
    w = Worker(pg_server.url(), schema, tmp_path, prove_s=1.5)
    q = PgJobQueue(pg_server.url(), schema=schema, stalled_after_s=STALLED, name="leader")
    try:
        assert await w.get("/healthz") == (200, '{"status": "ok"}')
        body = await w.wait_ready(200)
        assert body["checks"] == {"queue": True, "heartbeat": True} and "reason" not in body
        assert body["queues"] == [queue_for(w.chash)] and body["worker"] == "w-http" and body["jobs"] == []
        before = await w.metrics()
        assert before[m("sheaf_worker_proving", kind="flat")] == 0
        assert before[m("sheaf_worker_jobs_taken_total", kind="flat")] == 0

        u = unit_of(1, w.chash)
        run = asyncio.create_task(q.run(u, max_attempts=1, pickup_timeout_s=30))
        deadline = time.monotonic() + 20
        while not (await w.readyz())[1]["jobs"]:  # the job it proves now, while it proves it
            assert time.monotonic() < deadline and not run.done(), "the job never showed in /readyz"
            await asyncio.sleep(0.05)
        status, body = await w.readyz()
        assert status == 200 and body["jobs"][0]["job_id"] == u.job_id, body
        assert body["jobs"][0]["kind"] == "flat" and body["jobs"][0]["batch_id"] == 1
        assert (await w.metrics())[m("sheaf_worker_proving", kind="flat")] == 1
        res = await asyncio.wait_for(run, 30)
        assert res.worker == "w-http"

        # a job of its circuit's queue in another shape: refused by the worker (CIRCUIT_MISMATCH)
        with pytest.raises(ProvingFailed) as ei:
            await asyncio.wait_for(q.run(unit_of(2, w.chash, batch=3), max_attempts=1), 30)
        assert ei.value.code == CIRCUIT_MISMATCH

        after = await w.metrics()
        assert after[m("sheaf_worker_jobs_taken_total", kind="flat")] == 2
        assert after[m("sheaf_worker_jobs_total", kind="flat", outcome="done")] == 1
        failed = m("sheaf_worker_jobs_total", kind="flat", outcome="failed", code=CIRCUIT_MISMATCH)
        assert after[failed] == 1
        assert after[m("sheaf_worker_job_seconds_count", kind="flat")] == 1
        assert after[m("sheaf_worker_job_seconds_sum", kind="flat")] >= 1.5  # the stand-in's proof time
        assert after[m("sheaf_worker_proving", kind="flat")] == 0
        assert after[m("sheaf_worker_proving_level")] == -1
        assert after[m("sheaf_worker_prover_processes", kind="flat")] == 1
        assert after[m("sheaf_worker_queue_reachable")] == 1
        assert 0 <= after[m("sheaf_worker_heartbeat_age_seconds")] < STALLED
        assert (await w.readyz())[0] == 200
    finally:
        rc = w.stop()
        await q.close()
    assert rc == 0, w.log.read_text()[-3000:]


async def test_readyz_503_once_postgres_stops(tmp_path: Path) -> None:
    """A server of its own: stopping the session's would disturb the other tests."""
    with local_postgres() as pg:
        w = Worker(pg.url(), "sheaf_queue", tmp_path, prove_s=0.1)
        try:
            await w.wait_ready(200)
            await asyncio.to_thread(pg.stop, remove=False)
            body = await w.wait_ready(503, timeout=STALLED + 10)
            assert body["ready"] is False and body["checks"]["queue"] is False, body
            assert "unreachable" in body["reason"], body
            assert (await w.metrics())[m("sheaf_worker_queue_reachable")] == 0
            # and once the bound passes without a heartbeat, the stall is named too
            deadline = time.monotonic() + STALLED + 10
            while (await w.readyz())[1]["checks"]["heartbeat"]:
                assert time.monotonic() < deadline, "the heartbeat never showed as stalled"
                await asyncio.sleep(0.1)
            status, body = await w.readyz()
            assert status == 503 and "heartbeat stalled" in body["reason"], body
            assert (await w.metrics())[m("sheaf_worker_heartbeat_age_seconds")] > STALLED
            assert (await w.get("/healthz"))[0] == 200  # the process itself is alive
        finally:
            w.stop(signal.SIGKILL)  # (SIGTERM: it would wait worker.STOP_GRACE_S for the lost database)


def test_bad_http_listen_is_a_config_error(pg_server: LocalPostgres, tmp_path: Path) -> None:
    for bad in ("127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:x", "http://127.0.0.1:80"):
        with pytest.raises(ValueError, match="--http-listen"):
            parse_listen(bad)
    assert parse_listen(":0") == ("127.0.0.1", 0) and parse_listen("[::1]:9100") == ("::1", 9100)
    cache = tmp_path / "keys"
    make_keys(cache, 2, 1)

    def run(listen: str) -> subprocess.CompletedProcess[str]:
        args = ["--db-url", pg_server.url(), "--cache", str(cache), "--http-listen", listen]
        return subprocess.run(
            [sys.executable, "-m", "aggregator.cli", "worker", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    r = run("127.0.0.1:70000")
    assert r.returncode == 8 and "CONFIG: --http-listen" in r.stderr, r.stderr
    with socket.socket() as taken:  # a port in use: refused at bind, before any job is taken
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        r = run(f"127.0.0.1:{taken.getsockname()[1]}")
    assert r.returncode == 8 and "cannot listen" in r.stderr, r.stderr


async def test_tree_jobs_count_by_kind_and_level(tmp_path: Path) -> None:
    """In process: a tree job the worker holds no keys for is counted as tree, failed, KEYS_MISSING,
    and its level shows while it runs (no database needed: the queue is never opened)."""
    from aggregator.jobs import KEYS_MISSING, TreeJob
    from aggregator.worker import ProvingWorker

    w = ProvingWorker(PgJobQueue("postgresql://unused@127.0.0.1:1/x", name="w"), cache_dir=str(tmp_path))
    job = TreeJob.for_node(
        plan={"k": 2, "npub": 1, "fanin": 2, "levels": 2},
        level=1,
        index=0,
        fields={"level": 1, "children": []},
        circuit_hashes=["aa" * 32, "bb" * 32],
        inputs=b"x",
        batch_id=7,
        domain_id=1,
    )
    seen: list[float] = []
    prove = w._prove

    async def watched(unit: Any) -> Any:
        seen.append(w.metrics.gauges["sheaf_worker_proving_level"]()[()])
        return await prove(unit)

    w._prove = watched  # type: ignore[method-assign]
    with pytest.raises(ProvingFailed) as ei:
        await w.execute(job)
    assert ei.value.code == KEYS_MISSING and seen == [1.0]
    assert w.metrics.counter_value("sheaf_worker_jobs_taken_total", kind="tree") == 1
    failed = {"kind": "tree", "outcome": "failed", "code": KEYS_MISSING}
    assert w.metrics.counter_value("sheaf_worker_jobs_total", **failed) == 1
    assert w.metrics.gauges["sheaf_worker_proving_level"]()[()] == -1 and not w.running
