"""Reads: proof status, status streams, aggregations and inclusion receipts (both front ends)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aggregator import crypto
from aggregator.changes import Changes
from aggregator.records import BatchRow, ChainInfo, Event, Inclusion, ProofRow, Status
from aggregator.store import StoreThread
from sheaf.errors import NotFound


class Reads:
    def __init__(self, db: StoreThread, chain: ChainInfo, changes: Changes, default_domain: int) -> None:
        self.db = db
        self.chain = chain
        self.changes = changes
        self.default_domain = default_domain  # for requests that name no domain

    async def proof(self, proof_id: str) -> ProofRow:
        row = await self.db.run(self.db.store.get_proof, proof_id)
        if row is None:
            raise NotFound("UNKNOWN_PROOF", "proof_id", f"no proof {proof_id!r}")
        return row

    async def batch_for(self, row: ProofRow) -> BatchRow | None:
        if row.batch_id is None:
            return None
        return await self.db.run(self.db.store.get_batch, row.batch_id)

    async def watch(self, proof_id: str) -> AsyncIterator[Event]:
        """The proof's status events from the first, until REJECTED/FAILED or shutdown."""
        await self.proof(proof_id)
        seq = 0
        while not self.changes.closed:
            evs = await self.db.run(self.db.store.events_after, proof_id, seq)
            for e in evs:
                seq = e.seq
                yield e
            if evs and evs[-1].status in (Status.REJECTED, Status.FAILED):
                return
            if not evs:
                await self.changes.wait(1.0)

    async def aggregation(self, domain_id: int, aggregation_id: int) -> tuple[BatchRow, list[ProofRow]]:
        # ids beyond a signed 64-bit INTEGER can't be stored (and overflow SQLite's binding)
        in_range = 0 <= domain_id < 1 << 63 and 0 <= aggregation_id < 1 << 63
        b = None
        if in_range:
            b = await self.db.run(self.db.store.get_batch_by_aggregation, domain_id, aggregation_id)
        if b is None:
            raise NotFound(
                "UNKNOWN_AGGREGATION", "aggregation_id", f"no aggregation {domain_id}/{aggregation_id}"
            )
        return b, await self.db.run(self.db.store.batch_proofs, b.batch_id)

    async def inclusion(self, proof_id: str) -> Inclusion:
        row = await self.proof(proof_id)
        if row.status != Status.FINALIZED or row.batch_id is None or row.leaf_index is None:
            raise NotFound(
                "NOT_FINALIZED", "proof_id", f"proof {proof_id} is {row.status.name}, not FINALIZED"
            )
        b = await self.db.run(self.db.store.get_batch, row.batch_id)
        assert b is not None and b.aggregation_id is not None
        leaves = [p.statement_hash for p in await self.db.run(self.db.store.batch_proofs, b.batch_id)]
        return Inclusion(
            proof_id,
            b.domain_id,
            b.aggregation_id,
            b.kind,
            b.root,
            row.statement_hash,
            crypto.merkle_path(leaves, row.leaf_index),
            b.leaf_count,
            row.leaf_index,
            b.tx_hash or b"",
            b.block_number or 0,
        )
