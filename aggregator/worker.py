"""`aggregator worker`: proves the queued outer proofs of any aggregator on the same PostgreSQL.

    aggregator worker --db-url postgresql://... [--concurrency 1] [--cache DIR] [--circuit HASH]

A worker holds recursion keys (a copy of the key cache of the deployment: `<cache>/<hash[:32]>/`
with meta.json, pk.dump, vk.bin, as `sheaf-deploy`/`sheaf-gnark aggregate setup` wrote them) and
serves the circuits whose keys it finds (or those named with --circuit): it listens to their queues
only (aggregator.jobs_pg.queue_for). For each job it runs the unit (aggregator.jobs.ProofJob) on a
`sheaf-gnark aggregate serve` process of that circuit, exactly as the aggregator's local worker does
(aggregator.recursion.RecursiveProver.run_unit), started with pinned keys only: it never runs a dev
setup (a binary that compiles another circuit is killed: CIRCUIT_MISMATCH; no keys: KEYS_MISSING),
then verifies the proof with the circuit's verifying key before storing it. A worker keeps
`concurrency` prover processes per circuit once used (each holds the proving key in memory; a proof
uses every core, so more than one per machine rarely pays).

A worker also proves recursion-tree jobs (aggregator.jobs.TreeJob, one leaf or merge job of a level)
for the tree levels whose keys it finds under `--tree-cache` (default: the `tree/` next to --cache;
`<hash[:32]>/` entries as `sheaf-gnark tree setup` writes them): it listens to those levels' queues
and runs each job with aggregator.tree_prover.TreeProver.run_job, i.e. a `sheaf-gnark tree serve
--level L` process started on demand for the job's level with the keys pinned by the job's circuit
hashes (level L's proving key, the vks below; its ready line must name the same circuits), kept for
the next job of that level and replaced by a job of another level. One tree process at a time per
worker: a tree job takes ~5-6 GB and every core, and starting a level costs a key load, so keeping
one warm process for the level in demand is the simplest thing that works.

Heartbeats, retries and the recovery of a killed worker's job are the queue's (aggregator.jobs_pg).

With `--http-listen HOST:PORT` a worker serves /healthz, /readyz (200 while it reaches the queue and
heartbeats within the stalled bound, else 503 naming why; what it proves now and which queues it
listens to) and /metrics (`sheaf_worker_*`: jobs by kind, level and outcome, job time, heartbeat age,
queue reachability, prover processes; docs/operations.md) so a stalled or idle worker is visible.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web

from aggregator.http import Listener, errors
from aggregator.jobs import (
    CIRCUIT_MISMATCH,
    KEYS_MISSING,
    KIND_TREE,
    PROVER_LOST,
    PROVER_WORKER_ERROR,
    JobResult,
    TreeJob,
    Unit,
)
from aggregator.jobs_pg import PgJobQueue, queue_for
from aggregator.metrics import Labels, Metrics
from aggregator.proving import ProvingFailed
from aggregator.recursion import PROVE_BUCKETS, RecursiveProver
from aggregator.tree_prover import TreeProver
from sheaf.recursion_tree import TreePlan

log = logging.getLogger("sheaf.worker")

# On SIGTERM, procrastinate's stop path (hand the running job back, unregister) gets this long, plus
# --drain-s while a job runs; past it (the queue's PostgreSQL is down: every call waits 30 s for a
# pool connection) the worker exits 0 without unregistering and the stalled-job recovery re-runs
# the job it had (aggregator.jobs_pg.PgJobQueue.serve).
STOP_GRACE_S = 5.0
# A tree deployment refused for missing keys (a level's vks below it, checked when its process
# starts) is refused again at once for this long, then its keys are looked for again (copied in
# since: proved, without a restart).
TREE_KEYS_RECHECK_S = 5.0


@dataclass(frozen=True)
class Keys:
    """One cached outer circuit: its hash, shape and directory."""

    circuit_hash: str
    batch: int
    npub: int
    plonk: int
    dir: Path


def scan_keys(cache_dir: Path) -> dict[str, Keys]:
    """The complete key cache entries under cache_dir (meta.json + pk.dump + vk.bin), by hash."""
    out: dict[str, Keys] = {}
    if not cache_dir.is_dir():
        return out
    for meta_path in sorted(cache_dir.glob("*/meta.json")):
        d = meta_path.parent
        try:
            meta = json.loads(meta_path.read_text())
            h = str(meta["circuit_hash"]).lower()
            shape = meta["shape"]
            k = Keys(h, int(shape["batch"]), int(shape["npub"]), int(shape.get("plonk", 0)), d)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if d.name != h[:32] or not ((d / "pk.dump").is_file() and (d / "vk.bin").is_file()):
            continue
        out[h] = k
    return out


def scan_tree_keys(cache_dir: Path) -> dict[str, int]:
    """The complete tree key entries under cache_dir (meta.json naming its level and circuit, pk.dump,
    vk.bin): circuit hash -> level."""
    out: dict[str, int] = {}
    if not cache_dir.is_dir():
        return out
    for meta_path in sorted(cache_dir.glob("*/meta.json")):
        d = meta_path.parent
        try:
            meta = json.loads(meta_path.read_text())
            h, level = str(meta["circuit_hash"]).lower(), int(meta["level"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if d.name == h[:32] and (d / "pk.dump").is_file() and (d / "vk.bin").is_file():
            out[h] = level
    return out


KIND_LABEL = {KIND_TREE: "tree"}  # the `kind` label of a job: flat (a flat outer proof) or tree


def kind_label(unit: Unit) -> str:
    return KIND_LABEL.get(unit.kind, "flat")


@dataclass(frozen=True)
class Running:
    """A job this worker proves now (/readyz, sheaf_worker_proving)."""

    job_id: str
    kind: str  # flat | tree
    level: int  # a tree job's level; -1 for a flat one
    batch_id: int
    started: float  # time.monotonic()

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            **({"level": self.level} if self.level >= 0 else {}),
            "batch_id": self.batch_id,
            "running_s": round(time.monotonic() - self.started, 3),
        }


class Liveness:
    """Whether the worker reaches its queue's PostgreSQL (a probe on a connection of its own: the
    pool's calls wait up to 30 s for a connection when the server is gone) and heartbeats (the
    successful register / heartbeat calls of its procrastinate worker: procrastinate has no hook for
    them, so `watch` wraps those methods of the queue's job manager)."""

    def __init__(self, stalled_after_s: float) -> None:
        self.stalled_after_s = stalled_after_s
        self.started = time.monotonic()
        self.last_beat: float | None = None  # the last successful heartbeat (or registration)
        self.reachable = False
        self.error = "not connected to the queue yet"

    def watch(self, job_manager: Any) -> None:
        for name in ("register_worker", "update_heartbeat"):
            setattr(job_manager, name, self._beat(getattr(job_manager, name)))

    def _beat(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kw: Any) -> Any:
            out = await fn(*args, **kw)
            self.last_beat = time.monotonic()
            return out

        return call

    async def probe(self, url: str, timeout_s: float) -> None:
        """One `SELECT 1` on a new connection, within timeout_s: sets reachable and error."""
        try:
            async with asyncio.timeout(timeout_s):
                conn = await psycopg.AsyncConnection.connect(url, application_name="sheaf-worker probe")
                async with conn:
                    await conn.execute("SELECT 1")
        except TimeoutError:
            self.reachable, self.error = False, f"no answer in {timeout_s:g} s"
            return
        except (psycopg.Error, OSError) as e:
            self.reachable, self.error = False, (str(e).strip() or type(e).__name__).splitlines()[0]
            return
        self.reachable, self.error = True, ""

    async def probe_every(self, url: str, period_s: float) -> None:
        while True:
            await self.probe(url, max(2.0, period_s))
            await asyncio.sleep(period_s)

    def heartbeat_age(self) -> float:
        """Seconds since the last successful heartbeat (since the start while there was none)."""
        return time.monotonic() - (self.last_beat if self.last_beat is not None else self.started)

    def checks(self) -> dict[str, bool]:
        beating = self.last_beat is not None and self.heartbeat_age() <= self.stalled_after_s
        return {"queue": self.reachable, "heartbeat": beating}

    def reasons(self) -> list[str]:
        c, out = self.checks(), []
        if not c["queue"]:
            out.append(f"the queue's PostgreSQL is unreachable: {self.error}")
        if not c["heartbeat"]:
            seen = "no heartbeat yet" if self.last_beat is None else "no heartbeat"
            out.append(
                f"heartbeat stalled: {seen} for {self.heartbeat_age():.1f} s "
                f"(stalled bound {self.stalled_after_s:g} s)"
            )
        return out


