"""The recursion-tree prover: batches proved level by level by `sheaf-gnark tree serve --level L` workers.

    prover = TreeProver(TreePlan(k=2, npub=1, fanin=2, levels=1), circuit_hashes=hashes, normalizer=n)
    prover.start()                      # checks the pinned keys, starts the level-0 worker in the background
    proof = await prover.prove(job)     # the top proof: bytes for submitRecursiveAggregation

A batch of n proofs is proved with the shallowest tree that holds it (TreeAggregationAdapter recomputes
its top level from n): leaf jobs over chunks of K proofs of one vk, then merge jobs over F children per
level, the top job made for the Solidity verifier (docs/recursion.md, "Recursion tree"). Each job is a
pure function of its input and the keys, so a job whose worker died or timed out is sent again to a new
worker of its level, up to `max_attempts` times per job; then ProvingFailed and the aggregator attests
the batch. ONE worker process runs at a time (a job takes ~5-6 GB and both cores): a level's jobs run,
its worker exits, the next level's starts; the last one is kept for the next batch's jobs of its level.

Keys are pinned by the manifest's per-level circuit hashes: before a worker starts, `<cache>/<hash>/`
must hold that level's keys (and the vk of every level below, which its merge circuit embeds), and its
ready line must name the same circuits (else CIRCUIT_MISMATCH: recursion is switched off). A worker
never runs a setup (`--level` mode). Every job's answer is checked: its node must be Merkle.root of
exactly the batch's statement hashes under it (and the top node the root the aggregator persisted), on
the pinned circuit of its level.

Every checked job output of a stored batch is kept in the aggregator's store (Store.put_tree_node,
once Proving hands the store over with use_store) before the next job starts, so a restarted
aggregator resumes the batch's tree: a kept output is reused only if it was made on the same
pinned circuit from the same inputs and passes the same check again; only the other jobs are proved.
The store deletes a batch's nodes when it is proved or fails.

With a job queue (`recursion.queue = "postgres"`, aggregator.jobs_pg.PgJobQueue) no local worker runs:
each level's jobs (aggregator.jobs.TreeJob: plan, level, request, pinned circuit hashes) are enqueued
together on the queue of the level's circuit, `aggregator worker` processes (possibly on other machines,
aggregator/worker.py: run_job below) prove them in parallel, and every output is checked and kept here
exactly as a local one before the next level's jobs are enqueued. Retries and the re-run of a killed
worker's job are the queue's; a job's id names the batch, level, circuit and inputs, so a resumed
leader finds the jobs (and results) already there.

The event loop only awaits the workers' pipes (sheaf.gnark_process.GnarkProcess); deploy/tree.py's
SyncTreeProver drives the same code for scripts (fixture regeneration, bench, deploy tests).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from aggregator import crypto
from aggregator.jobs import (
    CIRCUIT_MISMATCH,
    KEYS_MISSING,
    KIND_TREE,
    PROVER_BAD_LEAF,
    PROVER_CRASHED,
    PROVER_LEAF_MISMATCH,
    PROVER_REJECTED,
    PROVER_TIMEOUT,
    PROVER_UNAVAILABLE,
    PROVER_WORKER_ERROR,
    JobResult,
    TreeJob,
)
from aggregator.leaves import leaf_statement_hash
from aggregator.metrics import Metrics
from aggregator.proving import ProveJob, ProvingFailed
from aggregator.recursion import PROVE_BUCKETS, describe_recursive_metrics, worker_leaves
from aggregator.store import StoreThread, TreeNode
from sheaf.gnark_process import GnarkProcess, ProcessError, RemoteError
from sheaf.paths import BinaryNotFound, gnark_binary
from sheaf.recursion_tree import TreePlan, pinned_keys_problem, tree_cache_root

log = logging.getLogger("sheaf.tree")

JOB_BUCKETS = (5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1200.0)
_LEAF_FIELD = re.compile(r"^leaves\[(\d+)\]")
# worker error codes no retry changes (the job itself is wrong): the batch is refused
_REJECTED = frozenset(
    {"BAD_BATCH", "BAD_SHAPE", "MALFORMED", "TOO_LARGE", "WRONG_CIRCUIT", "BAD_CHILD", "WRONG_LEVEL"}
)
# what `tree serve --level L` exits with before its ready line when the compiled circuit has no keys
_KEYS_ERROR = re.compile(r"\b(KEYS_MISSING|KEY_MISMATCH)\b")


class TreeWorker(GnarkProcess):
    """One `sheaf-gnark tree serve --level L` process (the one process protocol): it compiles levels
    0..L, loads level L's keys and the vk of the levels below (never a setup), writes its ready line
    (plan, capacity, levels [{level, circuit_hash, nb_constraints, dir, proves}]), then answers ops
    info, leaf and merge one at a time."""

    level = -1
    startup_s = 0.0
    started = 0.0  # time.monotonic() at spawn
    peak_bytes = 0  # the largest VmHWM sampled (the Go side resets the high-water mark before each job)

    @staticmethod
    def command(binary: str | Path, plan: TreePlan, level: int, cache: str | Path = "") -> list[str]:
        argv = [str(binary), "tree", "serve", *plan.args(), "--level", str(level)]
        return argv + (["--cache", str(cache)] if cache else [])

    def sample_rss(self) -> int:
        self.peak_bytes = max(self.peak_bytes, self.peak_rss_bytes())
        return self.peak_bytes

    def summary(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "startup_s": round(self.startup_s, 1),
            "process_max_rss_mib": self.peak_bytes >> 20,
            "wall_s": round(time.monotonic() - self.started, 1),
        }


@dataclass(frozen=True)
class TreeRun:
    """A proved batch: the top job's Output and what each job and worker took."""

    plan: TreePlan
    top: dict[str, Any]  # the top job's Output (proof = Solidity calldata bytes)
    jobs: list[dict[str, Any]]  # per job proved (not reused): level, count, top, prove_ms, rss, wall_s
    workers: list[dict[str, Any]]  # per exited worker process: level, startup_s, process_max_rss_mib, wall_s

    @property
    def root(self) -> bytes:
        return bytes.fromhex(str(self.top["node"]["root"])[2:])

    @property
    def count(self) -> int:
        return int(self.top["node"]["count"])

    @property
    def proof(self) -> bytes:
        return bytes.fromhex(str(self.top["proof"])[2:])

    @property
    def level(self) -> int:
        return int(self.top["level"])


