"""The recursive prover: one long-lived `sheaf-gnark aggregate serve --batch N --npub P [--plonk K]`
worker.

    prover = RecursiveProver(batch=2, npub=1, normalizer=n, metrics=m)
    prover.start()                      # spawns the worker; keys load in the background
    proof = await prover.prove(job)     # bytes for submitRecursiveAggregation

The worker is a separate process (a proof uses every core for minutes): the event loop only waits
on its pipes, so ingest, batching and attestation keep running while a batch is proved. It is
started once, restarted (with backoff) whenever it exits, and a job whose worker died, timed out
or failed internally is sent again to the next worker, up to `max_attempts` times; then the
prover gives up (ProvingFailed) and the aggregator attests the batch instead. The worker speaks the
one process protocol of sheaf-gnark (sheaf.gnark_process, docs/sidecar.md); its ops are in
docs/recursion.md ("Aggregator worker interface").

Leaves: gnark Groth16 items go through the normalizer (the sidecar decodes the gnark binaries
into Sheaf's canonical vk/proof bytes), snarkjs Groth16 items through the snarkjs conversion of
aggregator/leaves.py (`snarkjs_leaf`); gnark PLONK items (recursion transcript, `--plonk K`
slots) keep gnark's encodings plus the normalizer's canonical vk, which the worker checks. Each
leaf's statement hash is recomputed and must equal the batch's leaf, and the worker's result must
name exactly the batch's leaves: the proof that goes on chain is for the root the aggregator
persisted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aggregator.config import RecursionConfig
from aggregator.jobs import (
    CIRCUIT_MISMATCH,
    KEYS_MISSING,
    PROVER_BAD_LEAF,
    PROVER_CRASHED,
    PROVER_LEAF_MISMATCH,
    PROVER_REJECTED,
    PROVER_TIMEOUT,
    PROVER_UNAVAILABLE,
    PROVER_WORKER_ERROR,
    JobResult,
    ProofJob,
    check_result,
    parse_prover_answer,
)
from aggregator.jobs_pg import PgJobQueue
from aggregator.leaves import leaf_statement_hash, snarkjs_leaf
from aggregator.metrics import Metrics
from aggregator.proving import ProveJob, ProvingFailed
from normalizers.api import ProofInput
from sheaf.errors import FAILED_PRECONDITION, SheafError
from sheaf.gnark_process import GnarkProcess, ProcessError, RemoteError
from sheaf.paths import BinaryNotFound, gnark_binary
from sheaf.recursion_tree import TreePlan

log = logging.getLogger("sheaf.recursion")

# Stable failure codes: aggregator.jobs (re-exported here, where they were first defined)
PROVE_BUCKETS = (5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1200.0, 3600.0)
_LEAF_FIELD = re.compile(r"^leaves\[(\d+)\]")
# worker error codes that no retry changes: the batch is refused
_REJECTED = frozenset({"BAD_BATCH", "BAD_SHAPE", "MALFORMED", "TOO_LARGE"})
_HASH = re.compile(r"^[0-9a-f]{64}$")
KIND_FLAT, KIND_TREE = "flat", "tree"  # RecursionPlan.kind (the manifest's `recursive.kind`; absent: flat)
# startup refusals (RecursionPlanError codes; CIRCUIT_MISMATCH too)
TREE_MANIFEST_INVALID = "TREE_MANIFEST_INVALID"  # the manifest's tree section cannot be read


def describe_recursive_metrics(m: Metrics) -> None:
    """Help texts of the `sheaf_recursive_*` metrics a BatchProver exports: the same names for the flat
    prover (RecursiveProver) and the tree (aggregator.tree_prover.TreeProver), so described once."""
    m.describe(
        "sheaf_recursive_prove_seconds",
        "Outer proof time per batch (flat: the worker round trip; tree: all its jobs)",
    )
    m.describe("sheaf_recursive_failures_total", "Recursive proving failures by code")
    m.describe("sheaf_recursive_worker_restarts_total", "Recursive worker (re)starts after an exit")
    m.describe("sheaf_recursive_worker_ready", "1 while a recursive worker has its keys loaded")
    m.describe("sheaf_recursive_worker_peak_rss_bytes", "Peak RSS of the recursive workers (VmHWM)")
    m.describe("sheaf_recursive_proving", "Outer proofs (tree: tree jobs) being computed by the worker now")


class ProverWorker(GnarkProcess):
    """The prover process, `sheaf-gnark aggregate serve --batch N --npub P [--plonk K]`, on the one
    process protocol (sheaf.gnark_process; docs/sidecar.md): it loads (or, on an empty cache, dev-
    creates) its keys before the ready line, whose result names the circuit (shape, circuit_hash,
    nb_constraints, dir, keys_created, compile_ms, setup_ms); ops info, prove, verify; one request
    at a time (a proof already uses every core)."""

    @staticmethod
    def command(
        binary: str | os.PathLike[str], batch: int, npub: int, plonk: int = 0, cache_dir: str = ""
    ) -> list[str]:
        argv = [str(binary), "aggregate", "serve", "--batch", str(batch), "--npub", str(npub)]
        if plonk:
            argv += ["--plonk", str(plonk)]
        if cache_dir:
            argv += ["--cache", cache_dir]
        return argv


class RecursiveProver:
    """BatchProver over one `sheaf-gnark aggregate serve` worker (one proof at a time), or, with
    `queue`, over the `aggregator worker` processes of a PostgreSQL job queue (aggregator.jobs_pg):
    the same unit (aggregator.jobs.ProofJob) runs on either.

    `allow_setup=False` (queue workers): the process may only load keys pinned by
    `expected_circuit_hash` (KEYS_MISSING without them); a process that starts a dev setup (its
    binary compiles another circuit) is killed at once (CIRCUIT_MISMATCH)."""

    def __init__(
        self,
        *,
        batch: int,
        npub: int,
        plonk: int = 0,
        normalizer: Any,
        metrics: Metrics | None = None,
        binary: str = "",
        cache_dir: str = "",
        expected_circuit_hash: str = "",
        max_attempts: int = 3,
        prove_timeout_s: float = 3600.0,
        ready_timeout_s: float = 7200.0,
        restart_backoff_s: float = 1.0,
        allow_setup: bool = True,
        queue: Any = None,
        queue_pickup_timeout_s: float = 600.0,
        queue_max_inflight: int = 4,
        name: str = "local",
    ) -> None:
        if batch < 1 or npub < 1 or not 0 <= plonk <= batch:
            raise ValueError(
                f"recursion batch and npub must be >= 1 and plonk in [0, batch], got {batch}/{npub}/{plonk}"
            )
        self.batch, self.npub, self.plonk = batch, npub, plonk
        self.normalizer = normalizer
        self.metrics = metrics or Metrics()
        self.binary = binary
        self.cache_dir = cache_dir
        self.expected_circuit_hash = expected_circuit_hash.lower().removeprefix("0x")
        self.max_attempts = max_attempts
        self.prove_timeout_s = prove_timeout_s
        self.ready_timeout_s = ready_timeout_s
        self.restart_backoff_s = restart_backoff_s
        self.allow_setup = allow_setup
        self.queue = queue  # aggregator.jobs_pg.PgJobQueue (recursion.queue = "postgres") or None
        self.queue_pickup_timeout_s = queue_pickup_timeout_s
        # batches proved at once (aggregator.proving.Proving.busy): the local worker takes one
        self.max_inflight = queue_max_inflight if queue is not None else 1
        self.name = name  # JobResult.worker for a unit proved here
        # set when the worker can never serve this deployment (wrong circuit, missing binary)
        self.disabled: str = ""
        self.disabled_code = ""
        self.info: dict[str, Any] = {}
        if queue is not None and not self.expected_circuit_hash:
            self.disabled = (
                "recursion.queue = postgres needs the outer circuit's hash (recursion.circuit_hash, or "
                "a deployment manifest naming it): workers prove only with keys pinned by it"
            )
            self.disabled_code = CIRCUIT_MISMATCH
        self.restarts = 0
        self.peak_rss_bytes = 0
        self._worker: ProverWorker | None = None  # ready to take requests
        self._proc: ProverWorker | None = None  # the current process, even while starting
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._inflight = 0
        self._attempt_of: dict[int, int] = {}  # batch id -> attempt now with the local worker
        m = self.metrics
        describe_recursive_metrics(m)
        m.gauge("sheaf_recursive_worker_ready", lambda: {(): 1.0 if self._ready.is_set() else 0.0})
        m.gauge("sheaf_recursive_worker_peak_rss_bytes", lambda: {(): float(self.peak_rss_bytes)})
        m.gauge("sheaf_recursive_proving", lambda: {(): float(self._inflight)})

    @classmethod
    def from_config(
        cls,
        rc: RecursionConfig,
        *,
        batch: int,
        npub: int,
        plonk: int = 0,
        normalizer: Any,
        metrics: Metrics | None = None,
        expected_circuit_hash: str = "",
    ) -> RecursiveProver:
        return cls(
            batch=batch,
            npub=npub,
            plonk=plonk,
            normalizer=normalizer,
            metrics=metrics,
            binary=rc.worker_bin,
            cache_dir=rc.cache_dir,
            expected_circuit_hash=expected_circuit_hash,
            max_attempts=rc.max_attempts,
            prove_timeout_s=rc.prove_timeout_s,
            ready_timeout_s=rc.ready_timeout_s,
            queue=queue_from_config(rc) if rc.queue == "postgres" else None,
            queue_pickup_timeout_s=rc.queue_pickup_timeout_s,
            queue_max_inflight=rc.queue_max_inflight,
        )

    # -- BatchProver ------------------------------------------------------------------------------

    @property
    def max_leaves(self) -> int:
        return self.batch

    def accepts(self, scheme: str, n_public: int) -> bool:
        if self.disabled or n_public != self.npub:
            return False
        if scheme == "groth16":
            return self.batch > self.plonk
        return scheme == "plonk" and self.plonk > 0

    def select(self, rows: Sequence[Any]) -> list[Any]:
        """One batch from queued candidates (oldest first): at most N - K Groth16 and K PLONK
        proofs, Groth16 first (the circuit's slot order is the tree order)."""
        groth16_rows = [r for r in rows if r.scheme == "groth16"][: self.batch - self.plonk]
        plonk = [r for r in rows if r.scheme == "plonk"][: self.plonk]
        return groth16_rows + plonk

    @property
    def shape(self) -> str:
        return f"b{self.batch}_p{self.npub}" + (f"_k{self.plonk}" if self.plonk else "")

    @property
    def worker_pid(self) -> int | None:
        """The current worker process (starting or ready), if it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.alive else None

    # -- worker lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Spawn the worker in the background (returns at once; keys may take minutes to load). With
        a queue: connect to it instead (the workers hold the keys)."""
        if self._supervisor is None:
            run = self._connect_queue() if self.queue is not None else self._supervise()
            self._supervisor = asyncio.create_task(run, name="recursion-worker")

    async def _connect_queue(self) -> None:
        """Queue mode: open the queue (its schema is created on first use); retried with backoff
        while PostgreSQL is unreachable. No local worker runs: `aggregator worker`s prove."""
        assert self.queue is not None
        if self.disabled:
            log.error("recursion disabled: %s; eligible proofs are attested", self.disabled)
            return
        backoff = self.restart_backoff_s
        while not self._closing:
            try:
                await self.queue.open()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("recursion queue: cannot open it yet (%s); retrying", e)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            self.info = {
                "queue": "postgres",
                "schema": self.queue.schema,
                "circuit_hash": self.expected_circuit_hash,
                "shape": {"batch": self.batch, "npub": self.npub, "plonk": self.plonk},
            }
            self._ready.set()
            log.info(
                "recursion: outer proofs of circuit %s go to the PostgreSQL queue (schema %s, queue %s)",
                self.expected_circuit_hash[:16],
                self.queue.schema,
                self.queue.queue_for(self.expected_circuit_hash),
            )
            return

    async def wait_ready(self, timeout: float | None = None) -> dict[str, Any]:
        """The worker's ready info (circuit hash, keys dir, ...) once it has loaded its keys."""
        self.start()
        deadline = time.monotonic() + (timeout if timeout is not None else self.ready_timeout_s)
        while not self._ready.is_set():
            if self.disabled:
                raise ProvingFailed(self.disabled_code or PROVER_UNAVAILABLE, self.disabled)
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProvingFailed(PROVER_UNAVAILABLE, "the recursive worker did not get ready in time")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), min(left, 1.0))
        return dict(self.info)

    def _argv(self) -> list[str]:
        binary = gnark_binary(self.binary or None)  # a configured worker_bin must exist (no fallback)
        return ProverWorker.command(binary, self.batch, self.npub, self.plonk, self.cache_dir)

    def pinned_keys_dir(self) -> Path:
        """Where the keys of the expected circuit are (sheaf-gnark's cache: <root>/<hash[:32]>/)."""
        root = Path(self.cache_dir) if self.cache_dir else Path(cache_root(RecursionConfig()))
        return root / self.expected_circuit_hash[:32]

    def _check_pinned_keys(self) -> None:
        """allow_setup=False: the keys of the expected circuit must be in the cache (the process
        would otherwise run an INSECURE dev setup of its own)."""
        d = self.pinned_keys_dir()
        why = ""
        if not self.expected_circuit_hash:
            why = "no circuit hash to pin keys by"
        else:
            try:
                meta = json.loads((d / "meta.json").read_text())
            except (OSError, ValueError):
                meta = None
            if not isinstance(meta, dict):
                why = f"no keys for circuit {self.expected_circuit_hash[:16]} under {d.parent}"
            elif str(meta.get("circuit_hash", "")).lower() != self.expected_circuit_hash:
                why = f"{d}/meta.json names circuit {str(meta.get('circuit_hash'))[:16]}"
            elif not ((d / "pk.dump").is_file() and (d / "vk.bin").is_file()):
                why = f"{d} lacks pk.dump or vk.bin"
        if why:
            self.disabled, self.disabled_code = why, KEYS_MISSING
            raise ProvingFailed(KEYS_MISSING, why)

    async def _spawn(self) -> ProverWorker:
        try:
            argv = self._argv()
        except BinaryNotFound as e:  # nothing to retry
            self.disabled, self.disabled_code = f"recursive worker binary not found: {e}", PROVER_UNAVAILABLE
            raise
        if not self.allow_setup:
            self._check_pinned_keys()
        # On a cold cache the worker may run the dev setup itself: sheaf-gnark locks the key cache
        # entry (gnark/aggregation/keylock.go) for every `aggregate` command, so a second process
        # (sheaf-deploy, another worker) waits for the first one's keys; that wait counts toward
        # ready_timeout_s, which has to cover a setup anyway.
        w = await ProverWorker.spawn(argv, name="recursive worker", on_stderr=self._on_stderr)
        self._proc = w
        pinned = "" if self.allow_setup else " (pinned keys only)"
        log.info("recursive worker pid %d starting%s: %s", w.pid, pinned, " ".join(argv))
        await w.wait_ready(self.ready_timeout_s)  # kills it on failure, timeout or cancellation
        return w

    async def _supervise(self) -> None:
        backoff = self.restart_backoff_s
        first = True
        while not self._closing and not self.disabled:
            if not first:
                self.restarts += 1
                self.metrics.inc("sheaf_recursive_worker_restarts_total")
            first = False
            try:
                w = await self._spawn()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self.metrics.inc("sheaf_recursive_failures_total", code=PROVER_UNAVAILABLE)
                log.error("recursive worker failed to start: %s %s", e, " | ".join(self._stderr_tail))
                if self.disabled:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)
                continue
            info = w.ready
            shape = info.get("shape") or {}
            got_hash = str(info.get("circuit_hash", "")).lower()
            got = (shape.get("batch"), shape.get("npub"), shape.get("plonk", 0))
            if got != (self.batch, self.npub, self.plonk):
                self.disabled = f"worker shape {shape} is not {self.shape}"
            elif self.expected_circuit_hash and got_hash != self.expected_circuit_hash:
                self.disabled = (
                    f"worker circuit {got_hash[:16]} is not the deployed verifier's circuit "
                    f"{self.expected_circuit_hash[:16]} (redeploy the verifier or fix recursion settings)"
                )
            if self.disabled:
                self.disabled_code = CIRCUIT_MISMATCH
                self.metrics.inc("sheaf_recursive_failures_total", code=CIRCUIT_MISMATCH)
                log.error("recursion disabled: %s; eligible proofs are attested", self.disabled)
                await w.kill()
                return
            self.info = info
            self._worker = w
            self._ready.set()
            backoff = self.restart_backoff_s
            log.info(
                "recursive worker pid %d ready: circuit %s, %s constraints, keys %s (%s), compile %s ms, "
                "keys %s ms",
                w.pid,
                got_hash[:16],
                info.get("nb_constraints"),
                info.get("dir"),
                "CREATED by an INSECURE dev setup" if info.get("keys_created") else "loaded",
                info.get("compile_ms"),
                info.get("setup_ms"),
            )
            rc = await w.wait()
            self._ready.clear()
            self._worker = None
            if self._closing:
                return
            log.error(
                "recursive worker pid %d exited with %s; restarting. stderr: %s",
                w.pid,
                rc,
                " | ".join(self._stderr_tail),
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 60.0)

    def _on_stderr(self, line: str) -> None:
        self._stderr_tail.append(line)
        pid = self._proc.pid if self._proc is not None else 0
        if not self.allow_setup and line.startswith("aggregate: running") and "setup" in line:
            # the binary compiled a circuit whose keys are not cached: another circuit than the
            # pinned one. A worker never creates keys: stop it before the setup gets anywhere.
            self.disabled = (
                f"the prover binary compiles another circuit than {self.expected_circuit_hash[:16]} "
                "(it started a dev setup): rebuild it from the deployed version"
            )
            self.disabled_code = CIRCUIT_MISMATCH
            log.error("worker pid %d: %s; killed", pid, self.disabled)
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
        # "keys: another process is setting up ...; waiting for it" (keylock.go) is worth seeing too
        (log.info if line.startswith(("aggregate:", "keys:")) else log.debug)("worker %d: %s", pid, line)

    def _sample_rss(self, w: ProverWorker) -> None:
        self.peak_rss_bytes = max(self.peak_rss_bytes, w.peak_rss_bytes())

    async def close(self) -> None:
        self._closing = True
        w = self._worker
        if w is not None:
            self._sample_rss(w)
            await w.kill()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
            self._supervisor = None
        # a worker still starting is killed by wait_ready's cancellation handler
        self._ready.clear()
        self._worker = None
        if self.queue is not None:
            await self.queue.close()

    # -- leaves -----------------------------------------------------------------------------------

    async def leaves(self, items: Sequence[ProofInput], expected: Sequence[bytes]) -> list[dict[str, Any]]:
        """Worker leaves (canonical vk / proof / public inputs, hex) for the batch's items, each
        checked against the batch's statement hash (worker_leaves)."""
        return await worker_leaves(
            items,
            expected,
            normalizer=self.normalizer,
            npub=self.npub,
            plonk=self.plonk,
            metrics=self.metrics,
        )

    # -- proving ----------------------------------------------------------------------------------

    def unit(self, job: ProveJob, leaves: list[dict[str, Any]]) -> ProofJob:
        """The self-contained proving unit of a batch (aggregator.jobs): what the local worker or
        an `aggregator worker` proves."""
        return ProofJob.for_batch(
            batch_id=job.batch_id,
            domain_id=getattr(job, "domain_id", 0),
            batch=self.batch,
            npub=self.npub,
            plonk=self.plonk,
            circuit_hash=self.expected_circuit_hash,
            leaves=leaves,
            statement_hashes=job.leaves,
            prove_timeout_s=self.prove_timeout_s,
        )

    async def prove(self, job: ProveJob) -> bytes:
        if not job.leaves or len(job.leaves) > self.batch:
            raise ProvingFailed(
                PROVER_REJECTED, f"{len(job.leaves)} leaves, the circuit takes 1..{self.batch}"
            )
        if self.disabled:
            raise ProvingFailed(self.disabled_code or PROVER_UNAVAILABLE, self.disabled)
        leaves = await self.leaves(job.items, job.leaves)
        unit = self.unit(job, leaves)
        if self.queue is not None:
            return (await self._run_queued(unit)).proof
        return (await self.run_unit(unit)).proof

    async def run_unit(self, unit: ProofJob) -> JobResult:
        """Prove one unit on this prover's worker process (one at a time: a proof already uses every
        core), retried up to max_attempts on crashes, timeouts and internal errors. The result is
        checked against the unit (its leaves, its circuit)."""
        if unit.batch != self.batch or unit.npub != self.npub or unit.plonk != self.plonk:
            raise ProvingFailed(CIRCUIT_MISMATCH, f"a {unit.shape} job for a {self.shape} prover")
        async with self._lock:
            return await self._run_local(unit)

    async def _run_queued(self, unit: ProofJob) -> JobResult:
        assert self.queue is not None
        try:
            await self.wait_ready()
        except ProvingFailed as e:
            self.metrics.inc("sheaf_recursive_failures_total", code=e.code)
            raise
        t0 = time.monotonic()
        self._inflight += 1
        try:
            res: JobResult = await self.queue.run(
                unit, max_attempts=self.max_attempts, pickup_timeout_s=self.queue_pickup_timeout_s
            )
            check_result(unit, res)
        except ProvingFailed as e:
            self.metrics.inc("sheaf_recursive_failures_total", code=e.code)
            raise
        finally:
            self._inflight -= 1
        wall = time.monotonic() - t0
        self.metrics.observe("sheaf_recursive_prove_seconds", wall, PROVE_BUCKETS, shape=self.shape)
        log.info(
            "batch %d: outer proof from the queue in %.1f s (worker %s, prove %s ms)",
            unit.batch_id,
            wall,
            res.worker,
            res.prove_ms,
        )
        return res

    async def _prove_locked(self, job: ProveJob, leaves: list[dict[str, Any]]) -> bytes:
        """A batch's proof on the local worker (the caller holds the lock)."""
        return (await self._run_local(self.unit(job, leaves))).proof

    def progress(self, batch_id: int) -> str | None:
        """ "attempt a of m" while the batch is with the local worker (the explorer and /readyz show
        it); None otherwise (queue mode: the job's progress is the queue's)."""
        a = self._attempt_of.get(batch_id)
        return None if a is None else f"attempt {a} of {self.max_attempts}"

    async def _run_local(self, unit: ProofJob) -> JobResult:
        try:
            return await self._run_local_attempts(unit)
        finally:
            self._attempt_of.pop(unit.batch_id, None)

    async def _run_local_attempts(self, unit: ProofJob) -> JobResult:
        last = ProvingFailed(PROVER_UNAVAILABLE, "no attempt made")
        attempt = 0
        timeout = unit.prove_timeout_s or self.prove_timeout_s
        while attempt < self.max_attempts:
            try:
                await self.wait_ready()
            except ProvingFailed as e:
                self.metrics.inc("sheaf_recursive_failures_total", code=e.code)
                raise
            w = self._worker
            if w is None or not w.alive:  # died between ready and now
                self._forget(w)
                continue
            attempt += 1
            self._attempt_of[unit.batch_id] = attempt
            t0 = time.monotonic()
            log.info(
                "batch %d: proving %d leaves on worker pid %d (attempt %d/%d)",
                unit.batch_id,
                len(unit.leaves),
                w.pid,
                attempt,
                self.max_attempts,
            )
            self._inflight = 1  # a request is with the worker (not while it restarts)
            try:
                result = await w.request("prove", timeout=timeout, leaves=unit.leaves)
            except ProcessError as e:
                if e.code == ProcessError.TIMEOUT:
                    last = ProvingFailed(PROVER_TIMEOUT, f"no proof after {timeout:.0f} s")
                    self.metrics.inc("sheaf_recursive_failures_total", code=PROVER_TIMEOUT)
                    log.error("batch %d: %s; killing worker pid %d", unit.batch_id, last, w.pid)
                    await w.kill()
                else:  # it exited (or wrote an unreadable line and was killed)
                    rc = await w.wait()
                    last = ProvingFailed(PROVER_CRASHED, f"worker pid {w.pid} exited with {rc} while proving")
                    self.metrics.inc("sheaf_recursive_failures_total", code=PROVER_CRASHED)
                    log.error("batch %d: %s; the job is sent to the restarted worker", unit.batch_id, last)
                self._forget(w)
                continue
            except RemoteError as e:
                code, fld, msg = str(e.code), e.field, e.message
                if code == "BAD_LEAF":
                    m = _LEAF_FIELD.match(fld)
                    bad = [int(m.group(1))] if m else list(range(len(unit.leaves)))
                    self.metrics.inc("sheaf_recursive_failures_total", code=PROVER_BAD_LEAF)
                    raise ProvingFailed(PROVER_BAD_LEAF, f"{fld}: {msg}", bad_leaves=bad) from None
                if code in _REJECTED:
                    self.metrics.inc("sheaf_recursive_failures_total", code=PROVER_REJECTED)
                    raise ProvingFailed(PROVER_REJECTED, f"{code} {fld}: {msg}") from None
                last = ProvingFailed(PROVER_WORKER_ERROR, f"{code} {fld}: {msg}")
                self.metrics.inc("sheaf_recursive_failures_total", code=PROVER_WORKER_ERROR)
                log.error("batch %d: worker error %s", unit.batch_id, last)
                continue
            finally:
                self._inflight = 0
                self._sample_rss(w)
            wall = time.monotonic() - t0
            res = self._check_answer(unit, result)
            self.metrics.observe("sheaf_recursive_prove_seconds", wall, PROVE_BUCKETS, shape=self.shape)
            log.info(
                "batch %d: outer proof in %.1f s (worker prove %s ms), peak RSS %d MiB",
                unit.batch_id,
                wall,
                result.get("prove_ms"),
                self.peak_rss_bytes >> 20,
            )
            return res
        raise ProvingFailed(last.code, f"gave up after {self.max_attempts} attempts: {last.message}")

    async def verify(self, res: JobResult) -> bool:
        """The worker's own check of an outer proof (op verify: the circuit's verifying key)."""
        await self.wait_ready()
        w = self._worker
        if w is None or not w.alive:
            raise ProvingFailed(PROVER_CRASHED, "the worker exited before verifying")
        try:
            r = await w.request(
                "verify",
                timeout=600.0,
                leaves=["0x" + x.hex() for x in res.leaves],
                proof="0x" + res.proof.hex(),
            )
        except RemoteError:
            return False
        except ProcessError as e:
            raise ProvingFailed(PROVER_CRASHED, f"verify: {e.message}") from None
        return bool(r.get("valid"))

    def _forget(self, w: ProverWorker | None) -> None:
        """A dead worker is not ready (the supervisor, which restarts it, may not have run yet)."""
        if self._worker is w:
            self._worker = None
            self._ready.clear()

    def _check_answer(self, unit: ProofJob, r: dict[str, Any]) -> JobResult:
        try:
            return parse_prover_answer(
                unit, r, circuit_hash=str(self.info.get("circuit_hash", "")).lower(), worker=self.name
            )
        except ProvingFailed as e:
            self.metrics.inc("sheaf_recursive_failures_total", code=e.code)
            raise


