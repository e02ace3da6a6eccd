"""Batching: queued proofs become persisted batches (leaf order, Merkle root, aggregation id).

One batch per (domain, kind) group once it is full (max_leaves) or its oldest proof has waited
max_wait_ms. Attested batches get their aggregation id at once and go to the operators; recursive
batches (at most the circuit's N leaves, picked by the prover's slots, waiting
recursion.max_wait_ms to fill) go to `Proving` and take their id when proved.

Chain spend (issue 13, item 7): a post costs about the same whatever its leaf count, so a trickle of
proofs (one per max_wait_ms) would make the submitter post all day. `min_post_interval_s` bounds it:
a PARTIAL batch of a (domain, kind) closes at most once per that interval (full batches are never
held), so partial posts are at most 3600 / min_post_interval_s per hour and domain.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time

from aggregator import crashpoints, crypto
from aggregator.changes import Changes
from aggregator.config import Config
from aggregator.ids import AggregationIds
from aggregator.metrics import SIZE_BUCKETS, Metrics
from aggregator.proving import Proving
from aggregator.records import KIND_ATTESTED, KIND_RECURSIVE
from aggregator.store import StoreThread

log = logging.getLogger("sheaf.aggregator")


class Batcher:
    def __init__(
        self,
        cfg: Config,
        db: StoreThread,
        ids: AggregationIds,
        proving: Proving,
        changes: Changes,
        metrics: Metrics,
    ) -> None:
        self.cfg = cfg
        self.db = db
        self.ids = ids
        self.proving = proving
        self.changes = changes
        self.metrics = metrics
        self._last_partial: dict[tuple[int, str], float] = {}  # (domain, kind) -> monotonic time
        metrics.describe("sheaf_batch_size", "Leaves per created batch")

    async def run(self) -> None:
        await self.proving.resume()
        while not self.changes.closed:
            try:
                made = await self.make_batches()
            except Exception:
                log.exception("batcher round failed")
                made = 0
            if not made:
                await asyncio.sleep(self.cfg.batch_tick_ms / 1000)

    async def make_batches(self, force: bool = False) -> int:
        """One round over the queued groups; `force` batches partial groups now. Returns the number
        of batches made."""
        store = self.db.store
        prover = self.proving.prover
        made = 0
        now = int(time.time() * 1000)
        for domain, kind, count, oldest in await self.db.run(store.queued_groups):
            limit, wait = self.cfg.max_leaves, self.cfg.max_wait_ms
            recursive = kind == KIND_RECURSIVE and prover is not None
            if recursive:
                assert prover is not None
                # One outer proof at a time (one worker): later proofs wait QUEUED, so no batch
                # holds leaves it cannot prove yet. At most N leaves; a partial batch costs a full
                # proof, so it waits longer (recursion.max_wait_ms) to fill.
                if self.proving.busy:
                    continue
                limit = min(limit, prover.max_leaves)
                wait = self.cfg.recursion.max_wait_ms
            if not force and count < limit and now - oldest < wait:
                continue
            partial = count < limit
            gap = self.cfg.min_post_interval_s
            if (
                not force
                and partial
                and gap
                and time.monotonic() - self._last_partial.get((domain, kind), -gap) < gap
            ):
                continue  # the spend bound: one partial batch per interval (full ones are not held)
            if recursive:
                assert prover is not None
                # typed slots: look past the first N candidates for the kinds the batch still lacks
                candidates = await self.db.run(store.take_queued, domain, kind, 8 * limit)
                rows = prover.select(candidates)
            else:
                rows = await self.db.run(store.take_queued, domain, kind, limit)
            if not rows:
                continue
            root = crypto.merkle_root([r.statement_hash for r in rows])
            agg_kind = KIND_RECURSIVE if recursive else KIND_ATTESTED
            floor = await self.ids.floor(domain)
            b = await self.db.run(
                functools.partial(
                    store.create_batch,
                    domain,
                    agg_kind,
                    [r.proof_id for r in rows],
                    root,
                    floor,
                    defer_id=recursive,
                )
            )
            crashpoints.reached("batch")
            self.metrics.observe("sheaf_batch_size", len(rows), SIZE_BUCKETS, kind=agg_kind)
            log.info(
                "batch %d: domain %d aggregation %s, %d leaves, root %s",
                b.batch_id,
                domain,
                b.aggregation_id,
                len(rows),
                root.hex(),
                extra={
                    "batch_id": b.batch_id,
                    "domain": domain,
                    "aggregation_id": b.aggregation_id,
                    "leaf_count": len(rows),
                    "root": "0x" + root.hex(),
                },
            )
            if agg_kind == KIND_RECURSIVE:
                self.proving.start(b)
            if len(rows) < limit:
                self._last_partial[domain, kind] = time.monotonic()
            made += 1
        if made:
            self.changes.notify()
        return made
