"""Proving: recursive batches get their outer proof from a `BatchProver`, one batch at a time.

The batcher hands a persisted PENDING recursive batch to `Proving.start`; the proof is stored with
the domain's next aggregation id (the batch is then SIGNED: ready to post). A prover that gives up
(`ProvingFailed`) sends the batch's leaves to attestation: the unfit ones (`bad_leaves`) for good,
the rest back to the recursive queue, or all of them when no leaf is named.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aggregator.changes import Changes
from aggregator.ids import AggregationIds
from aggregator.metrics import Metrics
from aggregator.records import KIND_ATTESTED, KIND_RECURSIVE, BatchRow, BatchState, ProofRow, Verdict
from aggregator.store import StoreThread
from normalizers.api import ProofInput
from sheaf.errors import Internal

log = logging.getLogger("sheaf.aggregator")


@dataclass(frozen=True)
class ProveJob:
    """A recursive aggregation job: prove that `leaves` (statement hashes) are all valid proofs.

    `aggregation_id` is None while proving: the outer proof binds (root, leaf count) only, so the
    batch takes the domain's next id when its proof is stored (Store.finish_proving)."""

    batch_id: int
    domain_id: int
    aggregation_id: int | None
    leaves: list[bytes]
    items: list[ProofInput]
    root: bytes = b""  # the persisted batch root (Merkle.root of leaves); the tree prover checks its top node


class ProvingFailed(Internal):
    """A recursive proving failure with a stable code (see docs/operations.md). `bad_leaves` are the
    indexes of leaves the circuit cannot take: those go to attestation, the rest back to the queue;
    without bad leaves the whole batch goes to attestation (the prover gave up after its retries).
    Never reaches a client (the batch is attested instead); the aggregator's counterpart of
    provers.errors.ProverError, which is the prover CLI's."""

    def __init__(self, code: str, message: str, *, bad_leaves: Sequence[int] = (), field: str = "") -> None:
        super().__init__(code, field, message)
        self.bad_leaves = tuple(bad_leaves)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:  # type: ignore[override]
        return (
            functools.partial(ProvingFailed, bad_leaves=self.bad_leaves, field=self.field),
            (str(self.code), self.message),
        )


class BatchProver(Protocol):
    """Long-running recursive prover (aggregator.recursion.RecursiveProver: the flat outer circuit;
    aggregator.tree_prover.TreeProver: the recursion tree). Must be restartable: the
    aggregator calls prove() again for a persisted batch after a restart; the result is bytes for
    submitRecursiveAggregation. Raises ProvingFailed once it gives up on a job."""

    @property
    def max_leaves(self) -> int:
        """N: leaves per outer proof (a recursive batch never has more)."""
        ...

    def accepts(self, scheme: str, n_public: int) -> bool:
        """Whether a recursion-eligible proof (Groth16 without commitment, gnark PLONK with the
        recursion transcript) with n_public inputs fits the circuit; the rest is attested."""
        ...

    def select(self, rows: Sequence[ProofRow]) -> list[ProofRow]:
        """The next batch from queued candidates (oldest first), in tree order: what fits the
        circuit's slots (e.g. at most N - K Groth16 and K PLONK proofs)."""
        ...

    async def prove(self, job: ProveJob) -> bytes: ...

    async def close(self) -> None:
        """Stop the prover's worker processes (App.stop)."""
        ...