# ---------------------------------------------------------------- leaves


async def worker_leaves(
    items: Sequence[ProofInput],
    expected: Sequence[bytes],
    *,
    normalizer: Any,
    npub: int,
    plonk: int = 0,
    metrics: Metrics,
) -> list[dict[str, Any]]:
    """Worker leaves (canonical vk / proof / public inputs, hex) for a batch's items, each checked
    against the batch's statement hash; a leaf that cannot be converted or hashes to another
    statement is ProvingFailed with bad_leaves = [its index]. The leaf form of `aggregate serve` and
    of `tree serve`'s leaf jobs (which take Groth16 only: plonk=0)."""
    out: list[dict[str, Any]] = []
    for i, it in enumerate(items):
        try:
            leaf = await worker_leaf(it, normalizer=normalizer, npub=npub, plonk=plonk)
        except ProvingFailed as e:
            metrics.inc("sheaf_recursive_failures_total", code=e.code)
            raise ProvingFailed(e.code, f"leaves[{i}]: {e.message}", bad_leaves=[i]) from e
        except Exception as e:  # the normalizer refused it (NormalizeError) or the conversion failed
            metrics.inc("sheaf_recursive_failures_total", code=PROVER_BAD_LEAF)
            code = getattr(getattr(e, "code", None), "value", "") or type(e).__name__
            raise ProvingFailed(PROVER_BAD_LEAF, f"leaves[{i}]: {code}: {e}", bad_leaves=[i]) from e
        if leaf_statement_hash(leaf) != expected[i]:
            metrics.inc("sheaf_recursive_failures_total", code=PROVER_LEAF_MISMATCH)
            raise ProvingFailed(
                PROVER_LEAF_MISMATCH,
                f"leaves[{i}]: the converted leaf's statement hash differs from the batch's",
                bad_leaves=[i],
            )
        out.append(leaf)
    return out


