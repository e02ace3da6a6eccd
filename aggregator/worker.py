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
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from aggregator.jobs import (
    CIRCUIT_MISMATCH,
    KEYS_MISSING,
    KIND_TREE,
    PROVER_WORKER_ERROR,
    JobResult,
    TreeJob,
    Unit,
)
from aggregator.jobs_pg import PgJobQueue, queue_for
from aggregator.metrics import Metrics
from aggregator.proving import ProvingFailed
from aggregator.recursion import RecursiveProver
from aggregator.tree_prover import TreeProver
from sheaf.recursion_tree import TreePlan

log = logging.getLogger("sheaf.worker")


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
        self.metrics = Metrics()
        self.keys: dict[str, Keys] = {}
        self._pools: dict[str, asyncio.Queue[RecursiveProver]] = {}
        self._provers: list[RecursiveProver] = []
        self.tree_cache_dir = Path(tree_cache_dir) if tree_cache_dir else self.cache_dir.parent / "tree"
        self._trees: dict[tuple[str, ...], TreeProver] = {}  # by the deployment's circuit hashes
        self.jobs_done = 0

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
                    metrics=self.metrics,
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
        res = await tp.run_job(job)
        self.jobs_done += 1
        return JobResult(res.proof, [], res.circuit_hash, res.prove_ms, self.queue.name, res.extra)

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self._provers), return_exceptions=True)
        await asyncio.gather(*(t.close() for t in self._trees.values()), return_exceptions=True)


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
) -> int:
    """Serve until SIGTERM/SIGINT. Returns 0, or 2 when there is no circuit to serve."""
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
    if preload:
        w.preload()
    try:
        await q.serve(
            w.execute, queues=queues, concurrency=concurrency, heartbeat_s=heartbeat_s, drain_s=drain_s
        )
    finally:
        await w.close()
        await q.close()
    log.info("worker %s: stopped after %d jobs", q.name, w.jobs_done)
    return 0