class ProvingWorker:
    """The executor of one `aggregator worker` process (see the module docstring)."""

    def __init__(
        self,
        queue: PgJobQueue,
        *,
        cache_dir: str,
        binary: str = "",
        concurrency: int = 1,
        circuits: list[str] | None = None,
        ready_timeout_s: float = 7200.0,
        verify: bool = True,
        tree_cache_dir: str = "",
        tree_keys_recheck_s: float = TREE_KEYS_RECHECK_S,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.queue = queue
        self.cache_dir = Path(cache_dir)
        self.binary = binary
        self.concurrency = concurrency
        self.only = [c.lower().removeprefix("0x") for c in circuits or []]
        self.ready_timeout_s = ready_timeout_s
        self.verify = verify
        self.metrics = Metrics()  # the sheaf_worker_* of /metrics (each prover keeps its own)
        self.liveness = Liveness(queue.stalled_after_s)
        self.running: dict[str, Running] = {}  # by job id
        self.queues: list[str] = []  # those it listens to (run_worker)
        self.keys: dict[str, Keys] = {}
        self._pools: dict[str, asyncio.Queue[RecursiveProver]] = {}
        self._provers: list[RecursiveProver] = []
        self.tree_cache_dir = Path(tree_cache_dir) if tree_cache_dir else self.cache_dir.parent / "tree"
        self._trees: dict[tuple[str, ...], TreeProver] = {}  # by the deployment's circuit hashes
        self.tree_keys_recheck_s = tree_keys_recheck_s
        self._keys_missing_at: dict[tuple[str, ...], float] = {}  # deployments refused: KEYS_MISSING
        self.jobs_done = 0
        self._describe_metrics()

    def _describe_metrics(self) -> None:
        m = self.metrics
        m.describe("sheaf_worker_jobs_taken_total", "Jobs this worker started, by kind (flat, tree)")
        m.describe(
            "sheaf_worker_jobs_total",
            "Jobs this worker ended, by kind, outcome (done, failed, lost) and code (failed, lost)",
        )
        m.describe("sheaf_worker_job_seconds", "Time of a job this worker proved, by kind and tree level")
        m.describe("sheaf_worker_proving", "Jobs this worker proves now, by kind")
        m.describe("sheaf_worker_proving_level", "Level of the tree job this worker proves now (-1: none)")
        m.describe(
            "sheaf_worker_heartbeat_age_seconds",
            "Seconds since the worker's last successful queue heartbeat (since its start if none)",
        )
        m.describe("sheaf_worker_queue_reachable", "1 if the worker's last queue call reached PostgreSQL")
        m.describe("sheaf_worker_prover_processes", "Running sheaf-gnark prover processes, by kind")
        m.describe("sheaf_worker_prover_peak_rss_bytes", "Largest prover process VmHWM seen, by kind")
        for kind in ("flat", "tree"):  # both series exist from the start: 0 is visible
            m.inc("sheaf_worker_jobs_taken_total", 0, kind=kind)
        m.gauge("sheaf_worker_proving", self._proving)
        m.gauge(
            "sheaf_worker_proving_level",
            lambda: {(): float(max((r.level for r in self.running.values()), default=-1))},
        )
        m.gauge("sheaf_worker_heartbeat_age_seconds", lambda: {(): self.liveness.heartbeat_age()})
        m.gauge("sheaf_worker_queue_reachable", lambda: {(): float(self.liveness.reachable)})
        m.gauge("sheaf_worker_prover_processes", self._prover_processes)
        m.gauge("sheaf_worker_prover_peak_rss_bytes", self._prover_peak_rss)

    def _proving(self) -> dict[Labels, float]:
        out: dict[Labels, float] = {(("kind", k),): 0.0 for k in ("flat", "tree")}
        for r in self.running.values():
            out[(("kind", r.kind),)] += 1
        return out

    def _prover_processes(self) -> dict[Labels, float]:
        flat = sum(p.worker_pid is not None for p in self._provers)
        tree = sum(t.worker_pid is not None for t in self._trees.values())
        return {(("kind", "flat"),): float(flat), (("kind", "tree"),): float(tree)}

    def _prover_peak_rss(self) -> dict[Labels, float]:
        flat = max((p.peak_rss_bytes for p in self._provers), default=0)
        tree = max((t.peak_rss_bytes for t in self._trees.values()), default=0)
        return {(("kind", "flat"),): float(flat), (("kind", "tree"),): float(tree)}

    def status(self) -> dict[str, Any]:
        """/readyz: the checks, why it is not ready, and what it does (jobs, queues, tree levels)."""
        checks = self.liveness.checks()
        reasons = self.liveness.reasons()
        return {
            "ready": all(checks.values()),
            "checks": checks,
            **({"reason": "; ".join(reasons)} if reasons else {}),
            "worker": self.queue.name,
            "heartbeat_age_s": round(self.liveness.heartbeat_age(), 3),
            "jobs": [r.to_json() for r in self.running.values()],
            "queues": self.queues,
            "tree_levels": sorted(set(self.served_tree().values())),
        }

    def served(self) -> dict[str, Keys]:
        """The circuits this worker proves: those with keys, narrowed to --circuit (prefixes)."""
        self.keys = scan_keys(self.cache_dir)
        if not self.only:
            return dict(self.keys)
        return {h: k for h, k in self.keys.items() if any(h.startswith(p) for p in self.only)}

    def served_tree(self) -> dict[str, int]:
        """The tree levels this worker proves: circuit hash -> level, narrowed to --circuit."""
        keys = scan_tree_keys(self.tree_cache_dir)
        return {h: lv for h, lv in keys.items() if not self.only or any(h.startswith(p) for p in self.only)}

    def _pool(self, k: Keys) -> asyncio.Queue[RecursiveProver]:
        pool = self._pools.get(k.circuit_hash)
        if pool is None:
            pool = asyncio.Queue()
            for _ in range(self.concurrency):
                p = RecursiveProver(
                    batch=k.batch,
                    npub=k.npub,
                    plonk=k.plonk,
                    normalizer=None,
                    metrics=Metrics(),  # per process; the worker's own are sheaf_worker_*
                    binary=self.binary,
                    cache_dir=str(self.cache_dir),
                    expected_circuit_hash=k.circuit_hash,
                    max_attempts=1,  # the queue retries (possibly on another worker)
                    ready_timeout_s=self.ready_timeout_s,
                    allow_setup=False,
                    name=self.queue.name,
                )
                p.start()
                self._provers.append(p)
                pool.put_nowait(p)
            self._pools[k.circuit_hash] = pool
        return pool

    def preload(self) -> None:
        """Start the prover processes of every served circuit now (keys load in the background)."""
        for k in self.served().values():
            self._pool(k)

    async def execute(self, unit: Unit) -> JobResult:
        """Prove one job (the queue's Execute), counted in the worker's metrics and /readyz."""
        kind = kind_label(unit)
        level = unit.level if isinstance(unit, TreeJob) else -1
        lv = {"level": str(level)} if level >= 0 else {}
        self.metrics.inc("sheaf_worker_jobs_taken_total", kind=kind)
        r = Running(unit.job_id, kind, level, unit.batch_id, time.monotonic())
        self.running[unit.job_id] = r
        try:
            res = await self._prove(unit)
        except ProvingFailed as e:
            self.metrics.inc("sheaf_worker_jobs_total", kind=kind, outcome="failed", code=str(e.code))
            raise
        except asyncio.CancelledError:  # stopped or the queue worker lost: handed back (jobs_pg)
            self.metrics.inc("sheaf_worker_jobs_total", kind=kind, outcome="lost", code=PROVER_LOST)
            raise
        except Exception:  # jobs_pg stores it as PROVER_WORKER_ERROR
            self.metrics.inc("sheaf_worker_jobs_total", kind=kind, outcome="failed", code=PROVER_WORKER_ERROR)
            raise
        finally:
            self.running.pop(unit.job_id, None)
        self.metrics.inc("sheaf_worker_jobs_total", kind=kind, outcome="done")
        self.metrics.observe(
            "sheaf_worker_job_seconds", time.monotonic() - r.started, PROVE_BUCKETS, kind=kind, **lv
        )
        return res

    async def _prove(self, unit: Unit) -> JobResult:
        if isinstance(unit, TreeJob):
            return await self._execute_tree(unit)
        k = self.keys.get(unit.circuit_hash) or self.served().get(unit.circuit_hash)
        if k is None:
            raise ProvingFailed(
                KEYS_MISSING,
                f"worker {self.queue.name} has no keys for circuit {unit.circuit_hash[:16] or '(none)'} "
                f"under {self.cache_dir}",
            )
        if (k.batch, k.npub, k.plonk) != (unit.batch, unit.npub, unit.plonk):
            raise ProvingFailed(
                CIRCUIT_MISMATCH, f"circuit {k.circuit_hash[:16]} is {k.dir}'s, not a {unit.shape}"
            )
        pool = self._pool(k)
        p = await pool.get()
        try:
            res = await p.run_unit(unit)
            if self.verify and not await p.verify(res):
                raise ProvingFailed(
                    PROVER_WORKER_ERROR, "the outer proof does not verify with the circuit's vk"
                )
        finally:
            pool.put_nowait(p)
        self.jobs_done += 1
        return JobResult(
            res.proof, res.leaves, res.circuit_hash or k.circuit_hash, res.prove_ms, self.queue.name
        )

    async def _execute_tree(self, job: TreeJob) -> JobResult:
        """One tree job on this worker's TreeProver of the job's deployment (run_job: its level's
        `tree serve` process, pinned keys); the leader checks the output."""
        if job.circuit_hash not in self.served_tree():
            raise ProvingFailed(
                KEYS_MISSING,
                f"worker {self.queue.name} has no keys for tree level {job.level} (circuit "
                f"{job.circuit_hash[:16]}) under {self.tree_cache_dir}",
            )
        key = tuple(job.circuit_hashes)
        tp = self._trees.get(key)
        if tp is not None and tp.disabled and tp.disabled_code == KEYS_MISSING:
            age = time.monotonic() - self._keys_missing_at.setdefault(key, time.monotonic())
            if age < self.tree_keys_recheck_s:
                raise ProvingFailed(
                    KEYS_MISSING,
                    f"{tp.disabled} (found {age:.1f} s ago; looked for again after "
                    f"{self.tree_keys_recheck_s:g} s)",
                )
            log.info(
                "worker %s: tree level %d: looking for the keys found missing %.1f s ago again",
                self.queue.name,
                job.level,
                age,
            )
            del self._trees[key], self._keys_missing_at[key]
            await tp.close()
            tp = None
        if tp is None:
            p = job.plan
            tp = TreeProver(
                TreePlan(k=p["k"], npub=p["npub"], fanin=p["fanin"], levels=p["levels"]),
                circuit_hashes=job.circuit_hashes,
                metrics=Metrics(),
                binary=self.binary,
                cache_dir=self.tree_cache_dir,
                max_attempts=1,  # the queue retries (possibly on another worker)
                ready_timeout_s=self.ready_timeout_s,
            )
            self._trees[key] = tp
        try:
            res = await tp.run_job(job)
        except ProvingFailed:
            if tp.disabled and tp.disabled_code == KEYS_MISSING:  # (re-checked after the back-off)
                self._keys_missing_at.setdefault(key, time.monotonic())
            raise
        self.jobs_done += 1
        return JobResult(res.proof, [], res.circuit_hash, res.prove_ms, self.queue.name, res.extra)

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self._provers), return_exceptions=True)
        await asyncio.gather(*(t.close() for t in self._trees.values()), return_exceptions=True)


