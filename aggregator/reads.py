"""Reads: proof status, status streams, aggregations and inclusion receipts (both front ends); lists,
search and batch streams (the HTTP list API and the explorer)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

from aggregator import crypto
from aggregator.changes import Changes
from aggregator.records import (
    KIND_ATTESTED,
    KIND_RECURSIVE,
    BatchRow,
    BatchState,
    ChainInfo,
    Event,
    Inclusion,
    ProofRow,
    Status,
)
from aggregator.store import ListedProof, StoreThread
from sheaf.errors import InvalidInput, NotFound

TERMINAL = (Status.FINALIZED, Status.REJECTED, Status.FAILED)
BATCH_DONE = (BatchState.FINALIZED, BatchState.FAILED)
# the list filters' spellings (HTTP and gRPC): batch states and kinds in lower case
BATCH_STATES = (
    BatchState.PENDING,
    BatchState.SIGNED,
    BatchState.SUBMITTED,
    BatchState.FINALIZED,
    BatchState.FAILED,
)
# One spelling per value across CLI, HTTP and gRPC (tests/aggregator/test_list_spellings.py):
# proof statuses are the ProofStatus names (FINALIZED), aggregation kinds the AggregationKind names
# (ATTESTED, RECURSIVE; the store keeps them in lower case), batch states lower case (finalized).
KIND_NAMES = {KIND_ATTESTED: "ATTESTED", KIND_RECURSIVE: "RECURSIVE"}
KINDS = tuple(KIND_NAMES.values())


def kind_name(kind: str) -> str:
    """The store's kind ("attested") as every interface writes it ("ATTESTED")."""
    return KIND_NAMES[kind]


def kind_of(name: str) -> str:
    """The inverse of kind_name (a name from KINDS)."""
    return {v: k for k, v in KIND_NAMES.items()}[name]


_PROOF_ID = re.compile(r"([0-9]{1,19})-([0-9a-f]{64})")
_HASH = re.compile(r"(?:0x)?([0-9a-fA-F]{64})")
_NUMBER = re.compile(r"[0-9]{1,19}")
# pages of the list APIs (HTTP and gRPC alike): limit 1..MAX_LIMIT, cursor = the last entry's id
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
MAX_CURSOR = (1 << 63) - 1


def page_args(limit: int | None, cursor: str | None) -> tuple[int, int | None]:
    """(limit, cursor) of a list request, checked: None/0 limit = DEFAULT_LIMIT, None/"" cursor =
    the first page. Raises MALFORMED naming `limit` or `cursor`."""
    if limit is not None and limit != 0 and not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("MALFORMED", "limit", f"limit must be an integer in 1..{MAX_LIMIT}")
    if cursor and not (_NUMBER.fullmatch(cursor) and 1 <= int(cursor) <= MAX_CURSOR):
        raise InvalidInput("MALFORMED", "cursor", "cursor must be a next_cursor from a previous page")
    return limit or DEFAULT_LIMIT, int(cursor) if cursor else None


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def submitter_filter(submitter: str) -> str:
    """A list request's `submitter` filter (HTTP and gRPC alike), checked and in the stored
    (lower-case) form. Raises MALFORMED naming `submitter`."""
    if not _ADDRESS.fullmatch(submitter):
        raise InvalidInput("MALFORMED", "submitter", "submitter must be a 0x-prefixed 20-byte address")
    return submitter.lower()


def next_cursor(cursors: list[int], limit: int) -> str | None:
    """The cursor of the next page (opaque to clients), None on the last page. The store was asked
    for limit + 1 entries: the extra one only says that there is a next page."""
    return str(cursors[limit - 1]) if len(cursors) > limit else None


