"""The aggregator's engine: ingest with group commit, batching, attestation collection, status streams.

Transport-free (the gRPC and HTTP layers call into it). Every store call runs on one thread, so SQLite
sees a single writer; submissions wait in a queue and are committed in groups, each acked only after
its group's COMMIT (one fsync for many submissions).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from aggregator import crypto
from aggregator.config import Config
from aggregator.metrics import SIZE_BUCKETS, Metrics
from aggregator.store import (
    KIND_ATTESTED,
    KIND_RECURSIVE,
    BatchRow,
    BatchState,
    Event,
    InsertResult,
    NewProof,
    ProofRow,
    Status,
    Store,
)
from aggregator.verify import InputError, Item, ProofVerifier, recover_refusal, recover_submitter

log = logging.getLogger("sheaf.aggregator")
T = TypeVar("T")


class NotFound(Exception):
    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code, self.field, self.message = code, field, message


class Exhausted(Exception):
    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code, self.field, self.message = code, field, message


class Unauthenticated(Exception):
    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code, self.field, self.message = code, field, message


@dataclass(frozen=True)
class ChainInfo:
    chain_id: int
    registry: str  # checksummed address


@dataclass(frozen=True)
class Submission:
    scheme: str
    format: str
    proof: bytes
    vk: bytes | None
    vk_hash: bytes | None
    public: bytes | None
    settings: bytes | None
    domain_id: int = 0
    prover: str = ""
    signature: bytes = b""
    nonce: int = 0


@dataclass(frozen=True)
class SubmitResult:
    proof_id: str
    statement_hash: bytes
    duplicate: bool
    status: Status


@dataclass(frozen=True)
class Inclusion:
    proof_id: str
    domain_id: int
    aggregation_id: int
    kind: str
    root: bytes
    leaf: bytes
    path: list[bytes]
    leaf_count: int
    index: int
    tx_hash: bytes
    block_number: int


@dataclass(frozen=True)
class ProveJob:
    """A recursive aggregation job: prove that `leaves` (statement hashes) are all valid proofs.

    `aggregation_id` is None while proving: the outer proof binds (root, leaf count) only, so the
    batch takes the domain's next id when its proof is stored (Store.finish_proving)."""

    batch_id: int
    domain_id: int
    aggregation_id: int | None
    leaves: list[bytes]
    items: list[Item]


class ProverError(Exception):
    """A recursive proving failure with a stable code (see docs/operations.md). `bad_leaves` are the
    indexes of leaves the circuit cannot take: those go to attestation, the rest back to the queue;
    without bad leaves the whole batch goes to attestation (the prover gave up after its retries)."""

    def __init__(self, code: str, message: str, *, bad_leaves: Sequence[int] = ()) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.bad_leaves = code, message, tuple(bad_leaves)


class BatchProver(Protocol):
    """Long-running recursive prover (aggregator.recursion.RecursiveProver). Must be restartable: the
    aggregator calls prove() again for a persisted batch after a restart; the result is bytes for
    submitRecursiveAggregation. Raises ProverError once it gives up on a job."""

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


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> bool:
        now = time.monotonic()
        tokens, last = self.tokens.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self.tokens[key] = (tokens, now)
            return False
        self.tokens[key] = (tokens - 1.0, now)
        return True


def _norm_addr(a: str) -> str:
    return a.lower()


