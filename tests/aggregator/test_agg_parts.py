"""The service's parts through their own interfaces, on a real SQLite store (no servers, no chain):
the id floor the submitter reports reaches the batcher, batches reach the operators' queue, and
the parts wake each other through `Changes`."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from eth_account import Account
from web3.exceptions import ContractLogicError

from aggregator import crypto
from aggregator.admission import ProofVerifier
from aggregator.cli import build_parser
from aggregator.config import Config
from aggregator.records import KIND_ATTESTED, BatchState, ChainInfo, NewProof, Status
from aggregator.server import SCHEME_ENUM
from aggregator.service import Service
from aggregator.store import SqliteStore
from aggregator.submitter import StoreLedger, proof_rejection
from sheaf.errors import PERMISSION_DENIED, SheafError, status_of
from sheaf.hashing import keccak256
from sheaf.schemes import PRODUCER_NAMES, SCHEME_NAMES, Scheme
from sheaf.v1 import envelope_pb2

OPERATOR = Account.create()
REGISTRY = "0x" + "ab" * 20


def _p(i: int) -> NewProof:
    st = keccak256(b"stmt" + i.to_bytes(4, "big"))
    return NewProof(1, st, b"\x11" * 32, KIND_ATTESTED, "groth16", "snarkjs", b"p", b"vk", b"[]", None)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    cfg = Config(
        db_path=str(tmp_path / "agg.db"),
        operators=[OPERATOR.address],
        threshold=1,
        max_leaves=4,
        max_wait_ms=3_600_000,  # nothing is batched unless the test forces it
    )
    # ProofVerifier is built but never called here (proofs go straight into the store)
    svc = Service(cfg, SqliteStore(cfg.db_path), ProofVerifier(object()), ChainInfo(31337, REGISTRY))
    yield svc
    await svc.stop()


async def test_batcher_allocates_from_the_floor_the_submitter_observed(service: Service) -> None:
    db = service.db
    await db.run(db.store.insert_proofs, [_p(i) for i in range(3)])
    service.ids.observe(1, 7)  # what Submitter does after reading the registry
    waiter = asyncio.create_task(service.changes.wait(10.0))
    await asyncio.sleep(0)
    assert await service.batcher.make_batches(force=True) == 1
    await asyncio.wait_for(waiter, 1.0)  # the batcher woke the other parts
    (b,) = await db.run(db.store.batches_in, BatchState.PENDING)
    assert (b.aggregation_id, b.leaf_count, b.kind) == (7, 3, KIND_ATTESTED)
    rows = await db.run(db.store.batch_proofs, b.batch_id)
    assert b.root == crypto.merkle_root([r.statement_hash for r in rows])
    assert {r.status for r in rows} == {Status.AGGREGATING}


async def test_attesting_serves_batches_to_operators_only(service: Service) -> None:
    db = service.db
    await db.run(db.store.insert_proofs, [_p(i) for i in range(2)])
    await service.batcher.make_batches(force=True)
    got = await service.attesting.fetch_task(OPERATOR.address.lower(), 0.0)
    assert got is not None
    b, rows, deadline = got
    assert b.aggregation_id is not None
    assert [r.input.proof for r in rows] == [b"p", b"p"]  # what the operator re-verifies
    sig = crypto.sign_aggregation(
        OPERATOR.key.hex(), 31337, REGISTRY, b.domain_id, b.aggregation_id, b.root, b.leaf_count, deadline
    )
    assert await service.attesting.attest(OPERATOR.address, b.batch_id, b.root, sig, "", []) == (True, 1)
    assert (await db.run(db.store.get_batch, b.batch_id)).state == BatchState.SIGNED  # type: ignore[union-attr]
    assert await service.attesting.fetch_task(OPERATOR.address, 0.0) is None  # nothing left to sign
    with pytest.raises(SheafError) as ei:
        await service.attesting.fetch_task(Account.create().address, 0.0)
    assert ei.value.code == "NOT_OPERATOR" and status_of(ei.value) == PERMISSION_DENIED


async def test_reads_wait_for_changes_and_stop(service: Service) -> None:
    db = service.db
    (r,) = await db.run(db.store.insert_proofs, [_p(1)])
    seen: list[Status] = []

    async def watch() -> None:
        async for e in service.reads.watch(r.proof_id):
            seen.append(e.status)

    t = asyncio.create_task(watch())
    await asyncio.sleep(0.2)
    assert seen == [Status.RECEIVED, Status.VALID, Status.QUEUED]
    await service.batcher.make_batches(force=True)
    await asyncio.sleep(0.2)
    assert seen[-1] == Status.AGGREGATING
    service.changes.close()  # the stop flag ends every watcher
    await asyncio.wait_for(t, 2.0)


async def test_ledger_is_what_posting_sees_and_changes(service: Service) -> None:
    """The submitter's whole view of the store: SIGNED batches to post, signatures without
    refusals, finality, reorgs and abandoning a batch (its proofs re-queued)."""
    db, ledger = service.db, StoreLedger(service.db)
    await db.run(db.store.insert_proofs, [_p(i) for i in range(2)])
    await service.batcher.make_batches(force=True)
    (b,) = await db.run(db.store.batches_in, BatchState.PENDING)
    assert await ledger.posting() == []  # not signed yet
    await db.run(db.store.add_signature, b.batch_id, "0xbb", b"sig")
    await db.run(db.store.add_signature, b.batch_id, "0xaa", None, "VERIFICATION_FAILED")
    assert await db.run(db.store.set_batch_state, b.batch_id, [BatchState.PENDING], BatchState.SIGNED)
    assert [x.batch_id for x in await ledger.posting()] == [b.batch_id]
    assert await ledger.signatures(b.batch_id) == [("0xbb", b"sig")]
    assert await ledger.domains() == [1]
    assert await ledger.move(
        b.batch_id, [BatchState.SIGNED], BatchState.FINALIZED, block_number=5, proof_status=Status.FINALIZED
    )
    assert await ledger.finalized_after(1, 1) == []  # the chain has it
    (gone,) = await ledger.finalized_after(1, 0)  # the chain lost it (reorg)
    assert gone.batch_id == b.batch_id and gone.block_number == 5
    assert await ledger.move(b.batch_id, [BatchState.FINALIZED], BatchState.SIGNED)
    assert await ledger.abandon(b.batch_id, "ID_TAKEN")
    assert await ledger.posting() == []
    rows = await db.run(db.store.take_queued, 1, KIND_ATTESTED, 10)
    assert len(rows) == 2  # back in the queue for the next batch


def test_front_ends_take_the_one_scheme_list() -> None:
    """server.py's proto numbers and the CLI's choices come from sheaf.schemes: a scheme added
    there shows up in both (and matches the proto enum)."""
    assert SCHEME_ENUM == {s.label: envelope_pb2.Scheme.Value(s.name) for s in Scheme}
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    submit = sub.choices["submit"]
    choices = {a.dest: a.choices for a in submit._actions if a.choices}
    assert list(choices["scheme"]) == list(SCHEME_NAMES)
    assert list(choices["format"]) == list(PRODUCER_NAMES)


@pytest.mark.parametrize(
    ("sig", "args"),
    [
        ("SubmitterNotSet(uint256)", (7).to_bytes(32, "big")),
        ("NotSubmitter(uint256,address)", (7).to_bytes(32, "big") + bytes(12) + b"\x11" * 20),
        ("ProofInvalid()", b""),
    ],
)
def test_recursive_posts_the_registry_can_never_take_are_rejections(sig: str, args: bytes) -> None:
    data = "0x" + (keccak256(sig.encode())[:4] + args).hex()
    assert proof_rejection(ContractLogicError("execution reverted", data=data)) == sig


def test_other_reverts_are_not_rejections() -> None:
    data = "0x" + keccak256(b"UnexpectedAggregationId(uint256,uint256,uint256)")[:4].hex() + "00" * 96
    assert proof_rejection(ContractLogicError("execution reverted", data=data)) is None