async def worker_leaf(it: ProofInput, *, normalizer: Any, npub: int, plonk: int = 0) -> dict[str, Any]:
    """One item as a worker leaf (see worker_leaves)."""
    if it.scheme == "plonk" and it.format == "gnark" and plonk:
        env = await normalizer.anormalize(it)
        if not env.recursion_eligible:
            raise ProvingFailed(
                PROVER_BAD_LEAF,
                "gnark PLONK proof not made with the recursion transcript (or with commitments)",
            )
        # the worker takes gnark's own encodings and checks canonical_vk against them
        leaf = {
            "scheme": "plonk",
            "vk": "0x" + bytes(it.vk).hex(),
            "proof": "0x" + bytes(it.proof).hex(),
            "public_inputs": ["0x" + bytes(p).hex() for p in env.public_inputs],
            "canonical_vk": "0x" + bytes(env.canonical_vk).hex(),
        }
    elif it.scheme != "groth16":
        raise ProvingFailed(PROVER_BAD_LEAF, f"scheme {it.scheme} is not aggregated recursively")
    elif it.format == "snarkjs":
        if it.public is None:
            raise ProvingFailed(PROVER_BAD_LEAF, "snarkjs Groth16 without public inputs")
        leaf = dict(await asyncio.to_thread(snarkjs_leaf, it.vk, it.proof, it.public))
    elif it.format == "gnark":
        env = await normalizer.anormalize(it)
        if not env.recursion_eligible or len(env.proof) != 256:
            raise ProvingFailed(PROVER_BAD_LEAF, "gnark proof with a Pedersen commitment")
        leaf = {
            "scheme": "groth16",
            "vk": "0x" + bytes(env.canonical_vk).hex(),
            "proof": "0x" + bytes(env.proof).hex(),
            "public_inputs": ["0x" + bytes(p).hex() for p in env.public_inputs],
        }
    else:
        raise ProvingFailed(PROVER_BAD_LEAF, f"format {it.format} is not aggregated recursively")
    if len(leaf["public_inputs"]) != npub:
        raise ProvingFailed(
            PROVER_BAD_LEAF, f"{len(leaf['public_inputs'])} public inputs, the circuit takes {npub}"
        )
    return leaf