@dataclass
class TreeProgress:
    """Where a batch in proving is: the level being proved and how many of its jobs are done."""

    batch_id: int
    top: int  # the batch's top level
    level: int = 0
    done: int = 0
    total: int = 0

    def text(self) -> str:
        return f"level {self.level} of {self.top}, {self.done} of {self.total} jobs done"


class _Row(Protocol):
    @property
    def vk_hash(self) -> bytes: ...


_R = TypeVar("_R", bound=_Row)


def select_tree_batch(rows: Sequence[_R], k: int, max_leaves: int) -> list[_R]:
    """One tree batch from queued candidates (oldest first), in tree order: proofs grouped by vk into
    chunks of K (a leaf job takes proofs of one vk), whole chunks oldest first, at most one partial
    chunk and that one last (only the tree's last node may be partial), at most max_leaves proofs.
    Proofs of a vk with fewer than K queued wait for the batch after, unless theirs is the oldest
    partial chunk, which always goes (so no proof waits forever behind full chunks)."""
    groups: dict[bytes, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(bytes(r.vk_hash), []).append(i)
    size = min(k, max_leaves)  # a batch smaller than K is one (partial) leaf job
    chunks = sorted(
        (g[j : j + size] for g in groups.values() for j in range(0, len(g), size)), key=lambda c: c[0]
    )
    full: list[int] = []
    partial: list[int] = []
    for c in chunks:
        if len(full) + len(partial) + len(c) > max_leaves:
            continue
        if len(c) == k:
            full += c
        elif not partial:
            partial = c
    return [rows[i] for i in full + partial]


def _node_key(out: dict[str, Any]) -> bytes:
    """A child's node as a merge's input: its root and count (checked by _check_output already)."""
    node = out["node"]
    return bytes.fromhex(str(node["root"]).removeprefix("0x")) + int(node["count"]).to_bytes(8, "big")


def _inputs_digest(level: int, parts: Sequence[bytes]) -> bytes:
    """What a job takes, as the digest a kept output is matched by: a leaf job's statement hashes, a
    merge's children's (root, count), in order, with the level."""
    h = hashlib.sha256(b"sheaf-tree-inputs" + level.to_bytes(4, "big"))
    for x in parts:
        h.update(len(x).to_bytes(4, "big") + x)
    return h.digest()


def _remote_failure(e: RemoteError, op: str, level: int, r: range) -> ProvingFailed:
    """A worker's error answer as a failure: BAD_LEAF (the leaves of `r` it names) and the refusals no
    retry changes keep their meaning; anything else is PROVER_WORKER_ERROR (another attempt may do)."""
    code, fld, msg = str(e.code), e.field, e.message
    if code == "BAD_LEAF" and op == "leaf":
        m = _LEAF_FIELD.match(fld)
        bad = [r.start + int(m.group(1))] if m else list(r)
        return ProvingFailed(PROVER_BAD_LEAF, f"{fld}: {msg}", bad_leaves=bad)
    if code in _REJECTED:
        return ProvingFailed(PROVER_REJECTED, f"level {level}: {code} {fld}: {msg}")
    return ProvingFailed(PROVER_WORKER_ERROR, f"level {level}: {code} {fld}: {msg}")


class TreeProver:
    """BatchProver (aggregator.proving) over `sheaf-gnark tree serve --level L` workers, one at a time.

    `circuit_hashes` (level L's at index L, from the deployment manifest) pin the keys; without them
    (scripts) a worker still never runs a setup, but its circuits are not checked against a deployment.
    `batch` caps the leaves per batch (default: the plan's capacity)."""

    def __init__(
        self,
        plan: TreePlan,
        *,
        circuit_hashes: Sequence[str] = (),
        normalizer: Any = None,
        metrics: Metrics | None = None,
        binary: str | Path = "",
        cache_dir: str | Path = "",
        batch: int = 0,
        max_attempts: int = 3,
        job_timeout_s: float = 3600.0,
        ready_timeout_s: float = 7200.0,
        restart_backoff_s: float = 1.0,
        on_job: Callable[[str], None] | None = None,
        queue: Any = None,
        queue_pickup_timeout_s: float = 600.0,
        queue_max_inflight: int = 4,
    ) -> None:
        if not 0 <= batch <= plan.capacity:
            raise ValueError(f"tree batch {batch} is outside 1..{plan.capacity} (plan {plan.name})")
        hashes = tuple(str(h).lower().removeprefix("0x") for h in circuit_hashes)
        if hashes and len(hashes) != plan.levels + 1:
            raise ValueError(f"{len(hashes)} circuit hashes for the {plan.levels + 1} levels of {plan.name}")
        self.plan = plan
        self.batch = batch or plan.capacity
        self.circuit_hashes = hashes
        self.normalizer = normalizer
        self.metrics = metrics or Metrics()
        self.binary = str(binary)
        self.cache_dir = str(cache_dir)
        self.max_attempts = max_attempts
        self.job_timeout_s = job_timeout_s
        self.ready_timeout_s = ready_timeout_s
        self.restart_backoff_s = restart_backoff_s
        self.on_job = on_job  # a line per job and worker (scripts print it)
        self.queue = queue  # aggregator.jobs_pg.PgJobQueue (recursion.queue = "postgres") or None
        self.queue_pickup_timeout_s = queue_pickup_timeout_s
        # batches proved at once (aggregator.proving.Proving.busy): the local worker proves one
        self.max_inflight = queue_max_inflight if queue is not None else 1
        self.disabled = ""  # set when no worker can ever serve this deployment (wrong circuit, no keys)
        self.disabled_code = ""
        if queue is not None and not hashes:
            self.disabled = (
                "a queued recursion tree needs the deployed circuit hashes (workers pin keys by them)"
            )
            self.disabled_code = CIRCUIT_MISMATCH
        self.info: dict[str, Any] = {}  # the last worker's ready line
        self.restarts = 0  # workers started again after one died or was killed
        self.peak_rss_bytes = 0
        self.workers: list[dict[str, Any]] = []  # summaries of the worker processes that exited
        self._w: TreeWorker | None = None  # the worker (started and ready), if any
        self._starting: TreeWorker | None = None
        self._lost = False  # the last worker died or was killed: the next start is a restart
        self._lock = asyncio.Lock()  # one job sequence (one batch) at a time
        self._warm: asyncio.Task[None] | None = None
        self._progress: dict[int, TreeProgress] = {}
        self._job_level = -1  # the level of the job with a worker now (-1: none)
        # queue mode: jobs waiting on the queue's workers, by level (several batches and jobs at once)
        self._queued: collections.Counter[int] = collections.Counter()
        self._last_peak: dict[int, int] = {}  # level -> the last job's peak RSS (bytes)
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._db: StoreThread | None = None  # where finished jobs' outputs are kept (use_store)
        m = self.metrics
        describe_recursive_metrics(m)
        m.describe("sheaf_tree_jobs_total", "Tree jobs by level and outcome (proved, crashed, timeout, ...)")
        m.describe("sheaf_tree_job_seconds", "Tree job time by level (worker round trip)")
        m.describe("sheaf_tree_job_peak_rss_bytes", "Peak RSS of the last tree job of each level")
        m.describe("sheaf_tree_proving_level", "Level of the tree job being proved now (-1: none)")
        m.describe("sheaf_tree_level_jobs", "Jobs of the level being proved: done and total")
        m.describe("sheaf_tree_worker_level", "Level of the running tree worker (-1: none)")
        m.gauge("sheaf_recursive_worker_ready", lambda: {(): 1.0 if self._w is not None else 0.0})
        m.gauge("sheaf_recursive_worker_peak_rss_bytes", lambda: {(): float(self.peak_rss_bytes)})
        m.gauge("sheaf_recursive_proving", lambda: {(): float(self._proving_now())})
        m.gauge("sheaf_tree_proving_level", lambda: {(): float(self._proving_level())})
        m.gauge("sheaf_tree_worker_level", lambda: {(): float(self._w.level if self._w else -1)})
        m.gauge(
            "sheaf_tree_job_peak_rss_bytes",
            lambda: {(("level", str(lv)),): float(v) for lv, v in self._last_peak.items()},
        )
        m.gauge("sheaf_tree_level_jobs", self._level_jobs)

    # -- BatchProver ------------------------------------------------------------------------------

    @property
    def max_leaves(self) -> int:
        return self.batch

    @property
    def shape(self) -> str:
        return self.plan.name

    def accepts(self, scheme: str, n_public: int) -> bool:
        """Groth16 with exactly the plan's P public inputs (leaf jobs take no PLONK)."""
        return not self.disabled and scheme == "groth16" and n_public == self.plan.npub

    def select(self, rows: Sequence[Any]) -> list[Any]:
        return select_tree_batch(rows, self.plan.k, self.batch)

    def progress(self, batch_id: int) -> str | None:
        """ "level L of T, j of n jobs done" while the batch is proved here, else None."""
        p = self._progress.get(batch_id)
        return p.text() if p is not None else None

    @property
    def worker_pid(self) -> int | None:
        """The current worker process (starting or ready), if it runs."""
        w = self._starting or self._w
        return w.pid if w is not None and w.alive else None

    def _proving_now(self) -> int:
        """Tree jobs being proved now: the local worker's, or those out on the queue."""
        return (self._job_level >= 0) + sum(self._queued.values())

    def _proving_level(self) -> int:
        """The highest level with a job being proved now (-1: none)."""
        return max([self._job_level, *(lv for lv, n in self._queued.items() if n > 0)])

    def use_store(self, db: StoreThread) -> None:
        """Keep every finished job's checked output of a stored batch in `db` (Proving calls this), so a
        restart resumes the batch's tree instead of proving it again; needs pinned circuit hashes."""
        self._db = db

    async def prove(self, job: ProveJob) -> bytes:
        n = len(job.leaves)
        if not 1 <= n <= self.batch:
            self.metrics.inc("sheaf_recursive_failures_total", code=PROVER_REJECTED)
            raise ProvingFailed(PROVER_REJECTED, f"{n} leaves, this tree takes 1..{self.batch}")
        if self.disabled:
            raise ProvingFailed(self.disabled_code or PROVER_UNAVAILABLE, self.disabled)
        leaves = await worker_leaves(
            job.items, job.leaves, normalizer=self.normalizer, npub=self.plan.npub, metrics=self.metrics
        )
        run = await self.prove_tree(
            leaves, job.leaves, batch_id=job.batch_id, domain_id=job.domain_id, root=job.root or None
        )
        return run.proof

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the level-0 worker in the background (compile + key load take a while; the first
        batch then starts at once). Returns at once."""
        if self._warm is None:
            run = self._open_queue() if self.queue is not None else self._start_level0()
            self._warm = asyncio.create_task(run, name="tree-worker-warm")

    async def _open_queue(self) -> None:
        """Queue mode: open the queue now (its schema is created on first use); a failure is logged,
        the first job opens it again."""
        assert self.queue is not None
        try:
            await self.queue.open()
        except Exception as e:  # PostgreSQL not up yet: queue.run retries
            log.warning("tree: the recursion queue cannot be opened yet (%s)", e)
            return
        self.info = {"queue": "postgres", "schema": self.queue.schema, "circuit_hashes": self.circuit_hashes}
        log.info(
            "tree: %s jobs go to the PostgreSQL queue (schema %s, queues %s)",
            self.plan.name,
            self.queue.schema,
            ", ".join(self.queue.queue_for(h, KIND_TREE) for h in self.circuit_hashes),
        )

    async def _start_level0(self) -> None:
        async with self._lock:
            try:
                await self._worker_for(0)
            except (ProvingFailed, ProcessError) as e:  # logged; the first job tries again (or not: disabled)
                log.error("tree: the level-0 worker did not start: %s", e)

    async def wait_ready(self, timeout: float | None = None) -> dict[str, Any]:
        """The ready line of the worker started by start() (its levels' circuit hashes, keys dirs)."""
        self.start()
        assert self._warm is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._warm), timeout or self.ready_timeout_s)
        except TimeoutError:
            raise ProvingFailed(PROVER_UNAVAILABLE, "the tree worker did not get ready in time") from None
        if self.disabled:
            raise ProvingFailed(self.disabled_code or PROVER_UNAVAILABLE, self.disabled)
        if not self.info:
            raise ProvingFailed(PROVER_UNAVAILABLE, f"the tree worker did not start: {self._tail()}")
        return dict(self.info)

    async def close(self) -> None:
        if self._warm is not None:
            self._warm.cancel()
            await asyncio.gather(self._warm, return_exceptions=True)
        await self._stop_worker()
        if self.queue is not None:
            await self.queue.close()

    def _disable(self, code: str, why: str) -> ProvingFailed:
        self.disabled, self.disabled_code = why, code
        self.metrics.inc("sheaf_recursive_failures_total", code=code)
        log.error("recursion disabled: %s; eligible proofs are attested", why)
        return ProvingFailed(code, why)

    async def _worker_for(self, level: int) -> TreeWorker:
        w = self._w
        if w is not None and (w.level != level or not w.alive):
            await self._stop_worker()
        if self._w is None:
            self._w = await self._spawn(level)
        return self._w

    async def _spawn(self, level: int) -> TreeWorker:
        if self.disabled:
            raise ProvingFailed(self.disabled_code or PROVER_UNAVAILABLE, self.disabled)
        try:
            binary = gnark_binary(self.binary or None)  # a configured worker_bin must exist (no fallback)
        except BinaryNotFound as e:
            raise self._disable(PROVER_UNAVAILABLE, f"tree worker binary not found: {e}") from None
        root = tree_cache_root(self.cache_dir or None)
        for lv, h in enumerate(self.circuit_hashes[: level + 1]):
            why = pinned_keys_problem(root, h, proving=lv == level)
            if why:
                raise self._disable(KEYS_MISSING, f"level {lv} of {self.plan.name}: {why}")
        if self._lost:
            self.restarts += 1
            self.metrics.inc("sheaf_recursive_worker_restarts_total")
            self._lost = False
        argv = TreeWorker.command(binary, self.plan, level, self.cache_dir)
        w = await TreeWorker.spawn(argv, name=f"tree level-{level} worker", on_stderr=self._on_stderr)
        w.level, w.started = level, time.monotonic()
        self._starting = w
        log.info("tree: level-%d worker pid %d starting: %s", level, w.pid, " ".join(argv))
        try:
            ready = await w.wait_ready(self.ready_timeout_s)  # kills it on failure, timeout or cancellation
        except ProcessError as e:
            if _KEYS_ERROR.search(e.message):
                if self.circuit_hashes:  # its keys are cached (checked above): it compiled another circuit
                    raise self._disable(
                        CIRCUIT_MISMATCH,
                        f"the level-{level} worker compiles another circuit than the deployed "
                        f"{self.circuit_hashes[level][:16]} (rebuild sheaf-gnark from the deployed version): "
                        f"{e.message[-300:]}",
                    ) from None
                raise self._disable(KEYS_MISSING, e.message[-300:]) from None
            raise
        finally:
            self._starting = None
        got = {int(x["level"]): str(x["circuit_hash"]).lower() for x in ready.get("levels") or []}
        want = dict(enumerate(self.circuit_hashes[: level + 1]))
        if ready.get("capacity") != self.plan.capacity or (
            want and any(got.get(lv) != h for lv, h in want.items())
        ):
            await w.kill()
            raise self._disable(
                CIRCUIT_MISMATCH,
                f"the level-{level} worker's circuits {[h[:16] for h in got.values()]} (capacity "
                f"{ready.get('capacity')}) are not the deployed {[h[:16] for h in want.values()]} of "
                f"{self.plan.name} (redeploy the tree or fix the binary)",
            )
        w.startup_s = time.monotonic() - w.started
        self._sample(w)
        self.info = dict(ready)
        log.info(
            "tree: level-%d worker pid %d ready in %.1f s: circuit %s, keys %s",
            level,
            w.pid,
            w.startup_s,
            got.get(level, "?")[:16],
            next((x.get("dir") for x in ready.get("levels") or [] if x.get("level") == level), "?"),
        )
        self._note(f"{self.plan.name}: level-{level} worker ready in {w.startup_s:.1f}s")
        return w

    async def _stop_worker(self) -> None:
        """End the current worker (stdin closed: it exits; killed if it is still busy after 5 s)."""
        w, self._w = self._w, None
        if w is None:
            return
        self._sample(w)
        await w.close(grace=5.0)
        self.workers.append(w.summary())

    def _sample(self, w: TreeWorker) -> None:
        self.peak_rss_bytes = max(self.peak_rss_bytes, w.sample_rss())

    def _on_stderr(self, line: str) -> None:
        self._stderr_tail.append(line)
        log.info("tree worker: %s", line) if line.startswith("tree:") else log.debug("tree worker: %s", line)

    def _tail(self) -> str:
        return " | ".join(self._stderr_tail)[-500:]

    def _note(self, line: str) -> None:
        if self.on_job is not None:
            self.on_job(line)

    def _level_jobs(self) -> dict[tuple[tuple[str, str], ...], float]:
        out: dict[tuple[tuple[str, str], ...], float] = {}
        for p in self._progress.values():
            out[(("level", str(p.level)), ("state", "done"))] = float(p.done)
            out[(("level", str(p.level)), ("state", "total"))] = float(p.total)
        return out

    # -- proving ----------------------------------------------------------------------------------

    async def prove_tree(
        self,
        leaves: Sequence[dict[str, Any]],
        statement_hashes: Sequence[bytes] | None = None,
        *,
        batch_id: int = 0,
        domain_id: int = 0,
        root: bytes | None = None,
    ) -> TreeRun:
        """The shallowest tree over `leaves` (worker leaves in tree order; every leaf job's chunk of K
        must share one vk: select_tree_batch groups them so). Every job's node is checked against
        `statement_hashes` (default: the leaves' own) and the top node against `root` if given."""
        hashes = [bytes(h) for h in statement_hashes] if statement_hashes is not None else None
        if hashes is None:
            hashes = [leaf_statement_hash(x) for x in leaves]
        plan = self.plan
        try:
            ranges = plan.node_ranges(len(leaves))
        except ValueError as e:
            raise self._failed(ProvingFailed(PROVER_REJECTED, str(e))) from None
        if len(hashes) != len(leaves):
            raise self._failed(ProvingFailed(PROVER_REJECTED, f"{len(leaves)} leaves, {len(hashes)} hashes"))
        for j, r in enumerate(ranges[0]):
            if len({str(leaves[i]["vk"]).lower() for i in r}) != 1:
                raise self._failed(
                    ProvingFailed(
                        PROVER_REJECTED, f"leaf job {j} (leaves {r.start}..{r.stop - 1}): not one vk"
                    )
                )
        if root is not None and crypto.merkle_root(hashes) != root:
            raise self._failed(
                ProvingFailed(
                    PROVER_LEAF_MISMATCH, "the batch's statement hashes do not give its persisted root"
                )
            )
        top = len(ranges) - 1
        jobs: list[dict[str, Any]] = []
        # the local worker proves one batch at a time; queued batches share the workers
        async with self._lock if self.queue is None else contextlib.nullcontext():
            t0 = time.monotonic()
            kept = await self._kept_nodes(batch_id)  # read before the progress shows: it counts them
            prog = TreeProgress(batch_id, top, 0, 0, len(ranges[0]))
            self._progress[batch_id] = prog
            try:
                nodes: list[dict[str, Any]] = []
                for level, level_ranges in enumerate(ranges):
                    prog.level, prog.done, prog.total = level, 0, len(level_ranges)
                    below, nodes = nodes, []
                    queued: list[tuple[range, TreeJob, bytes]] = []
                    for j, r in enumerate(level_ranges):
                        fields: dict[str, Any]
                        if level == 0:
                            op, fields = "leaf", {"leaves": [leaves[i] for i in r]}
                            inputs = _inputs_digest(level, [hashes[i] for i in r])
                        else:
                            kids = below[j * plan.fanin : (j + 1) * plan.fanin]
                            op, fields = "merge", {"level": level, "children": kids}
                            inputs = _inputs_digest(level, [_node_key(k) for k in kids])
                        out = self._restore(prog, kept.get((level, j)), inputs, r, hashes, level == top)
                        if out is None and self.queue is not None:
                            job = self._tree_job(prog, j, {**fields, "top": level == top}, inputs, domain_id)
                            queued.append((r, job, inputs))
                            out = {}  # filled in once the level's queued jobs are done
                        elif out is None:
                            out, took = await self._job(prog, r, hashes, op, **fields, top=level == top)
                            jobs.append(self._job_row(level, out, took))
                            await self._keep(prog, j, inputs, out)
                        nodes.append(out)
                    if queued:
                        for j, out, took in await self._queued_level(prog, queued, hashes, level == top):
                            nodes[j] = out
                            jobs.append(self._job_row(level, out, took))
            finally:
                self._progress.pop(batch_id, None)
            wall = time.monotonic() - t0
        self.metrics.observe("sheaf_recursive_prove_seconds", wall, PROVE_BUCKETS, shape=self.shape)
        log.info(
            "batch %d: tree top level %d over %d leaves in %.1f s (%d jobs proved, %d kept ones reused), "
            "worker peak RSS %d MiB",
            batch_id,
            top,
            len(leaves),
            wall,
            len(jobs),
            sum(len(x) for x in ranges) - len(jobs),
            self.peak_rss_bytes >> 20,
        )
        return TreeRun(plan=plan, top=nodes[0], jobs=jobs, workers=list(self.workers))

    @staticmethod
    def _job_row(level: int, out: dict[str, Any], wall: float) -> dict[str, Any]:
        return {
            "level": level,
            "count": out["node"]["count"],
            "top": out["top"],
            **{k: out.get(k) for k in ("prove_ms", "base_rss_mib", "peak_rss_mib")},
            "wall_s": round(wall, 1),
        }

    def _failed(self, e: ProvingFailed) -> ProvingFailed:
        self.metrics.inc("sheaf_recursive_failures_total", code=e.code)
        return e

    # -- kept nodes (a restart resumes the batch's tree) ---------------------------------------------

    def _keeper(self, batch_id: int) -> StoreThread | None:
        """The store this batch's job outputs are kept in: none without one, for a batch that is not
        stored (scripts), or without pinned circuits (a kept output is reused only on its circuit)."""
        return self._db if batch_id > 0 and self.circuit_hashes else None

    async def _kept_nodes(self, batch_id: int) -> dict[tuple[int, int], TreeNode]:
        """The batch's kept nodes by (level, job index); none when the store cannot be read (the
        jobs are then proved again: slower, never wrong)."""
        db = self._keeper(batch_id)
        if db is None:
            return {}
        try:
            rows = await db.run(db.store.tree_nodes, batch_id)
        except Exception as e:  # a shortcut only: proving from the leaves is always right
            log.warning("batch %d: kept tree nodes not read (%s); every job is proved", batch_id, e)
            return {}
        if rows:
            log.info("batch %d: %d kept tree nodes found, resuming the tree from them", batch_id, len(rows))
        return {(n.level, n.job_index): n for n in rows}

    def _restore(
        self,
        prog: TreeProgress,
        node: TreeNode | None,
        inputs: bytes,
        r: range,
        hashes: Sequence[bytes],
        top: bool,
    ) -> dict[str, Any] | None:
        """The kept output of this job if it still holds: the level's pinned circuit, the same inputs,
        and it passes _check_output again; else None (the job is proved again and its node replaced)."""
        if node is None:
            return None
        level, lv = prog.level, str(prog.level)
        why = ""
        if node.circuit_hash != self.circuit_hashes[level]:
            why = f"made on circuit {node.circuit_hash[:16]}, not {self.circuit_hashes[level][:16]}"
        elif node.inputs != inputs:
            why = "made from other inputs"
        else:
            try:
                out: dict[str, Any] = json.loads(node.output)
                if not isinstance(out, dict):
                    raise ValueError("not an object")
                self._check_output(level, out, r, hashes, top)
            except (ValueError, ProvingFailed) as e:
                why = str(e)
        if why:
            self.metrics.inc("sheaf_tree_jobs_total", level=lv, outcome="stale")
            log.warning(
                "batch %d: the kept level %d node %d is not reused (%s); its job is proved again",
                prog.batch_id,
                level,
                node.job_index,
                why,
            )
            return None
        prog.done += 1
        self.metrics.inc("sheaf_tree_jobs_total", level=lv, outcome="restored")
        log.info(
            "batch %d: level %d job %d restored from the store; %s",
            prog.batch_id,
            level,
            node.job_index,
            prog.text(),
        )
        return out

    async def _keep(self, prog: TreeProgress, job_index: int, inputs: bytes, out: dict[str, Any]) -> None:
        """Keep a checked job output for a restart (before the next job starts)."""
        db = self._keeper(prog.batch_id)
        if db is None:
            return
        node = TreeNode(
            prog.batch_id,
            prog.level,
            job_index,
            self.circuit_hashes[prog.level],
            inputs,
            json.dumps(out, separators=(",", ":"), sort_keys=True),
        )
        try:
            kept = await db.run(db.store.put_tree_node, node)
        except Exception as e:  # a shortcut only: the batch goes on, a restart proves this job again
            log.warning("batch %d: level %d node %d not kept (%s)", prog.batch_id, prog.level, job_index, e)
            return
        if not kept:
            log.info(
                "batch %d is no longer pending: its level %d node is not kept", prog.batch_id, prog.level
            )

    async def _job(
        self, prog: TreeProgress, r: range, hashes: Sequence[bytes], op: str, **fields: Any
    ) -> tuple[dict[str, Any], float]:
        """One job on a worker of its level, sent again to a new worker when the worker dies, times out
        or fails internally (max_attempts per job); its answer (the worker's Output, passed unchanged
        to the merge above: the worker refuses unknown fields) checked (_check_output), and its round
        trip in seconds."""
        level, top = prog.level, bool(fields.get("top"))
        lv = str(level)
        last = ProvingFailed(PROVER_UNAVAILABLE, "no attempt made")
        backoff = self.restart_backoff_s
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
            try:
                w = await self._worker_for(level)
            except ProcessError as e:  # did not start or get ready: retried
                last = ProvingFailed(PROVER_UNAVAILABLE, f"level-{level} worker: {e.message}")
                self._lost = True
                self.metrics.inc("sheaf_recursive_failures_total", code=PROVER_UNAVAILABLE)
                self.metrics.inc("sheaf_tree_jobs_total", level=lv, outcome="unavailable")
                log.error("batch %d: %s", prog.batch_id, last.message)
                continue
            log.info(
                "batch %d: level %d %s job %d of %d over %d proofs on worker pid %d (attempt %d/%d)",
                prog.batch_id,
                level,
                op,
                prog.done + 1,
                prog.total,
                len(r),
                w.pid,
                attempt,
                self.max_attempts,
            )
            t0 = time.monotonic()
            self._job_level = level
            try:
                out = await w.request(op, timeout=self.job_timeout_s, **fields)
            except ProcessError as e:
                self._w, self._lost = None, True
                if e.code == ProcessError.TIMEOUT:
                    last, outcome = (
                        ProvingFailed(PROVER_TIMEOUT, f"no answer after {self.job_timeout_s:.0f} s"),
                        "timeout",
                    )
                    await w.kill()
                else:  # it exited (or wrote an unreadable line and was killed)
                    rc = await w.wait()
                    last = ProvingFailed(PROVER_CRASHED, f"level-{level} worker pid {w.pid} exited with {rc}")
                    outcome = "crashed"
                self.workers.append(w.summary())
                self.metrics.inc("sheaf_recursive_failures_total", code=last.code)
                self.metrics.inc("sheaf_tree_jobs_total", level=lv, outcome=outcome)
                log.error("batch %d: %s; the job is sent to a new worker", prog.batch_id, last.message)
                continue
            except RemoteError as e:
                failed = _remote_failure(e, op, level, r)
                if failed.code != PROVER_WORKER_ERROR:  # the job itself is wrong: no retry helps
                    outcome = "bad_leaf" if failed.code == PROVER_BAD_LEAF else "rejected"
                    self.metrics.inc("sheaf_tree_jobs_total", level=lv, outcome=outcome)
                    raise self._failed(failed) from None
                last = failed
                self.metrics.inc("sheaf_recursive_failures_total", code=PROVER_WORKER_ERROR)
                self.metrics.inc("sheaf_tree_jobs_total", level=lv, outcome="error")
                log.error("batch %d: worker error %s", prog.batch_id, last.message)
                continue
            finally:
                self._job_level = -1
                self._sample(w)
            wall = time.monotonic() - t0
            try:
                self._check_output(level, out, r, hashes, top)
            except ProvingFailed as e:
                self.metrics.inc("sheaf_tree_jobs_total", level=lv, outcome="mismatch")
                raise self._failed(e) from None
            prog.done += 1
            self.metrics.inc("sheaf_tree_jobs_total", level=lv, outcome="proved")
            self.metrics.observe("sheaf_tree_job_seconds", wall, JOB_BUCKETS, level=lv)
            if out.get("peak_rss_mib"):
                self._last_peak[level] = int(out["peak_rss_mib"]) << 20
            line = (
                f"level {level} {op} over {len(r)} proofs (top={top}): {wall:.1f} s (prove "
                f"{out.get('prove_ms')} ms), job peak {out.get('peak_rss_mib')} MiB"
            )
            log.info("batch %d: %s; %s", prog.batch_id, line, prog.text())
            self._note(f"{self.plan.name}: {line}")
            return out, wall
        raise self._failed(
            ProvingFailed(
                last.code,
                f"level {level} {op} job: gave up after {self.max_attempts} attempts: {last.message}",
            )
        )

    # -- queued jobs (recursion.queue = "postgres") ---------------------------------------------------

    def _tree_job(
        self, prog: TreeProgress, index: int, fields: dict[str, Any], inputs: bytes, domain_id: int
    ) -> TreeJob:
        p = self.plan
        return TreeJob.for_node(
            plan={"k": p.k, "npub": p.npub, "fanin": p.fanin, "levels": p.levels},
            level=prog.level,
            index=index,
            fields=fields,
            circuit_hashes=self.circuit_hashes,
            inputs=inputs,
            batch_id=prog.batch_id,
            domain_id=domain_id,
            prove_timeout_s=self.job_timeout_s,
        )

    async def _queued_level(
        self,
        prog: TreeProgress,
        queued: Sequence[tuple[range, TreeJob, bytes]],
        hashes: Sequence[bytes],
        top: bool,
    ) -> list[tuple[int, dict[str, Any], float]]:
        """A level's jobs, enqueued together so that several workers prove them at once; each output
        checked and kept as it comes. The first failure (after the queue's retries) fails the batch."""
        assert self.queue is not None
        log.info(
            "batch %d: level %d: %d jobs on queue %s; %s",
            prog.batch_id,
            prog.level,
            len(queued),
            self.queue.queue_for(self.circuit_hashes[prog.level], KIND_TREE),
            prog.text(),
        )
        tasks = [asyncio.create_task(self._queued_job(prog, r, job, x, hashes, top)) for r, job, x in queued]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:  # a failure or our cancellation: the level's other waits end (their jobs may run on)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for t in tasks:
            exc = None if t.cancelled() else t.exception()
            if exc is not None:
                raise exc
        return [t.result() for t in tasks]

    async def _queued_job(
        self, prog: TreeProgress, r: range, job: TreeJob, inputs: bytes, hashes: Sequence[bytes], top: bool
    ) -> tuple[int, dict[str, Any], float]:
        assert self.queue is not None
        lv = str(job.level)
        t0 = time.monotonic()
        self._queued[job.level] += 1
        try:
            res: JobResult = await self.queue.run(
                job, max_attempts=self.max_attempts, pickup_timeout_s=self.queue_pickup_timeout_s
            )
            out = res.extra.get("output")
            if not isinstance(out, dict):
                raise ProvingFailed(PROVER_WORKER_ERROR, f"level {job.level}: the job's result has no output")
            self._check_output(job.level, out, r, hashes, top)
        except ProvingFailed as e:
            self.metrics.inc("sheaf_tree_jobs_total", level=lv, outcome="failed")
            if e.bad_leaves:  # the worker names them within the job: the batch's are r's
                e = ProvingFailed(e.code, e.message, bad_leaves=[r[i] for i in e.bad_leaves if i < len(r)])
            raise self._failed(e) from None
        finally:
            self._queued[job.level] -= 1
        wall = time.monotonic() - t0
        prog.done += 1
        self.metrics.inc("sheaf_tree_jobs_total", level=lv, outcome="proved")
        self.metrics.observe("sheaf_tree_job_seconds", wall, JOB_BUCKETS, level=lv)
        line = f"level {job.level} {job.op} job {job.index} over {len(r)} proofs by worker {res.worker}"
        log.info("batch %d: %s in %.1f s; %s", prog.batch_id, line, wall, prog.text())
        self._note(f"{self.plan.name}: {line}")
        await self._keep(prog, job.index, inputs, out)
        return job.index, out, wall

    async def run_job(self, job: TreeJob) -> JobResult:
        """`aggregator worker`'s side of a queued job: one attempt (the queue retries, possibly
        elsewhere) on this process's worker of the job's level, started on demand with the pinned keys
        checked (the same _worker_for as local proving), one job at a time. The worker's Output is in
        extra["output"]; the leader checks it (_check_output) as it checks a local one."""
        p = self.plan
        if job.plan != {"k": p.k, "npub": p.npub, "fanin": p.fanin, "levels": p.levels} or tuple(
            job.circuit_hashes
        ) != tuple(self.circuit_hashes):
            raise ProvingFailed(CIRCUIT_MISMATCH, f"job {job.job_id} is not for {p.name} on these circuits")
        leaves = job.fields.get("leaves") or []
        async with self._lock:
            try:
                w = await self._worker_for(job.level)
            except ProcessError as e:  # did not start or get ready: the queue retries
                self._lost = True
                raise ProvingFailed(PROVER_UNAVAILABLE, f"level-{job.level} worker: {e.message}") from None
            self._job_level = job.level
            try:
                out = await w.request(job.op, timeout=job.prove_timeout_s, **job.fields)
            except ProcessError as e:
                self._w, self._lost = None, True
                self.workers.append(w.summary())
                if e.code == ProcessError.TIMEOUT:
                    await w.kill()
                    raise ProvingFailed(
                        PROVER_TIMEOUT, f"no answer after {job.prove_timeout_s:.0f} s"
                    ) from None
                rc = await w.wait()
                raise ProvingFailed(
                    PROVER_CRASHED, f"level-{job.level} worker pid {w.pid} exited with {rc}"
                ) from None
            except RemoteError as e:
                raise _remote_failure(e, job.op, job.level, range(len(leaves))) from None
            finally:
                self._job_level = -1
                self._sample(w)
        try:
            proof = bytes.fromhex(str(out["proof"]).removeprefix("0x"))
            chash = str(out["circuit_hash"]).lower()
        except (KeyError, TypeError, ValueError) as e:
            raise ProvingFailed(
                PROVER_WORKER_ERROR, f"level {job.level}: unreadable job answer ({e})"
            ) from None
        self.metrics.inc("sheaf_tree_jobs_total", level=str(job.level), outcome="proved")
        return JobResult(proof, [], chash, int(out.get("prove_ms") or 0), extra={"output": out})

    def _check_output(
        self, level: int, out: dict[str, Any], r: range, hashes: Sequence[bytes], top: bool
    ) -> None:
        """The job's node must be Merkle.root of exactly the statement hashes under it (the top node:
        the batch's root and count), made by the pinned circuit of its level, top only at the top."""
        try:
            node = out["node"]
            root, count = bytes.fromhex(str(node["root"]).removeprefix("0x")), int(node["count"])
            proof = bytes.fromhex(str(out["proof"]).removeprefix("0x"))
            got_level, got_top, chash = int(out["level"]), bool(out["top"]), str(out["circuit_hash"]).lower()
        except (KeyError, TypeError, ValueError) as e:
            raise ProvingFailed(PROVER_WORKER_ERROR, f"level {level}: unreadable job answer ({e})") from None
        want = crypto.merkle_root([hashes[i] for i in r])
        if (root, count) != (want, len(r)):
            raise ProvingFailed(
                PROVER_LEAF_MISMATCH,
                f"level {level}: the job proved node ({root.hex()[:16]}, {count}), the batch's leaves "
                f"{r.start}..{r.stop - 1} give ({want.hex()[:16]}, {len(r)})",
            )
        if not proof or got_level != level or got_top != top:
            raise ProvingFailed(
                PROVER_WORKER_ERROR, f"level {level}: answer for level {got_level}, top={got_top}"
            )
        if self.circuit_hashes and chash != self.circuit_hashes[level]:
            raise ProvingFailed(
                CIRCUIT_MISMATCH,
                f"level {level}: proved on circuit {chash[:16]}, not {self.circuit_hashes[level][:16]}",
            )
        if top:
            expect = [root[:16], root[16:], count.to_bytes(32, "big")]
            try:
                pubs = [int(str(x), 16) for x in out.get("public_inputs") or []]
            except ValueError:
                pubs = []
            if pubs != [int.from_bytes(x, "big") for x in expect]:
                raise ProvingFailed(
                    PROVER_LEAF_MISMATCH, "the top proof's public inputs are not (root, count)"
                )