class Proving:
    """Runs the recursive prover (if any) on batches; `route` decides which proofs go to it."""

    def __init__(
        self,
        prover: BatchProver | None,
        db: StoreThread,
        ids: AggregationIds,
        changes: Changes,
        metrics: Metrics,
    ) -> None:
        self.prover = prover
        self.db = db
        self.ids = ids
        self.changes = changes
        self.metrics = metrics
        self._inflight: dict[int, asyncio.Task[None]] = {}
        use_store = getattr(prover, "use_store", None)
        if callable(use_store):  # the tree prover keeps finished jobs there: a restart resumes the tree
            use_store(db)
        if prover is not None:
            m = metrics
            m.describe(
                "sheaf_recursive_inflight", "Recursive batches being proved (or waiting for the worker)"
            )
            m.gauge("sheaf_recursive_inflight", lambda: {(): float(len(self._inflight))})
            # sheaf_recursive_failures_total: described with the prover's (describe_recursive_metrics)
            m.describe(
                "sheaf_recursive_batches_total",
                "Recursive batches by outcome (proved; failed: leaves re-queued, unfit ones attest-only)",
            )

    @property
    def busy(self) -> bool:
        """As many batches are being proved as the prover takes at once: one with the local worker;
        with a job queue, `max_inflight` (recursion.queue_max_inflight: workers prove in parallel;
        aggregation ids are taken when a proof is stored, so proofs may finish in any order)."""
        return len(self._inflight) >= max(1, int(getattr(self.prover, "max_inflight", 1)))

    def progress(self, batch_id: int) -> str | None:
        """How far the prover is with a batch in proving, for status displays (the tree prover: "level
        L of T, j of n jobs done"); None when the prover does not say or the batch is not proving."""
        fn = getattr(self.prover, "progress", None)
        return fn(batch_id) if callable(fn) else None

    def in_progress(self) -> dict[int, str]:
        """progress() of every batch being proved now that has one (/readyz shows it)."""
        out = {bid: self.progress(bid) for bid in sorted(self._inflight)}
        return {bid: s for bid, s in out.items() if s}

    def route(self, v: Verdict) -> str:
        """The aggregation kind for a verified proof. Recursive only if a prover runs and its circuit
        covers it (Groth16 without commitment, exactly P public inputs); without one every proof
        shares the attested batches: splitting them would pay a second submission and wait
        max_wait_ms for two half-empty batches."""
        fits = self.prover is not None and self.prover.accepts(v.scheme, v.n_public)
        return KIND_RECURSIVE if v.recursion_eligible and fits else KIND_ATTESTED

    async def resume(self) -> None:
        """Batches persisted before a crash that still need a recursive proof get their job again;
        with recursion now off, their proofs are attested instead of waiting forever."""
        store = self.db.store
        for b in await self.db.run(store.batches_in, BatchState.PENDING):
            if b.kind != KIND_RECURSIVE:
                continue
            if self.prover is not None:
                self.start(b)
                continue
            leaves = [r.statement_hash for r in await self.db.run(store.batch_proofs, b.batch_id)]
            log.warning("recursive batch %d was waiting for a proof; recursion is off: attesting", b.batch_id)
            await self.db.run(
                functools.partial(store.fail_batch, b.batch_id, "RECURSION_OFF", reroute=leaves)
            )

    def start(self, b: BatchRow) -> None:
        if b.batch_id in self._inflight or self.prover is None:
            return
        self._inflight[b.batch_id] = asyncio.create_task(self._prove(b))

    async def stop(self) -> None:
        """Cancel proving: the batches stay PENDING and are proved again after a restart."""
        tasks = list(self._inflight.values())
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _prove(self, b: BatchRow) -> None:
        assert self.prover is not None
        store = self.db.store
        try:
            rows = await self.db.run(store.batch_proofs, b.batch_id)
            job = ProveJob(
                b.batch_id,
                b.domain_id,
                b.aggregation_id,
                [r.statement_hash for r in rows],
                [r.input for r in rows],
                b.root,
            )
            try:
                proof = await self.prover.prove(job)
            except ProvingFailed as e:  # the prover counted it in sheaf_recursive_failures_total
                self.metrics.inc("sheaf_recursive_batches_total", result="failed")
                bad = [rows[i].statement_hash for i in e.bad_leaves if 0 <= i < len(rows)]
                log.error(
                    "recursive batch %d: %s; %s go to attestation",
                    b.batch_id,
                    e,
                    f"{len(bad)} leaves" if bad else "all its leaves",
                )
                reroute = bad or [r.statement_hash for r in rows]
                await self.db.run(functools.partial(store.fail_batch, b.batch_id, e.code, reroute=reroute))
                return
            floor = await self.ids.floor(b.domain_id)
            done = await self.db.run(store.finish_proving, b.batch_id, proof, floor)
            self.metrics.inc("sheaf_recursive_batches_total", result="proved")
            if done is not None:
                log.info(
                    "recursive batch %d proved: domain %d aggregation %s, %d leaves",
                    b.batch_id,
                    done.domain_id,
                    done.aggregation_id,
                    done.leaf_count,
                )
        except asyncio.CancelledError:
            raise  # shutdown: the batch stays PENDING and is proved again after a restart
        except Exception:
            log.exception("recursive proving of batch %d failed", b.batch_id)
            self.metrics.inc("sheaf_recursive_failures_total", code="PROVER_INTERNAL")
            self.metrics.inc("sheaf_recursive_batches_total", result="failed")
            rows = await self.db.run(store.batch_proofs, b.batch_id)
            await self.db.run(
                functools.partial(
                    store.fail_batch,
                    b.batch_id,
                    "PROVER_INTERNAL",
                    reroute=[r.statement_hash for r in rows],
                )
            )
        finally:
            self._inflight.pop(b.batch_id, None)
            self.changes.notify()