class Reads:
    def __init__(self, db: StoreThread, chain: ChainInfo, changes: Changes, default_domain: int) -> None:
        self.db = db
        self.chain = chain
        self.changes = changes
        self.default_domain = default_domain  # for requests that name no domain
        # how far the prover is with a batch in proving (Proving.progress; the service sets it)
        self.progress: Callable[[int], str | None] = lambda _batch_id: None

    async def proof(self, proof_id: str) -> ProofRow:
        row = await self.db.run(self.db.store.get_proof, proof_id)
        if row is None:
            raise NotFound("UNKNOWN_PROOF", "proof_id", f"no proof {proof_id!r}")
        return row

    async def batch_for(self, row: ProofRow) -> BatchRow | None:
        if row.batch_id is None:
            return None
        return await self.db.run(self.db.store.get_batch, row.batch_id)

    def batch_progress(self, b: BatchRow | None) -> str | None:
        """How far the prover is with `b` while it is being proved recursively here (a pending
        recursive batch: the explorer's "proving" stage); None otherwise or when not reported."""
        if b is None or b.kind != KIND_RECURSIVE or b.state != BatchState.PENDING:
            return None
        return self.progress(b.batch_id)

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

    # -- lists, search and streams for the HTTP list API and the explorer (issue 16) --------------

    async def list_proofs(
        self, limit: int, before: int | None = None, **filters: object
    ) -> tuple[list[ListedProof], dict[int, BatchRow]]:
        """A page of proofs (Store.list_proofs) and the batches they are in, by batch id."""
        page = await self.db.run(self.db.store.list_proofs, limit, before, **filters)
        return page, await self.batches_by_id({e.row.batch_id for e in page if e.row.batch_id is not None})

    async def batches_by_id(self, ids: set[int]) -> dict[int, BatchRow]:
        out: dict[int, BatchRow] = {}
        for i in sorted(ids):
            b = await self.db.run(self.db.store.get_batch, i)
            if b is not None:
                out[i] = b
        return out

    async def list_batches(self, limit: int, before: int | None = None, **filters: object) -> list[BatchRow]:
        return await self.db.run(self.db.store.list_batches, limit, before, **filters)

    async def batch(
        self, batch_id: int
    ) -> tuple[BatchRow, list[ProofRow], list[tuple[str, bytes | None, str]]]:
        """A batch by its batch id (failed batches have no aggregation id), its proofs in leaf
        order and its operators' signatures and refusals."""
        b = await self.db.run(self.db.store.get_batch, batch_id) if batch_id < 1 << 63 else None
        if b is None:
            raise NotFound("UNKNOWN_BATCH", "batch_id", f"no batch {batch_id}")
        rows = await self.db.run(self.db.store.batch_proofs, batch_id)
        return b, rows, await self.db.run(self.db.store.signatures, batch_id)

    async def search(self, q: str) -> tuple[list[ListedProof], list[BatchRow]]:
        """What `q` names: a proof id (`<domain>-<statement hash>`), a 32-byte hex value (a
        statement hash, vk hash, transaction hash or Merkle root) or a batch id."""
        q = q.strip()
        store = self.db.store
        if m := _PROOF_ID.fullmatch(q):
            d = int(m.group(1))
            if d >= 1 << 63:
                return [], []
            page = await self.db.run(
                store.list_proofs, 1, None, domain_id=d, statement_hash=bytes.fromhex(m.group(2))
            )
            return page, []
        if m := _HASH.fullmatch(q):
            h = bytes.fromhex(m.group(1))
            proofs = await self.db.run(store.list_proofs, 50, None, statement_hash=h)
            proofs += await self.db.run(store.list_proofs, 50, None, vk_hash=h)
            batches = await self.db.run(store.list_batches, 50, None, tx_hash=h)
            batches += await self.db.run(store.list_batches, 50, None, root=h)
            return proofs, batches
        if _NUMBER.fullmatch(q):
            b = await self.db.run(store.get_batch, int(q)) if int(q) < 1 << 63 else None
            return [], [b] if b is not None else []
        raise InvalidInput(
            "MALFORMED",
            "q",
            "search for a proof id, a 32-byte hex hash (statement, vk, tx, root) or a batch id",
        )

    async def status_times_since(
        self, since_ms: int, max_events: int, page: int = 1000
    ) -> tuple[list[tuple[Status, int]], bool]:
        """(status, ts_ms) of the status events at or after `since_ms`, newest first, read back from
        the newest a page at a time (Store.status_times) and at most `max_events` of them; and
        whether that bound cut the read short of `since_ms`. An idle system costs one short page."""
        out: list[tuple[Status, int]] = []
        before = None
        while len(out) < max_events:
            n = min(page, max_events - len(out))
            rows = await self.db.run(self.db.store.status_times, n, before)
            for _, st, ts in rows:
                if ts < since_ms:
                    return out, False
                out.append((st, ts))
            if len(rows) < n:
                return out, False
            before = rows[-1][0]
        return out, True

    async def proof_events(
        self, proof_id: str, after: int = 0, idle_s: float = 15.0
    ) -> AsyncIterator[Event | None]:
        """The proof's events after seq `after`, then live ones, until the last one is FINALIZED,
        REJECTED or FAILED (or shutdown). None every `idle_s` seconds without news (a keep-alive)."""
        await self.proof(proof_id)
        seq, idle = after, 0.0
        if after:  # resumed (Last-Event-ID): nothing newer and the last one seen was terminal -> done
            prev = await self.db.run(self.db.store.events_after, proof_id, after - 1)
            if len(prev) == 1 and prev[0].seq == after and prev[0].status in TERMINAL:
                return
        while not self.changes.closed:
            evs = await self.db.run(self.db.store.events_after, proof_id, seq)
            for e in evs:
                seq = e.seq
                yield e
            if evs:
                idle = 0.0
                if evs[-1].status in TERMINAL:  # only after it was sent: never skip one
                    return
                continue
            await self.changes.wait(1.0)
            idle += 1.0
            if idle >= idle_s:
                idle = 0.0
                yield None

    async def batch_updates(self, batch_id: int, idle_s: float = 15.0) -> AsyncIterator[BatchRow | None]:
        """The batch now, then each time its state, aggregation id, transaction or block changes,
        until it is finalized or failed (or shutdown). None every `idle_s` seconds without news."""
        b, _, _ = await self.batch(batch_id)
        yield b
        seen, idle = b, 0.0
        while seen.state not in BATCH_DONE and not self.changes.closed:
            await self.changes.wait(1.0)
            now = await self.db.run(self.db.store.get_batch, batch_id)
            assert now is not None  # batches are never deleted
            key = (now.state, now.aggregation_id, now.tx_hash, now.block_number)
            if key != (seen.state, seen.aggregation_id, seen.tx_hash, seen.block_number):
                seen, idle = now, 0.0
                yield now
                continue
            idle += 1.0
            if idle >= idle_s:
                idle = 0.0
                yield None