class SyncTreeProver:
    """TreeProver for synchronous scripts (fixture regeneration, the bench, the deploy tests), as
    SyncGnarkProcess is GnarkProcess's: its own event loop lives as long as this object, so a worker
    is kept across prove() calls. No circuit hashes are pinned here (the keys in the cache are the
    ones just exported); one attempt per job, so a script reports a failure at once."""

    def __init__(
        self,
        plan: TreePlan,
        *,
        binary: Path | None = None,
        cache: Path | None = None,
        log: Callable[[str], None] = lambda _s: None,
    ) -> None:
        self.plan = plan
        self._loop = asyncio.new_event_loop()
        self._prover = TreeProver(
            plan, binary=binary or "", cache_dir=cache or "", max_attempts=1, on_job=log
        )

    @property
    def workers(self) -> list[dict[str, Any]]:
        """Per exited worker process: level, startup_s, process_max_rss_mib, wall_s."""
        return self._prover.workers

    def prove(self, leaves: Sequence[dict[str, Any]]) -> TreeRun:
        """The shallowest tree over `leaves` (LeafJSON dicts in tree order; every chunk of K
        consecutive leaves must share one vk); ProvingFailed if a job fails."""
        return self._loop.run_until_complete(self._prover.prove_tree(leaves))

    def close(self) -> None:
        if not self._loop.is_closed():
            self._loop.run_until_complete(self._prover.close())
            self._loop.close()

    def __enter__(self) -> SyncTreeProver:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
