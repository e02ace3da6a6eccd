"""Issue 13 item 5: a statement whose batch the operators refused (FAILED) can be submitted again;
the resubmission is a new attempt that reaches FINALIZED. Real anvil and registry, in-process
aggregator; the refusals are real operator-signed refusals, then real operator processes sign."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from agg_helpers import (
    OPERATOR_KEYS,
    ChainEnv,
    proof_pool,
    start_operator,
    stop_process,
    wait_all_finalized,
)
from eth_account import Account

from aggregator.app import App
from aggregator.attestation import Aggregation, sign_refusal
from aggregator.client import AsyncClient
from aggregator.records import BatchState
from sheaf.v1 import aggregator_pb2 as pb


async def test_failed_statement_is_resubmitted_as_a_new_attempt(
    app: App, chain_env: ChainEnv, tmp_path: Path
) -> None:
    target = f"127.0.0.1:{app.grpc.port}"
    p = proof_pool(240)[90]
    db = app.service.db
    async with AsyncClient(target, timeout=10) as c:
        first = await c.submit(p.scheme, p.format, p.proof, vk=p.vk, public=p.public)
        deadline = time.monotonic() + 20
        while not (pending := await db.run(db.store.batches_in, BatchState.PENDING)):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        b = pending[0]
        stmt = bytes(first.statement_hash)
        # 2 of 3 operators refuse (more than n - k = 1): the batch fails, the statement is FAILED
        for key in OPERATOR_KEYS[:2]:
            op = Account.from_key(key).address
            dl = await app.service.attesting.deadline(b.batch_id)
            agg = Aggregation(b.domain_id, b.aggregation_id or 0, b.root, b.leaf_count, dl)
            chain = app.service.attesting.chain
            sig = sign_refusal(
                key, b.batch_id, agg, "VERIFICATION_FAILED", [stmt], chain.chain_id, chain.registry
            )
            await app.service.attesting.attest(
                op, b.batch_id, b"", sig, "VERIFICATION_FAILED", [stmt], "pairing check failed\x07"
            )
        st = await c.status(first.proof_id)
        assert st.status == pb.FAILED and st.reason_code == "VERIFICATION_FAILED"
        # the client learns who refused and the operator's stated cause (control characters dropped)
        assert st.message == f"operator {op} refused: pairing check failed", st.message

        again = await c.submit(p.scheme, p.format, p.proof, vk=p.vk, public=p.public)
        assert again.proof_id == first.proof_id and not again.duplicate
        dup = await c.submit(p.scheme, p.format, p.proof, vk=p.vk, public=p.public)
        assert dup.duplicate  # once it is a live attempt again, the usual duplicate rule holds
    workers = [start_operator(target, k, tmp_path / f"op{i}.log") for i, k in enumerate(OPERATOR_KEYS[:2])]
    try:
        await wait_all_finalized(target, [first.proof_id], timeout=60)
    finally:
        for w in workers:
            stop_process(w)