class Db:
    """All store calls on one thread (SQLite single writer, no cross-thread connection use)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="sheaf-db")

    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(fn, *args, **kw))

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.store.close()


class Core:
    def __init__(
        self,
        cfg: Config,
        store: Store,
        verifier: ProofVerifier,
        chain: ChainInfo,
        metrics: Metrics | None = None,
        prover: BatchProver | None = None,
    ) -> None:
        self.cfg = cfg
        self.db = Db(store)
        self.verifier = verifier
        self.chain = chain
        self.metrics = metrics or Metrics()
        self.prover = prover
        self.operators = {_norm_addr(a) for a in cfg.operators}
        self.allow = {_norm_addr(a) for a in cfg.allowlist}
        self.bucket = TokenBucket(cfg.rate_per_s, cfg.burst)
        self._queue: asyncio.Queue[tuple[NewProof, asyncio.Future[InsertResult]]] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._proving: dict[int, asyncio.Task[None]] = {}
        self.stopping = False
        self.accepting = True
        # domain -> registry's nextAggregationId, kept fresh by the submitter
        self.chain_next: dict[int, int] = {}
        self.chain_reader: Callable[[int], Awaitable[int]] | None = None
        self._queue_depth: dict[tuple[tuple[str, str], ...], float] = {}
        m = self.metrics
        m.describe("sheaf_submissions_total", "Submissions by result (accepted, duplicate, rejected)")
        m.describe("sheaf_rejections_total", "Rejected submissions by error code")
        m.describe("sheaf_verify_seconds", "Proof verification latency")
        m.describe("sheaf_ack_seconds", "Submission latency until durable ack")
        m.describe("sheaf_batch_size", "Leaves per created batch")
        m.describe("sheaf_submit_seconds", "Time from batch creation to confirmed on chain")
        m.describe("sheaf_chain_failures_total", "Chain submission failures by code")
        m.describe("sheaf_proofs", "Proofs by status")
        m.gauge("sheaf_proofs", lambda: dict(self._queue_depth))
        m.describe("sheaf_routed_total", "Accepted proofs by aggregation path (recursive, attested)")
        if prover is not None:
            m.describe(
                "sheaf_recursive_inflight", "Recursive batches being proved (or waiting for the worker)"
            )
            m.gauge("sheaf_recursive_inflight", lambda: {(): float(len(self._proving))})
            m.describe("sheaf_recursive_failures_total", "Recursive proving failures by code")
            m.describe(
                "sheaf_recursive_batches_total",
                "Recursive batches by outcome (proved; failed: leaves re-queued, unfit ones attest-only)",
            )

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._writer(), name="writer"),
            asyncio.create_task(self._batcher(), name="batcher"),
            asyncio.create_task(self._gauges(), name="gauges"),
        ]

    async def stop(self) -> None:
        """Drain: stop taking submissions, commit what is queued, then stop the loops."""
        self.accepting = False
        while not self._queue.empty():
            await asyncio.sleep(0.01)
        self.stopping = True
        self.notify()
        for t in [*self._tasks, *self._proving.values()]:
            t.cancel()
        await asyncio.gather(*self._tasks, *self._proving.values(), return_exceptions=True)
        self.db.close()

    def notify(self) -> None:
        ev, self._changed = self._changed, asyncio.Event()
        ev.set()

    async def wait_change(self, timeout: float) -> None:
        ev = self._changed
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except TimeoutError:
            pass

    # -- keys and submissions ---------------------------------------------------------------------

    async def register_vk(self, scheme: str, fmt: str, vk: bytes, settings: bytes | None) -> bytes:
        self._check_size(len(vk) + len(settings or b""), "vk")
        h = await self.verifier.vk_hash(scheme, fmt, vk, settings)
        await self.db.run(self.db.store.put_vk, h, scheme, fmt, vk, settings)
        return h

    def _check_size(self, n: int, field: str) -> None:
        if n > self.cfg.max_message_bytes:
            raise Exhausted("TOO_LARGE", field, f"{field} is {n} bytes, limit {self.cfg.max_message_bytes}")

    def _reject(self, code: str) -> None:
        self.metrics.inc("sheaf_submissions_total", result="rejected")
        self.metrics.inc("sheaf_rejections_total", code=code)

    async def submit(self, s: Submission) -> SubmitResult:
        t0 = time.perf_counter()
        try:
            return await self._submit(s, t0)
        except (InputError, NotFound, Exhausted, Unauthenticated) as e:
            self._reject(e.code)
            raise

    async def _submit(self, s: Submission, t0: float) -> SubmitResult:
        if not self.accepting:
            raise Exhausted("SHUTTING_DOWN", "service", "the aggregator is shutting down")
        prover = _norm_addr(s.prover) if s.prover else ""
        if self.cfg.require_auth and not (prover and s.signature):
            raise Unauthenticated("AUTH_REQUIRED", "auth", "prover authentication is required")
        if prover:
            if self.allow and prover not in self.allow:
                raise Unauthenticated(
                    "PROVER_NOT_ALLOWED", "auth.prover", f"{s.prover} is not on the allowlist"
                )
            # Before verification: rate limits must protect the expensive part.
            if not self.bucket.take(prover):
                raise Exhausted("RATE_LIMITED", "auth.prover", f"rate limit for {s.prover} exceeded")
            if await self.db.run(self.db.store.queued_count, prover) >= self.cfg.max_queued_per_prover:
                raise Exhausted("QUEUE_QUOTA", "auth.prover", f"queue quota for {s.prover} exceeded")
        if s.vk is None and s.vk_hash is None:
            raise InputError("MISSING_VK", "vk", "either vk or vk_hash is required")
        vk, settings, fmt = s.vk, s.settings, s.format
        if vk is None:
            assert s.vk_hash is not None
            if len(s.vk_hash) != 32:
                raise InputError("BAD_VK_HASH", "vk_hash", f"vk_hash must be 32 bytes, got {len(s.vk_hash)}")
            row = await self.db.run(self.db.store.get_vk, s.vk_hash)
            if row is None:
                raise NotFound("UNKNOWN_VK", "vk_hash", f"no verifying key registered as 0x{s.vk_hash.hex()}")
            scheme_, fmt_, vk, settings_ = row
            if scheme_ != s.scheme:
                raise InputError(
                    "VK_SCHEME_MISMATCH", "scheme", f"vk_hash names a {scheme_} key, not {s.scheme}"
                )
            fmt = fmt or fmt_
            settings = settings if settings else settings_
        domain = s.domain_id or self.cfg.default_domain
        if self.cfg.domains and domain not in self.cfg.domains:
            raise InputError(
                "UNKNOWN_DOMAIN", "domain_id", f"domain {domain} is not served here ({self.cfg.domains})"
            )
        item = Item(s.scheme, fmt, s.proof, vk, s.public, settings)
        tv = time.perf_counter()
        v = await self.verifier.verify(item)
        self.metrics.observe("sheaf_verify_seconds", time.perf_counter() - tv, scheme=s.scheme)
        if s.vk_hash is not None and v.vk_hash != s.vk_hash:
            raise InputError("VK_HASH_MISMATCH", "vk_hash", "stored key hashes differently")
        if prover:
            try:
                signer = _norm_addr(recover_submitter(s.signature, v.statement_hash, s.nonce, domain))
            except Exception as e:
                raise Unauthenticated("BAD_SIGNATURE", "auth.signature", f"cannot recover signer: {e}") from e
            if signer != prover:
                raise Unauthenticated(
                    "BAD_SIGNATURE", "auth.signature", f"signed by {signer}, not {s.prover}"
                )
            if not await self.db.run(self.db.store.check_and_bump_nonce, prover, s.nonce):
                raise Unauthenticated("STALE_NONCE", "auth.nonce", f"nonce {s.nonce} was already used")
        # Recursive only if a prover runs and its circuit covers it (Groth16 without commitment,
        # exactly P public inputs); without one every proof shares the attested batches: splitting
        # them would pay a second submission and wait max_wait_ms for two half-empty batches.
        fits = self.prover is not None and self.prover.accepts(v.scheme, v.n_public)
        kind = KIND_RECURSIVE if v.recursion_eligible and fits else KIND_ATTESTED
        new = NewProof(
            domain,
            v.statement_hash,
            v.vk_hash,
            kind,
            s.scheme,
            fmt,
            s.proof,
            vk,
            s.public,
            settings,
            prover or None,
        )
        fut: asyncio.Future[InsertResult] = asyncio.get_running_loop().create_future()
        await self._queue.put((new, fut))
        res = await fut
        self.metrics.observe("sheaf_ack_seconds", time.perf_counter() - t0, scheme=s.scheme)
        self.metrics.inc("sheaf_submissions_total", result="duplicate" if res.duplicate else "accepted")
        if not res.duplicate:
            recursive = kind == KIND_RECURSIVE and self.prover is not None
            self.metrics.inc("sheaf_routed_total", kind=KIND_RECURSIVE if recursive else KIND_ATTESTED)
        return SubmitResult(res.proof_id, v.statement_hash, res.duplicate, res.status)

    async def _writer(self) -> None:
        while True:
            first = await self._queue.get()
            group = [first]
            while len(group) < self.cfg.commit_group_max and not self._queue.empty():
                group.append(self._queue.get_nowait())
            try:
                results = await self.db.run(self.db.store.insert_proofs, [p for p, _ in group])
            except Exception as e:
                log.exception("commit of %d submissions failed", len(group))
                for _, f in group:
                    if not f.done():
                        f.set_exception(e)
                continue
            for (_, f), r in zip(group, results, strict=True):
                if not f.done():
                    f.set_result(r)
            self.notify()

    # -- reads ------------------------------------------------------------------------------------

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
        await self.proof(proof_id)
        seq = 0
        while not self.stopping:
            evs = await self.db.run(self.db.store.events_after, proof_id, seq)
            for e in evs:
                seq = e.seq
                yield e
            if evs and evs[-1].status in (Status.REJECTED, Status.FAILED):
                return
            if not evs:
                await self.wait_change(1.0)

    async def aggregation(self, domain_id: int, aggregation_id: int) -> tuple[BatchRow, list[ProofRow]]:
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

    # -- batching ---------------------------------------------------------------------------------

    async def _chain_next(self, domain: int) -> int:
        """The registry's next aggregation id for the domain (cached; the submitter refreshes it).
        Without a chain reader, or while the node is down, the local sequence alone decides."""
        if domain not in self.chain_next and self.chain_reader is not None:
            try:
                self.chain_next[domain] = await self.chain_reader(domain)
            except Exception as e:
                log.warning("cannot read next aggregation id of domain %d: %s", domain, e)
        return self.chain_next.get(domain, 1)

    async def _batcher(self) -> None:
        # Batches persisted before a crash that still need a recursive proof get their job again;
        # with recursion now off, their proofs are attested instead of waiting forever.
        for b in await self.db.run(self.db.store.batches_in, BatchState.PENDING):
            if b.kind != KIND_RECURSIVE:
                continue
            if self.prover is not None:
                self._start_proving(b)
                continue
            leaves = [r.statement_hash for r in await self.db.run(self.db.store.batch_proofs, b.batch_id)]
            log.warning("recursive batch %d was waiting for a proof; recursion is off: attesting", b.batch_id)
            await self.db.run(
                functools.partial(self.db.store.fail_batch, b.batch_id, "RECURSION_OFF", reroute=leaves)
            )
        while not self.stopping:
            try:
                made = await self.make_batches()
            except Exception:
                log.exception("batcher round failed")
                made = 0
            if not made:
                await asyncio.sleep(self.cfg.batch_tick_ms / 1000)

    async def make_batches(self, force: bool = False) -> int:
        made = 0
        now = int(time.time() * 1000)
        for domain, kind, count, oldest in await self.db.run(self.db.store.queued_groups):
            limit, wait = self.cfg.max_leaves, self.cfg.max_wait_ms
            recursive = kind == KIND_RECURSIVE and self.prover is not None
            if recursive:
                assert self.prover is not None
                # One outer proof at a time (one worker): later proofs wait QUEUED, so no batch
                # holds leaves it cannot prove yet. At most N leaves; a partial batch costs a full
                # proof, so it waits longer (recursion.max_wait_ms) to fill.
                if self._proving:
                    continue
                limit = min(limit, self.prover.max_leaves)
                wait = self.cfg.recursion.max_wait_ms
            if not force and count < limit and now - oldest < wait:
                continue
            if recursive:
                assert self.prover is not None
                # typed slots: look past the first N candidates for the kinds the batch still lacks
                candidates = await self.db.run(self.db.store.take_queued, domain, kind, 8 * limit)
                rows = self.prover.select(candidates)
            else:
                rows = await self.db.run(self.db.store.take_queued, domain, kind, limit)
            if not rows:
                continue
            root = crypto.merkle_root([r.statement_hash for r in rows])
            agg_kind = KIND_RECURSIVE if recursive else KIND_ATTESTED
            floor = await self._chain_next(domain)
            b = await self.db.run(
                functools.partial(
                    self.db.store.create_batch,
                    domain,
                    agg_kind,
                    [r.proof_id for r in rows],
                    root,
                    floor,
                    defer_id=recursive,
                )
            )
            self.metrics.observe("sheaf_batch_size", len(rows), SIZE_BUCKETS, kind=agg_kind)
            log.info(
                "batch %d: domain %d aggregation %s, %d leaves, root %s",
                b.batch_id,
                domain,
                b.aggregation_id,
                len(rows),
                root.hex(),
            )
            if agg_kind == KIND_RECURSIVE:
                self._start_proving(b)
            made += 1
        if made:
            self.notify()
        return made

    def _start_proving(self, b: BatchRow) -> None:
        if b.batch_id in self._proving or self.prover is None:
            return
        self._proving[b.batch_id] = asyncio.create_task(self._prove(b))

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
                [Item(r.scheme, r.format, r.proof, r.vk, r.public, r.settings) for r in rows],
            )
            try:
                proof = await self.prover.prove(job)
            except ProverError as e:  # the prover counted it in sheaf_recursive_failures_total
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
            floor = await self._chain_next(b.domain_id)
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
            self._proving.pop(b.batch_id, None)
            self.notify()

    # -- operators --------------------------------------------------------------------------------

    def check_operator(self, operator: str) -> str:
        op = _norm_addr(operator)
        if op not in self.operators:
            raise Unauthenticated("NOT_OPERATOR", "operator", f"{operator} is not in the operator set")
        return op

    async def fetch_task(self, operator: str, wait_s: float) -> tuple[BatchRow, list[ProofRow]] | None:
        op = self.check_operator(operator)
        deadline = time.monotonic() + wait_s
        while not self.stopping:
            for b in await self.db.run(self.db.store.batches_in, BatchState.PENDING):
                if b.kind != KIND_ATTESTED:
                    continue
                done = {o for o, _, _ in await self.db.run(self.db.store.signatures, b.batch_id)}
                if op not in done:
                    return b, await self.db.run(self.db.store.batch_proofs, b.batch_id)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await self.wait_change(min(left, 1.0))
        return None

    async def attest(
        self, operator: str, batch_id: int, root: bytes, signature: bytes, refusal: str, bad: Sequence[bytes]
    ) -> tuple[bool, int]:
        op = self.check_operator(operator)
        b = await self.db.run(self.db.store.get_batch, batch_id)
        if b is None:
            raise NotFound("UNKNOWN_BATCH", "batch_id", f"no batch {batch_id}")
        if b.state != BatchState.PENDING or b.aggregation_id is None:
            return False, await self._valid_sigs(b)
        store = self.db.store
        if refusal:
            try:
                refuser = _norm_addr(recover_refusal(signature, batch_id, refusal, bad))
            except Exception as e:
                raise InputError(
                    "BAD_SIGNATURE", "signature", f"cannot recover the refusal signer: {e}"
                ) from e
            if refuser != op:
                raise InputError("BAD_SIGNATURE", "signature", f"refusal is signed by {refuser}, not {op}")
            log.warning("operator %s refused batch %d: %s", op, batch_id, refusal)
            await self.db.run(store.add_signature, batch_id, op, None, refusal)
            refusals = [s for s in await self.db.run(store.signatures, batch_id) if s[1] is None]
            if len(refusals) > len(self.operators) - self.cfg.threshold:
                await self.db.run(store.fail_batch, batch_id, refusal, list(bad))
                self.notify()
            return True, await self._valid_sigs(b)
        if root != b.root:
            raise InputError("ROOT_MISMATCH", "root", "the operator's root differs from the batch root")
        try:
            signer = _norm_addr(
                crypto.recover_aggregation_signer(
                    signature,
                    self.chain.chain_id,
                    self.chain.registry,
                    b.domain_id,
                    b.aggregation_id,
                    b.root,
                    b.leaf_count,
                )
            )
        except Exception as e:
            raise InputError("BAD_SIGNATURE", "signature", f"cannot recover the signer: {e}") from e
        if signer != op:
            raise InputError("BAD_SIGNATURE", "signature", f"signature is by {signer}, not {op}")
        await self.db.run(store.add_signature, batch_id, op, signature, "")
        n = await self._valid_sigs(b)
        if n >= self.cfg.threshold:
            if await self.db.run(store.set_batch_state, batch_id, [BatchState.PENDING], BatchState.SIGNED):
                log.info("batch %d signed by %d operators", batch_id, n)
            self.notify()
        return True, n

    async def _valid_sigs(self, b: BatchRow) -> int:
        return sum(1 for _, s, _ in await self.db.run(self.db.store.signatures, b.batch_id) if s)

    async def _gauges(self) -> None:
        while not self.stopping:
            try:
                counts = await self.db.run(self.db.store.count_by_status)
                self._queue_depth = {(("status", s.name),): float(counts.get(s, 0)) for s in Status}
            except Exception:
                log.exception("gauge refresh failed")
            await asyncio.sleep(1.0)