# ---------------------------------------------------------------- configuration -> prover


@dataclass(frozen=True)
class RecursionPlan:
    """Whether recursion runs and with which circuit: the flat outer circuit (`aggregate serve`,
    RecursiveProver) or the recursion tree (`tree serve` workers, aggregator.tree_prover.TreeProver)."""

    enabled: bool
    reason: str
    batch: int = 0  # leaves per recursive batch (flat: N; tree: at most the deployed tree's capacity)
    npub: int = 0
    circuit_hash: str = (
        ""  # expected (from config or the manifest); empty: not checked. Tree: the top level's
    )
    plonk: int = 0
    kind: str = KIND_FLAT
    tree: TreePlan | None = None  # kind "tree": the deployed plan (K, F, levels)
    circuit_hashes: tuple[
        str, ...
    ] = ()  # kind "tree": level L's circuit hash at index L (keys pinned by them)


class RecursionPlanError(SheafError):
    """The configuration and the deployment manifest disagree about the recursive circuit (startup
    refuses to run rather than prove for a verifier the chain does not have)."""

    status = FAILED_PRECONDITION


def _tree_plan(rc: RecursionConfig, manifest: dict[str, Any], why: str) -> RecursionPlan:
    """The plan of a live tree deployment (manifest `recursive.kind == "tree"`, written by
    deploy/tree.py's deploy_tree_verifier): shape and per-level circuit hashes from the manifest, the
    configuration may only narrow the batch size or restate what the manifest says."""
    t = manifest.get("tree")
    hashes = manifest.get("circuit_hashes")
    try:
        if not isinstance(t, dict) or not isinstance(hashes, list):
            raise ValueError("no `tree` plan or `circuit_hashes` list")
        plan = TreePlan(k=int(t["k"]), npub=int(t["npub"]), fanin=int(t["fanin"]), levels=int(t["levels"]))
        pinned = tuple(str(h).lower().removeprefix("0x") for h in hashes)
        if len(pinned) != plan.levels + 1 or not all(_HASH.fullmatch(h) for h in pinned):
            raise ValueError(f"circuit_hashes must be {plan.levels + 1} sha256 hex digests (one per level)")
    except (KeyError, TypeError, ValueError) as e:
        raise RecursionPlanError(
            TREE_MANIFEST_INVALID,
            "recursive",
            f"the manifest's tree deployment is unreadable ({e}): redeploy it",
        ) from None
    conflicts = []
    if rc.npub and rc.npub != plan.npub:
        conflicts.append(f"recursion.npub = {rc.npub}, the tree takes {plan.npub} public inputs per proof")
    if rc.plonk:
        conflicts.append(f"recursion.plonk = {rc.plonk}, the tree's leaf jobs take Groth16 only")
    if rc.batch > plan.capacity:
        conflicts.append(f"recursion.batch = {rc.batch} exceeds the tree's capacity {plan.capacity}")
    if rc.circuit_hash and rc.circuit_hash.lower().removeprefix("0x") != pinned[-1]:
        conflicts.append(
            f"recursion.circuit_hash {rc.circuit_hash[:16]} is not the deployed top level's {pinned[-1][:16]}"
        )
    if conflicts:
        raise RecursionPlanError(
            CIRCUIT_MISMATCH,
            "recursion",
            f"{'; '.join(conflicts)} (deployed: {plan.name}); fix [aggregator.recursion] or redeploy",
        )
    return RecursionPlan(
        True,
        why,
        batch=rc.batch or plan.capacity,
        npub=plan.npub,
        circuit_hash=pinned[-1],
        kind=KIND_TREE,
        tree=plan,
        circuit_hashes=pinned,
    )