# -- the explorer's overview charts (issue 16) ----------------------------------------------------

# Direct verification: one transaction per proof, what an app pays without Sheaf. Transaction gas
# (21k base + calldata + execution) from anvil receipts in docs/performance.md, "Gas (bench/gas.py,
# issue 4)": gnark Groth16 and PLONK verifiers with 3 public inputs, ezkl Halo2 on the gemm_relu
# fixture slice. Other circuits cost somewhat different amounts: the overview labels its figure
# "estimated".
DIRECT_VERIFY_GAS = {"groth16": 227_530, "plonk": 296_887, "halo2": 548_229}
# The inclusion check each app still makes on the aggregated route (verifyProofAggregation, the same
# table): 5,682 execution gas for one leaf plus ~408 per Merkle level (8 / 32 / 128 leaves measured
# 6,906 / 7,722 / 8,538).
INCLUSION_CHECK_GAS = 5_682
INCLUSION_GAS_PER_LEVEL = 408


def inclusion_check_gas(leaf_count: int) -> int:
    """The measured inclusion-check execution gas for a leaf of a batch of `leaf_count` leaves."""
    return INCLUSION_CHECK_GAS + INCLUSION_GAS_PER_LEVEL * max(0, leaf_count - 1).bit_length()


def direct_gas(schemes: list[str]) -> int | None:
    """What verifying these proofs directly would cost (DIRECT_VERIFY_GAS per proof); None if a
    scheme has no measured figure."""
    if any(s not in DIRECT_VERIFY_GAS for s in schemes):
        return None
    return sum(DIRECT_VERIFY_GAS[s] for s in schemes)


def activity(
    times: list[tuple[Status, int]],
    cut: bool,
    now_ms: int,
    buckets: int,
    bucket_ms: int,
    queued_now: int,
) -> tuple[list[dict[str, int | None]], int]:
    """Per time bucket (oldest first, the last one ending at `now_ms`): proofs submitted (RECEIVED
    events), finalized (FINALIZED events) and the queue depth at the bucket's end (proofs QUEUED
    and not yet in a batch: walked back from `queued_now`, +1 per AGGREGATING event, -1 per QUEUED
    event). `times`: the status events since the first bucket's start, newest first
    (Reads.status_times_since); `cut`: the read stopped at its bound before that, so buckets that
    start before its oldest event are incomplete and have None counts. Also returns the time from
    which the counts are complete."""
    start = now_ms - buckets * bucket_ms
    complete_since = times[-1][1] if cut and times else start
    submitted, finalized = [0] * buckets, [0] * buckets
    delta = [0] * buckets  # the change in queue depth during each bucket
    for st, ts in times:
        i = (ts - start) // bucket_ms
        if not 0 <= i < buckets:
            continue
        if st == Status.RECEIVED:
            submitted[i] += 1
        elif st == Status.FINALIZED:
            finalized[i] += 1
        elif st == Status.QUEUED:
            delta[i] += 1
        elif st == Status.AGGREGATING:
            delta[i] -= 1
    out: list[dict[str, int | None]] = []
    depth = queued_now
    for i in reversed(range(buckets)):
        b0 = start + i * bucket_ms
        ok = b0 >= complete_since
        out.append(
            {
                "start_unix_ms": b0,
                "submitted": submitted[i] if ok else None,
                "finalized": finalized[i] if ok else None,
                # a proof can leave the queue in other ways (rejected when its batch fails): never < 0
                "queue_depth": max(0, depth) if ok else None,
            }
        )
        depth -= delta[i]
    out.reverse()
    return out, complete_since
