"""Deprecated: the pre-issue-12 `Core` facade over aggregator.service.Service.

Kept only for callers outside this area until they switch (then delete this module):
aggregator/recursion.py (`ProveJob`, `ProverError`: now aggregator.proving's `ProveJob` and
`ProvingFailed`) and tests/aggregator/test_agg_recursive.py (`Core`, and `App.core`, which
returns this facade). New code uses `Service` and its parts
(`service.ingest.submit`, `service.reads.proof`, ...).
"""

from __future__ import annotations

from typing import Any

from aggregator.admission import Verifier
from aggregator.config import Config
from aggregator.metrics import Metrics
from aggregator.proving import BatchProver, ProveJob, ProvingFailed
from aggregator.records import BatchRow, ChainInfo, ProofRow, Submission, SubmitAck
from aggregator.service import Service
from aggregator.store import Store

__all__ = ["Core", "ProveJob", "ProverError"]

ProverError = ProvingFailed


class Core:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        verifier: Verifier,
        chain: ChainInfo,
        metrics: Metrics | None = None,
        prover: BatchProver | None = None,
    ) -> None:
        self.service = Service(cfg, store, verifier, chain, metrics, prover)

    @classmethod
    def of(cls, service: Service) -> Core:
        c = cls.__new__(cls)
        c.service = service
        return c

    def __getattr__(self, name: str) -> Any:  # cfg, db, metrics, chain, start, stop, ...
        if name == "service":
            raise AttributeError(name)
        return getattr(self.service, name)

    async def submit(self, s: Submission) -> SubmitAck:
        return await self.service.ingest.submit(s)

    async def proof(self, proof_id: str) -> ProofRow:
        return await self.service.reads.proof(proof_id)

    async def batch_for(self, row: ProofRow) -> BatchRow | None:
        return await self.service.reads.batch_for(row)