def parse_listen(listen: str) -> tuple[str, int]:
    """--http-listen HOST:PORT (`:PORT`: loopback; port 0: a free one); ValueError names the flag."""
    host, sep, port = listen.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:9100
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or any(c in host for c in "/ @"):
        raise ValueError(
            f"--http-listen {listen!r} is not HOST:PORT (e.g. 127.0.0.1:9100, or 127.0.0.1:0 for a free port)"
        )
    return host or "127.0.0.1", int(port)


class WorkerHttp:
    """/healthz, /readyz and /metrics of one worker (the aggregator's conventions: aggregator.http)."""

    def __init__(self, worker: ProvingWorker) -> None:
        self.worker = worker
        self.app = web.Application(middlewares=[errors])
        self.app.add_routes(
            [
                web.get("/healthz", self.healthz),
                web.get("/readyz", self.readyz),
                web.get("/metrics", self.metrics),
            ]
        )
        self.listener = Listener(self.app)

    @property
    def port(self) -> int:
        """The bound port (0 before start)."""
        return self.listener.port

    async def start(self, listen: str) -> None:
        host, port = parse_listen(listen)
        try:
            await self.listener.start(host, port)
        except OSError as e:  # in use, not an address of this host
            raise ValueError(f"--http-listen {listen}: cannot listen: {e.strerror or e}") from None

    async def stop(self) -> None:
        await self.listener.stop()

    async def healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, _: web.Request) -> web.Response:
        st = self.worker.status()
        return web.json_response(st, status=200 if st["ready"] else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        body, ctype = self.worker.metrics.exposition(request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": ctype})


async def run_worker(
    url: str,
    *,
    schema: str = "sheaf_queue",
    cache_dir: str,
    binary: str = "",
    concurrency: int = 1,
    circuits: list[str] | None = None,
    name: str = "",
    heartbeat_s: float = 10.0,
    stalled_after_s: float = 30.0,
    drain_s: float = 30.0,
    ready_timeout_s: float = 7200.0,
    preload: bool = False,
    tree_cache_dir: str = "",
    http_listen: str = "",
    ready_file: str = "",
) -> int:
    """Serve until SIGTERM/SIGINT. Returns 0, or 2 when there is no circuit to serve. With
    `http_listen`, /healthz, /readyz and /metrics are served there (its bound port is logged and
    written to `ready_file` as {"http_port": N})."""
    if http_listen:
        parse_listen(http_listen)  # a bad value is refused before anything starts
    q = PgJobQueue(url, schema=schema, stalled_after_s=stalled_after_s, name=name, pool_max=concurrency + 3)
    w = ProvingWorker(
        q,
        cache_dir=cache_dir,
        binary=binary,
        concurrency=concurrency,
        circuits=circuits,
        ready_timeout_s=ready_timeout_s,
        tree_cache_dir=tree_cache_dir,
    )
    served, tree = w.served(), w.served_tree()
    if not served and not tree:
        what = f" matching {', '.join(w.only)}" if w.only else ""
        print(
            f"{KEYS_MISSING}: no recursion keys{what} under {w.cache_dir} nor tree keys under "
            f"{w.tree_cache_dir} (copy the deployment's key cache entries <hash[:32]>/ there, or point "
            "--cache / --tree-cache at them)",
            file=sys.stderr,
        )
        return 2
    queues = sorted({queue_for(h) for h in served} | {queue_for(h, KIND_TREE) for h in tree})
    for h, lv in sorted(tree.items(), key=lambda x: x[1]):
        log.info(
            "worker %s: serves tree level %d circuit %s (keys %s) on queue %s",
            q.name,
            lv,
            h[:16],
            w.tree_cache_dir / h[:32],
            queue_for(h, KIND_TREE),
        )
    for h, k in sorted(served.items()):
        log.info(
            "worker %s: serves circuit %s (b%d p%d k%d, keys %s) on queue %s",
            q.name,
            h[:16],
            k.batch,
            k.npub,
            k.plonk,
            k.dir,
            queue_for(h),
        )
    w.queues = queues
    w.liveness.watch(q.app.job_manager)
    prober = asyncio.create_task(w.liveness.probe_every(url, heartbeat_s), name="queue-probe")
    http = WorkerHttp(w) if http_listen else None
    if http is not None:
        await http.start(http_listen)
        log.info("worker %s: http on port %d (/healthz, /readyz, /metrics)", q.name, http.port)
    if ready_file:
        Path(ready_file).write_text(json.dumps({"http_port": http.port if http else None}))
    if preload:
        w.preload()
    try:
        await q.serve(
            w.execute,
            queues=queues,
            concurrency=concurrency,
            heartbeat_s=heartbeat_s,
            drain_s=drain_s,
            stop_grace_s=STOP_GRACE_S,
        )
    finally:
        prober.cancel()
        await asyncio.gather(prober, return_exceptions=True)
        if http is not None:
            await http.stop()
        await w.close()
        await q.close()
    log.info("worker %s: stopped after %d jobs", q.name, w.jobs_done)
    return 0
