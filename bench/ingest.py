"""Aggregator ingest and finality benchmark.

- Ingest: acked (durably committed) submissions/s and ack latency p50/p99 over real gRPC on loopback,
  with 1, 8 and 32 concurrent clients, for Groth16 (snarkjs, distinct real proofs) and Halo2 (ezkl).
  The server runs in its own process (as in production); the load generator in this one.
  Distinct rows: the same statement in another domain is another submission, so a pool of real
  proofs times many domain ids gives as many distinct durable inserts as needed.
- Open loop: ack latency at a fixed 200 submissions/s.
- Finality: submit-to-FINALIZED time per batch size (anvil, 0.5 s blocks, 2 confirmations,
  2-of-3 operator processes).

Writes bench/results/ingest.json. `python -m bench.ingest` runs it alone.
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
from pathlib import Path
from typing import Any

from eth_account import Account

from aggregator.admission import ProofVerifier
from aggregator.app import App
from aggregator.client import AsyncClient
from aggregator.config import Config
from aggregator.records import ChainInfo
from aggregator.server import GrpcServer
from aggregator.service import Service
from aggregator.store import SqliteStore
from bench.table import show
from deploy.anvil import Anvil
from normalizers.api import Normalizer
from sheaf.paths import REPO_ROOT as ROOT

RESULTS = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT / "tests" / "aggregator"))


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))] if s else 0.0


# -- server process (no chain: ingest only) ---------------------------------------------------------


async def _serve(db: str, port_file: str, backend: str) -> None:
    srs = ROOT / "tests" / "fixtures" / "ezkl" / "verifier-k1.srs"
    cfg = Config(db_path=db, grpc_listen="127.0.0.1:0", max_leaves=256, max_wait_ms=1000, domains=[])
    svc = Service(
        cfg,
        SqliteStore(db),
        ProofVerifier(Normalizer(srs=srs, groth16_backend=backend)),
        ChainInfo(31337, "0x" + "00" * 20),
    )
    svc.start()
    srv = GrpcServer(svc, cfg.grpc_listen)
    await srv.start()
    Path(port_file).write_text(str(srv.port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await srv.stop(1.0)
    await svc.stop()


class Server:
    def __init__(self, tmp: Path, backend: str) -> None:
        self.port_file = tmp / f"port-{backend}"
        self.p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.ingest",
                "serve",
                str(tmp / f"ingest-{backend}.db"),
                str(self.port_file),
                backend,
            ],
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not self.port_file.exists():
            if self.p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("bench server did not start")
            time.sleep(0.05)
        time.sleep(0.1)
        self.target = f"127.0.0.1:{self.port_file.read_text()}"

    def stop(self) -> None:
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()


# -- load generation --------------------------------------------------------------------------------

_domain = [1000]


def _next_domain() -> int:
    _domain[0] += 1
    return _domain[0]


async def closed_loop(target: str, items: list[Any], n: int, clients: int) -> dict[str, Any]:
    work: list[tuple[Any, int]] = []
    while len(work) < n:
        d = _next_domain()
        work += [(it, d) for it in items]
    work = work[:n]
    lat: list[float] = []
    idx = [0]
    async with AsyncClient(target, timeout=30) as c:
        await c.submit(
            items[0].scheme,
            items[0].format,
            items[0].proof,
            vk=items[0].vk,
            public=items[0].public,
            settings=items[0].settings,
            domain_id=999,
        )  # warm up connection and vk cache

        async def worker() -> None:
            while idx[0] < len(work):
                it, d = work[idx[0]]
                idx[0] += 1
                t = time.perf_counter()
                r = await c.submit(
                    it.scheme,
                    it.format,
                    it.proof,
                    vk=it.vk,
                    public=it.public,
                    settings=it.settings,
                    domain_id=d,
                )
                assert not r.duplicate
                lat.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        el = time.perf_counter() - t0
    return {
        "clients": clients,
        "submissions": len(lat),
        "seconds": round(el, 3),
        "acked_per_s": round(len(lat) / el, 1),
        "p50_ms": round(_pct(lat, 50) * 1000, 2),
        "p99_ms": round(_pct(lat, 99) * 1000, 2),
    }


async def open_loop(target: str, items: list[Any], rate: float, seconds: float) -> dict[str, Any]:
    n = int(rate * seconds)
    d = _next_domain()
    lat: list[float] = []
    async with AsyncClient(target, timeout=30) as c:
        t0 = time.perf_counter()

        async def one(i: int) -> None:
            nonlocal d
            it = items[i % len(items)]
            dom = d + i // len(items)
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            start = t0 + i / rate
            await c.submit(it.scheme, it.format, it.proof, vk=it.vk, public=it.public, domain_id=dom)
            lat.append(time.perf_counter() - start)

        await asyncio.gather(*(one(i) for i in range(n)))
    _domain[0] = d + n // len(items) + 1
    return {
        "rate_per_s": rate,
        "submissions": n,
        "p50_ms": round(_pct(lat, 50) * 1000, 2),
        "p99_ms": round(_pct(lat, 99) * 1000, 2),
        "max_ms": round(max(lat) * 1000, 2),
    }


async def finality(tmp: Path, sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    # lazy: a test helper, importable only through the sys.path entry added above
    from agg_helpers import OPERATOR_KEYS, SUBMITTER_KEY, deploy_registry, proof_pool  # type: ignore[import-not-found]

    srs = ROOT / "tests" / "fixtures" / "ezkl" / "verifier-k1.srs"
    pool = proof_pool(240)
    out = []
    with Anvil(block_time=0.5) as node:
        ops = [Account.from_key(k).address for k in OPERATOR_KEYS]
        reg = deploy_registry(node.rpc_url, ops, 2)
        cfg = Config(
            db_path=str(tmp / "fin.db"),
            grpc_listen="127.0.0.1:0",
            http_listen="127.0.0.1:0",
            rpc_url=node.rpc_url,
            registry=reg,
            operators=ops,
            threshold=2,
            max_leaves=max(sizes),
            max_wait_ms=200,
            confirmations=2,
            poll_ms=100,
            srs_path=str(srs),
            groth16_backend="groth16py",
        )
        app = App(cfg, submitter_key=SUBMITTER_KEY)
        await app.start()
        target = f"127.0.0.1:{app.grpc.port}"
        env = dict(os.environ)
        procs = []
        for k in OPERATOR_KEYS[:2]:
            env["SHEAF_OPERATOR_KEY"] = k
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "aggregator.cli",
                        "operator",
                        "--target",
                        target,
                        "--srs",
                        str(srs),
                        "--groth16-backend",
                        "groth16py",
                        "--log-level",
                        "WARNING",
                    ],
                    cwd=ROOT,
                    env=dict(env),
                    stderr=subprocess.DEVNULL,
                )
            )
        try:
            used = 1
            async with AsyncClient(target) as c:
                # warm-up (operator processes start, caches fill): not measured
                w = pool[0]
                r0 = await c.submit(w.scheme, w.format, w.proof, vk=w.vk, public=w.public)
                await c.wait_finalized(r0.proof_id, 120)
                for size in sizes:
                    batch = pool[used : used + size]
                    used += size
                    t0 = time.perf_counter()
                    rs = await asyncio.gather(
                        *(c.submit(p.scheme, p.format, p.proof, vk=p.vk, public=p.public) for p in batch)
                    )
                    finals = await asyncio.gather(*(c.wait_finalized(r.proof_id, 120) for r in rs))
                    el = time.perf_counter() - t0
                    assert all(f.status == 6 for f in finals)
                    out.append({"batch_size": size, "submit_to_finalized_s": round(el, 2)})
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)
            await app.stop()
    return out


def _table(title: str, rows: list[dict[str, Any]]) -> None:
    if rows:
        keys = list(rows[0])
        show(title, keys, [[r[k] for k in keys] for r in rows], left=0)


def main() -> dict[str, Any]:
    # lazy: a test helper, importable only through the sys.path entry added above
    from agg_helpers import fixture_inputs, proof_pool

    groth = proof_pool(240)
    halo = [i for i in fixture_inputs() if i.scheme == "halo2"]
    res: dict[str, Any] = {
        "machine": {"cores": os.cpu_count()},
        "notes": [
            "server and load generator are separate processes on the same machine; "
            "SQLite WAL, synchronous=FULL",
            "an ack means the submission's group commit has returned (fsync'd)",
        ],
    }
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        for backend in ("groth16py", "sidecar"):
            srv = Server(tmp, backend)
            try:
                rows = [
                    asyncio.run(closed_loop(srv.target, groth, n, c))
                    for c, n in ((1, 300), (8, 1500), (32, 2000))
                ]
                res[f"groth16_{backend}"] = rows
                _table(f"Groth16 (snarkjs, verify backend {backend}): acked submissions", rows)
                ol = asyncio.run(open_loop(srv.target, groth, 200.0, 5.0))
                res[f"groth16_{backend}_open_loop_200"] = ol
                _table(f"Groth16 open loop (verify backend {backend})", [ol])
                if backend == "groth16py":
                    hrows = [
                        asyncio.run(closed_loop(srv.target, halo, n, c))
                        for c, n in ((1, 30), (8, 80), (32, 100))
                    ]
                    res["halo2"] = hrows
                    _table("Halo2 (ezkl): acked submissions", hrows)
            finally:
                srv.stop()
        fin = asyncio.run(finality(tmp, (1, 8, 32)))
        res["finality"] = fin
        _table("submit -> FINALIZED (anvil 0.5 s blocks, 2 confirmations, 2-of-3 operators)", fin)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        asyncio.run(_serve(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        main()