def manifest_recursive(deployments_dir: str, chain_id: int, registry: str) -> dict[str, Any]:
    """The deployment manifest's `recursive` section if it is about this registry, else {}."""
    p = Path(deployments_dir) / f"{chain_id}.json"
    try:
        rec = json.loads(p.read_text()).get("recursive") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(rec, dict) or str(rec.get("registry", "")).lower() != registry.lower():
        return {}
    return rec


def plan_recursion(rc: RecursionConfig, *, registry_verifier: str, manifest: dict[str, Any]) -> RecursionPlan:
    """Decide whether recursion runs and with which circuit (docs/operations.md, "Recursion"): the
    flat outer circuit, or, when the manifest's live verifier is a recursion tree (`kind: "tree"`),
    the tree (plan and per-level circuit hashes from the manifest; RecursionPlanError when the
    configuration contradicts it).

    registry_verifier: SheafRegistry.aggregationVerifier() (zero address: none configured);
    manifest: manifest_recursive(...) for this registry."""
    if rc.enabled is False:
        return RecursionPlan(False, "disabled in the configuration")
    has_verifier = int(registry_verifier or "0", 16) != 0
    # the manifest's shape applies only while its adapter is the registry's verifier
    live = bool(manifest) and str(manifest.get("adapter", "")).lower() == (registry_verifier or "").lower()
    if live and has_verifier and manifest.get("kind") == KIND_TREE:
        why = (
            "enabled in the configuration"
            if rc.enabled
            else "auto: the registry's verifier is the recursion tree's adapter"
        )
        return _tree_plan(rc, manifest, f"{why} ({manifest.get('active') or 'tree'})")
    batch = rc.batch or (int(manifest.get("batch", 0)) if live else 0)
    npub = rc.npub or (int(manifest.get("npub", 0)) if live else 0)
    plonk = rc.plonk if rc.plonk is not None else (int(manifest.get("plonk", 0)) if live else 0)
    expected = rc.circuit_hash
    if (
        not expected
        and live
        and (batch, npub, plonk)
        == (manifest.get("batch"), manifest.get("npub"), int(manifest.get("plonk", 0)))
    ):
        expected = str(manifest.get("circuit_hash", ""))
    if batch and plonk > batch:
        raise ValueError(f"recursion.plonk = {plonk} exceeds the batch size {batch}")
    if rc.enabled is None:
        if not has_verifier:
            return RecursionPlan(False, "auto: the registry has no aggregation verifier")
        if not (batch and npub):
            return RecursionPlan(
                False,
                "auto: unknown circuit shape (set recursion.batch/npub, or deploy with sheaf-deploy)",
            )
        why = "auto: the registry has an aggregation verifier"
        return RecursionPlan(True, why, batch, npub, expected, plonk)
    if not (batch and npub):
        raise ValueError(
            "recursion.enabled = true needs recursion.batch and recursion.npub (or a deployment manifest "
            "whose recursive section is this registry's verifier)"
        )
    why = "enabled in the configuration" + ("" if has_verifier else " (the registry has NO verifier yet)")
    return RecursionPlan(True, why, batch, npub, expected, plonk)


def cache_root(rc: RecursionConfig) -> str:
    """Where the worker keeps its keys (what sheaf-deploy's setup uses by default too)."""
    if rc.cache_dir:
        return rc.cache_dir
    root = os.environ.get("SHEAF_CACHE") or str(Path.home() / ".cache" / "sheaf")
    return str(Path(root) / "recursion")


def tree_cache_dir(rc: RecursionConfig) -> str:
    """Where the tree workers' keys are: the `tree/` next to recursion.cache_dir (sheaf-gnark's own
    defaults are $SHEAF_CACHE/recursion and $SHEAF_CACHE/tree); "" (= $SHEAF_CACHE/tree) without one."""
    return str(Path(rc.cache_dir).parent / "tree") if rc.cache_dir else ""


def queue_from_config(rc: RecursionConfig) -> PgJobQueue:
    """The PostgreSQL job queue of `recursion.queue = "postgres"` (aggregator.jobs_pg)."""
    return PgJobQueue(rc.queue_url, schema=rc.queue_schema, stalled_after_s=rc.queue_stalled_after_s)
