"""The composition root: builds the aggregator's parts on one store and runs their loops.

    ingest     (aggregator.ingest)     RegisterVerifyingKey, SubmitProof: auth, limits, group commit
    reads      (aggregator.reads)      proof status, WatchProof, aggregations, inclusion receipts
    inferences (aggregator.inference)  models, SubmitInference, inference receipts (on ingest + reads)
    batcher    (aggregator.batcher)    queued proofs -> persisted batches
    proving    (aggregator.proving)    recursive batches -> outer proofs (BatchProver)
    attesting  (aggregator.attesting)  operators' tasks, signatures and refusals
    posting    (aggregator.submitter)  built by App: it needs the chain client

They share only the `StoreThread` (durable state), `AggregationIds` (the registry's next id per
domain), `Changes` (wake-ups and the stop flag) and `Metrics`. The front ends' handlers take the
parts they serve (AggregatorService: ingest + reads; OperatorService: attesting; HttpApi: ingest +
reads), never the whole service.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aggregator.admission import Verifier
from aggregator.attesting import Attesting
from aggregator.batcher import Batcher
from aggregator.changes import Changes
from aggregator.config import Config
from aggregator.ids import AggregationIds
from aggregator.inference import Inferences
from aggregator.ingest import Ingest
from aggregator.metrics import Metrics
from aggregator.proving import BatchProver, Proving
from aggregator.reads import Reads
from aggregator.records import ChainInfo, Status
from aggregator.store import Store, StoreThread

log = logging.getLogger("sheaf.aggregator")


class Service:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        verifier: Verifier,
        chain: ChainInfo,
        metrics: Metrics | None = None,
        prover: BatchProver | None = None,
        *,
        read_next_id: Callable[[int], Awaitable[int]] | None = None,
    ) -> None:
        """`read_next_id(domain)`: the registry's nextAggregationId (Chain.next_aggregation_id);
        without it the local sequence alone allocates ids until the submitter reports the chain's."""
        self.cfg = cfg
        self.db = StoreThread(store)
        self.chain = chain
        self.metrics = m = metrics or Metrics()
        self.changes = Changes()
        self.ids = AggregationIds(read_next_id)
        self.proving = Proving(prover, self.db, self.ids, self.changes, m)
        self.ingest = Ingest(cfg, self.db, verifier, self.proving.route, self.changes, m)
        self.batcher = Batcher(cfg, self.db, self.ids, self.proving, self.changes, m)
        self.attesting = Attesting(cfg, self.db, chain, self.changes)
        self.reads = Reads(self.db, chain, self.changes, cfg.default_domain)
        self.reads.progress = self.proving.progress
        self.inferences = Inferences(self.db, self.ingest, self.reads, m)
        self._tasks: list[asyncio.Task[None]] = []
        self._lead_tasks: list[asyncio.Task[None]] = []
        self._status_counts: dict[tuple[tuple[str, str], ...], float] = {}
        # domain -> age in seconds of its oldest unposted batch / oldest QUEUED proof
        self.unposted_age: dict[int, float] = {}
        self.queued_age: dict[int, float] = {}
        self._stall_logged: dict[int, float] = {}  # domain -> when (ms) its stall was last logged
        m.describe("sheaf_proofs", "Proofs by status")
        m.gauge("sheaf_proofs", lambda: dict(self._status_counts))
        m.describe(
            "sheaf_oldest_unposted_batch_age_seconds",
            "Age of the domain's oldest batch not mined yet",
        )
        m.gauge(
            "sheaf_oldest_unposted_batch_age_seconds",
            lambda: {(("domain", str(d)),): a for d, a in self.unposted_age.items()},
        )
        m.describe("sheaf_oldest_queued_proof_age_seconds", "Age of the domain's oldest QUEUED proof")
        m.gauge(
            "sheaf_oldest_queued_proof_age_seconds",
            lambda: {(("domain", str(d)),): a for d, a in self.queued_age.items()},
        )

    @property
    def stopping(self) -> bool:
        return self.changes.closed

    def start(self, *, lead: bool = True) -> None:
        """The loops every instance runs; with `lead`, also the leader's (else: start_leading())."""
        self._tasks = [
            asyncio.create_task(self.ingest.run_writer(), name="writer"),
            asyncio.create_task(self._gauges(), name="gauges"),
        ]
        if lead:
            self.start_leading()

    def start_leading(self) -> None:
        """The loops only the lease holder runs (aggregator.leader): batching, recursive proving,
        the signature sweep. The submitter (App) follows the same lease."""
        self.ids.forget()
        self._lead_tasks = [
            asyncio.create_task(self.batcher.run(), name="batcher"),
            asyncio.create_task(self.attesting.run_sweeper(1.0), name="signature-sweep"),
        ]

    async def stop_leading(self) -> None:
        """The lease is lost: stop the leader's loops (their work is in the store; the next leader
        resumes it)."""
        tasks, self._lead_tasks = self._lead_tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, self.proving.stop(), return_exceptions=True)

    async def stop(self) -> None:
        """Drain: stop taking submissions, commit what is queued, then stop the loops."""
        await self.ingest.drain()
        self.changes.close()
        for t in (*self._tasks, *self._lead_tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, *self._lead_tasks, self.proving.stop(), return_exceptions=True)
        self.db.close()

    def stall_checks(self) -> dict[str, bool]:
        """/readyz checks: no domain's oldest unposted batch (`posting`) nor oldest queued proof
        (`batching`) is older than cfg.stall_after_s (0: off). Refreshed every second."""
        bound = self.cfg.stall_after_s
        if bound <= 0:
            return {}
        return {
            "posting": all(a <= bound for a in self.unposted_age.values()),
            "batching": all(a <= bound for a in self.queued_age.values()),
        }

    async def refresh_gauges(self) -> None:
        store = self.db.store
        counts = await self.db.run(store.count_by_status)
        self._status_counts = {(("status", s.name),): float(counts.get(s, 0)) for s in Status}
        now = time.time() * 1000
        unposted = await self.db.run(store.oldest_unposted)
        self.unposted_age = {d: max(0.0, (now - ms) / 1000) for d, ms in unposted.items()}
        queued: dict[int, float] = {}
        for d, _, _, oldest in await self.db.run(store.queued_groups):
            queued[d] = max(queued.get(d, 0.0), (now - oldest) / 1000)
        self.queued_age = queued
        for d, a in sorted(self.unposted_age.items()):
            # once when the domain crosses the bound, then at most once a minute (refreshed every second)
            if a > self.cfg.stall_after_s > 0 and now - self._stall_logged.get(d, 0.0) >= 60_000:
                self._stall_logged[d] = now
                log.warning("domain %d: its oldest unposted batch is %.0f s old (stalled?)", d, a)
            elif a <= self.cfg.stall_after_s:
                self._stall_logged.pop(d, None)

    async def _gauges(self) -> None:
        while not self.changes.closed:
            try:
                await self.refresh_gauges()
            except Exception:
                log.exception("gauge refresh failed")
            await asyncio.sleep(1.0)
