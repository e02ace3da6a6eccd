"""Posts signed batches to the registry in aggregation-id order and follows them to finality.

Each round reconciles local batches with the chain (nextAggregationId + getAggregation), which makes
restarts, dropped transactions, RPC outages and reorgs the same case:
- a local batch whose id the chain already holds with the same root is ours: it is SUBMITTED, then
  FINALIZED once `confirmations` blocks deep;
- the chain's next id belongs to the lowest unsent batch, which is (re)sent unless its last
  transaction is still pending;
- a FINALIZED batch the chain no longer has (a reorg deeper than the confirmation depth) goes back
  to SIGNED and is posted again;
- the registry only accepts id == last+1, so an id can never be posted twice, and sending strictly in
  order never skips one;
- a recursive batch whose proof the registry's verifier rejects (another circuit, no verifier) is
  abandoned like a refused one and its proofs are re-queued for attestation (PROOF_REJECTED).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from web3.exceptions import ContractLogicError

from aggregator import crashpoints, crypto
from aggregator.admission import norm_addr
from aggregator.chain import Chain, FeeCapReached, RpcError, registry_error_name
from aggregator.changes import Changes
from aggregator.ids import AggregationIds
from aggregator.metrics import Metrics
from aggregator.records import KIND_RECURSIVE, BatchRow, BatchState, Status
from aggregator.store import StoreThread
from sheaf.hashing import keccak256

log = logging.getLogger("sheaf.submitter")

PROOF_REJECTED = "PROOF_REJECTED"
# Reverts meaning "this recursive proof can never be accepted here" (registry and gnark verifier
# errors; the registry takes recursive posts only from a domain's own submitter, so a domain without
# one, or another submitter, sends the batch to attestation instead of retrying forever)
_REJECTIONS = {
    keccak256(sig.encode())[:4].hex(): sig
    for sig in (
        "ProofInvalid()",
        "CommitmentInvalid()",
        "PublicInputNotInField()",
        "VerifierNotSet()",
        "VerifierRejected(bytes4)",
        "SubmitterNotSet(uint256)",
        "NotSubmitter(uint256,address)",
    )
}


def expiry_margin(attest_ttl_s: int) -> int:
    """Seconds before its deadline an attestation is no longer posted (it could be mined after it):
    a quarter of the TTL, at least 5 s. Attesting renews a still-collecting batch at twice this."""
    return max(5, attest_ttl_s // 4)


def _signs(sig: bytes, op: str, chain_id: int, registry: str, b: BatchRow, deadline: int) -> bool:
    assert b.aggregation_id is not None
    try:
        signer = crypto.recover_aggregation_signer(
            sig, chain_id, registry, b.domain_id, b.aggregation_id, b.root, b.leaf_count, deadline
        )
    except Exception:
        return False
    return norm_addr(signer) == norm_addr(op)


def proof_rejection(e: ContractLogicError) -> str | None:
    """The verifier-side reason a recursive submission reverted, or None for any other revert."""
    data = str(getattr(e, "data", "") or "").lower().removeprefix("0x")
    if data[:8] in _REJECTIONS:
        return _REJECTIONS[data[:8]]
    if "invalid proof length" in str(e):
        return "invalid proof length"
    return None


class Ledger(Protocol):
    """What posting needs from durable state, and all it may change there."""

    async def posting(self) -> list[BatchRow]:
        """Batches ready to post or posted: SIGNED and SUBMITTED, by domain and aggregation id."""
        ...

    async def domains(self) -> list[int]:
        """Every domain that ever had a batch (a reorg may concern any of them)."""
        ...

    async def finalized_after(self, domain: int, last: int) -> list[BatchRow]:
        """FINALIZED batches of `domain` whose id is above the chain's last one (reorged away)."""
        ...

    async def move(
        self,
        batch_id: int,
        expect: Sequence[str],
        state: str,
        *,
        tx_hash: bytes | None = None,
        block_number: int | None = None,
        proof_status: Status | None = None,
    ) -> bool:
        """Compare-and-set of the batch state (Store.set_batch_state)."""
        ...

    async def abandon(self, batch_id: int, reason: str, *, reroute: Iterable[bytes] = ()) -> bool:
        """Give up a SIGNED/SUBMITTED batch: its id and later ones are released, its proofs
        re-queued (`reroute`: as attest-only)."""
        ...

    async def recursive_payload(self, batch_id: int) -> tuple[list[bytes], bytes | None]:
        """(leaves in tree order, outer proof) of a recursive batch."""
        ...

    async def signatures(self, batch_id: int) -> list[tuple[str, bytes]]:
        """(operator, signature) of the operators who signed (refusals left out)."""
        ...

    async def reopen(self, batch_id: int, drop_operators: Sequence[str]) -> bool:
        """Back to collecting signatures (Store.reopen_batch): too few of its signatures still
        count on chain; those of `drop_operators` are deleted so they are asked again."""
        ...

    async def deadline(self, batch_id: int) -> int:
        """The deadline the batch's signatures are over (Store.attest_deadline; 0: none)."""
        ...

    async def renew(self, batch_id: int, deadline: int) -> bool:
        """Back to collecting signatures under a new deadline, all signatures dropped
        (Store.renew_attestation): the old ones expire before they could be posted."""
        ...


class StoreLedger:
    """The Ledger over the aggregator's Store (calls run on its StoreThread)."""

    def __init__(self, db: StoreThread) -> None:
        self.db = db

    async def posting(self) -> list[BatchRow]:
        return await self.db.run(self.db.store.batches_in, BatchState.SIGNED, BatchState.SUBMITTED)

    async def domains(self) -> list[int]:
        return await self.db.run(self.db.store.domains)

    async def finalized_after(self, domain: int, last: int) -> list[BatchRow]:
        store = self.db.store
        if await self.db.run(store.max_aggregation, domain, BatchState.FINALIZED) <= last:
            return []
        return [
            b
            for b in await self.db.run(store.batches_in, BatchState.FINALIZED)
            if b.domain_id == domain and b.aggregation_id is not None and b.aggregation_id > last
        ]

    async def move(
        self,
        batch_id: int,
        expect: Sequence[str],
        state: str,
        *,
        tx_hash: bytes | None = None,
        block_number: int | None = None,
        proof_status: Status | None = None,
    ) -> bool:
        return await self.db.run(
            functools.partial(
                self.db.store.set_batch_state,
                batch_id,
                expect,
                state,
                tx_hash=tx_hash,
                block_number=block_number,
                proof_status=proof_status,
            )
        )

    async def abandon(self, batch_id: int, reason: str, *, reroute: Iterable[bytes] = ()) -> bool:
        return await self.db.run(
            functools.partial(
                self.db.store.fail_batch,
                batch_id,
                reason,
                (),
                (BatchState.SIGNED, BatchState.SUBMITTED),
                reroute=list(reroute),
            )
        )

    async def recursive_payload(self, batch_id: int) -> tuple[list[bytes], bytes | None]:
        store = self.db.store
        leaves = [p.statement_hash for p in await self.db.run(store.batch_proofs, batch_id)]
        return leaves, await self.db.run(store.get_agg_proof, batch_id)

    async def signatures(self, batch_id: int) -> list[tuple[str, bytes]]:
        return [(op, sig) for op, sig, _ in await self.db.run(self.db.store.signatures, batch_id) if sig]

    async def reopen(self, batch_id: int, drop_operators: Sequence[str]) -> bool:
        return await self.db.run(self.db.store.reopen_batch, batch_id, list(drop_operators))

    async def deadline(self, batch_id: int) -> int:
        return await self.db.run(self.db.store.attest_deadline, batch_id)

    async def renew(self, batch_id: int, deadline: int) -> bool:
        return await self.db.run(self.db.store.renew_attestation, batch_id, deadline)


class Submitter:
    """Posting. Moves batches on through `ledger` only, reports the registry's next id per domain
    to `ids` (the batcher and prover allocate from it), wakes the other parts through `changes` and
    stops when it closes.

    Attested batches are posted under the registry's rules, read once per round (issue 13,
    failure 3): its threshold, and which of the configured `operators` it still counts. Signatures
    of signers the registry no longer counts are left out; the first k of the rest (ascending
    signer) are posted; with fewer than k the batch goes back to the operators (RESIGN). Every
    round's view is reported to `on_chain_view(threshold, not_operators)` (Attesting follows it).
    `threshold` (the configuration's) is used only until the chain has been read.

    Attestations expire (the registry refuses them after their signed deadline): a batch whose
    deadline is less than `expiry_margin_s` away is not posted but collected again under a new
    deadline `attest_ttl_s` ahead (EXPIRED); a stale one is never sent.

    A transaction still pending `bump_after_s` after this process first saw it pending is replaced
    (same nonce, both fees raised >= 12.5%, Chain._send) and the batch follows the new hash; a
    replacement above the fee cap is not sent (FEE_CAP) and the old one keeps waiting."""

    def __init__(
        self,
        ledger: Ledger,
        ids: AggregationIds,
        changes: Changes,
        metrics: Metrics,
        chain: Chain,
        *,
        threshold: int,
        confirmations: int,
        poll_s: float,
        operators: Sequence[str] = (),
        on_chain_view: Callable[[int, set[str]], None] | None = None,
        attest_ttl_s: int = 600,
        clock: Callable[[], float] = time.time,
        bump_after_s: float = 0.0,
        publish_leaves: bool = False,
    ) -> None:
        self.ledger = ledger
        self.publish_leaves = publish_leaves  # recursive batches: leaves in calldata, or the root
        self.ids = ids
        self.changes = changes
        self.metrics = metrics
        self.chain = chain
        self.threshold = threshold
        self.confirmations = confirmations
        self.poll_s = poll_s
        self.operators = sorted({norm_addr(a) for a in operators})
        self.on_chain_view = on_chain_view
        self.attest_ttl_s = attest_ttl_s
        self.expiry_margin_s = expiry_margin(attest_ttl_s)
        self.clock = clock
        self.bump_after_s = bump_after_s  # 0: never replace a pending transaction
        self._pending_since: dict[bytes, float] = {}  # tx hash -> when first seen pending
        self._replace: set[bytes] = set()  # pending tx hashes to replace at the next send
        self._view: tuple[int, set[str]] | None = None  # (threshold, not operators), this round
        self._round_ok = False
        self.task: asyncio.Task[None] | None = None
        metrics.describe("sheaf_submit_seconds", "Time from batch creation to confirmed on chain")
        metrics.describe("sheaf_chain_failures_total", "Chain submission failures by code")
        metrics.describe("sheaf_fee_bumps_total", "Stuck posting transactions replaced with higher fees")

    @property
    def healthy(self) -> bool:
        """The last round completed and the last RPC call reached the node."""
        return self._round_ok and self.chain.ok

    def start(self) -> None:
        self.task = asyncio.create_task(self.run(), name="submitter")

    async def stop(self) -> None:
        if self.task:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def run(self) -> None:
        while not self.changes.closed:
            try:
                await self.round()
                self._round_ok = True
            except RpcError as e:
                self._round_ok = False
                self.metrics.inc("sheaf_chain_failures_total", code="RPC_UNAVAILABLE")
                log.warning("chain round: %s", e, extra={"code": "RPC_UNAVAILABLE"})
            except ContractLogicError as e:
                # the registry refused: its own error's name is the code (IsPaused,
                # UnexpectedAggregationId, ...); retried next round, the chain's view re-read
                self._round_ok = False
                code = registry_error_name(e) or "REVERTED"
                self.metrics.inc("sheaf_chain_failures_total", code=code)
                log.warning("chain round: the registry reverted with %s (%s)", code, e, extra={"code": code})
            except Exception:
                self._round_ok = False
                self.metrics.inc("sheaf_chain_failures_total", code="INTERNAL")
                log.exception("chain round failed")
            await self.changes.wait(self.poll_s)

    async def chain_view(self) -> tuple[int, set[str]]:
        """(the registry's threshold, the configured operators it does not count), once per round."""
        if self._view is None:
            threshold = await self.chain.threshold()
            gone = {op for op in self.operators if not await self.chain.is_operator(op)}
            self._view = (threshold, gone)
            if self.on_chain_view is not None and threshold > 0:
                self.on_chain_view(threshold, gone)
        return self._view

    async def round(self) -> None:
        self._view = None
        active = await self.ledger.posting()
        domains = sorted({b.domain_id for b in active} | set(await self.ledger.domains()))
        if not domains:
            return
        if self.operators:
            # every round, not only when a batch is ready: a threshold lowered on chain must reach
            # the promotion of batches still PENDING (Attesting.observe_chain, its sweep)
            await self.chain_view()
        head = await self.chain.head()
        failed: Exception | None = None
        for d in domains:
            # one domain's trouble (e.g. it was removed from the registry) must not stall the others
            try:
                await self._domain(d, head)
            except RpcError:
                raise
            except ContractLogicError as e:
                failed = e  # coded and logged in one line by run()
            except Exception as e:
                log.exception("domain %d round failed", d, extra={"domain": d})
                failed = e
        if failed is not None:
            raise failed

    async def _domain(self, d: int, head: int) -> None:
        nxt = await self.chain.next_aggregation_id(d)
        self.ids.observe(d, nxt)
        last = nxt - 1
        for b in await self.ledger.finalized_after(d, last):
            log.warning(
                "reorg: aggregation %d/%d is gone from the chain; reposting",
                d,
                b.aggregation_id,
                extra={
                    "domain": d,
                    "aggregation_id": b.aggregation_id,
                    "batch_id": b.batch_id,
                    "code": "REORGED",
                },
            )
            self.metrics.inc("sheaf_chain_failures_total", code="REORGED")
            await self.ledger.move(
                b.batch_id, [BatchState.FINALIZED], BatchState.SIGNED, proof_status=Status.AGGREGATING
            )
        batches = [b for b in await self.ledger.posting() if b.domain_id == d]
        for b in sorted(batches, key=lambda x: x.aggregation_id or 0):
            assert b.aggregation_id is not None
            if b.aggregation_id <= last:
                await self._follow(b, head)
            elif b.aggregation_id == nxt:
                if not await self._needs_send(b):
                    break
                if not await self._send(b):
                    break
                nxt = await self.chain.next_aggregation_id(d)
                last = nxt - 1
                if b.aggregation_id <= last:  # mined at once (automine)
                    await self._follow(b, await self.chain.head())
                else:
                    break
            else:
                break  # an earlier id is not signed yet: strictly in order
        self.changes.notify()

    async def _follow(self, b: BatchRow, head: int) -> None:
        assert b.aggregation_id is not None
        oc = await self.chain.get_aggregation(b.domain_id, b.aggregation_id)
        if oc is None or oc.root != b.root or oc.leaf_count != b.leaf_count:
            # The id holds someone else's aggregation: ours can never land under it.
            log.error(
                "aggregation %d/%d on chain is not batch %d; re-queueing its proofs",
                b.domain_id,
                b.aggregation_id,
                b.batch_id,
                extra={
                    "domain": b.domain_id,
                    "aggregation_id": b.aggregation_id,
                    "batch_id": b.batch_id,
                    "code": "ID_TAKEN",
                },
            )
            self.metrics.inc("sheaf_chain_failures_total", code="ID_TAKEN")
            await self.ledger.abandon(b.batch_id, "ID_TAKEN")
            return
        confs = head - oc.block_number + 1
        if confs >= self.confirmations:
            ok = await self.ledger.move(
                b.batch_id,
                [BatchState.SIGNED, BatchState.SUBMITTED],
                BatchState.FINALIZED,
                block_number=oc.block_number,
                proof_status=Status.FINALIZED,
            )
            if ok:
                crashpoints.reached("finalize")
                self.metrics.observe("sheaf_submit_seconds", time.time() - b.created_ms / 1000)
                log.info(
                    "aggregation %d/%d finalized at block %d (%d leaves)",
                    b.domain_id,
                    b.aggregation_id,
                    oc.block_number,
                    b.leaf_count,
                    extra={"domain": b.domain_id, "aggregation_id": b.aggregation_id, "batch_id": b.batch_id},
                )
        elif b.state == BatchState.SIGNED or b.block_number != oc.block_number:
            if await self.ledger.move(
                b.batch_id,
                [BatchState.SIGNED, BatchState.SUBMITTED],
                BatchState.SUBMITTED,
                block_number=oc.block_number,
                proof_status=Status.SUBMITTED,
            ):
                crashpoints.reached("post_mined")

    async def _needs_send(self, b: BatchRow) -> bool:
        if b.state != BatchState.SUBMITTED or not b.tx_hash:
            return True
        st = await self.chain.tx_state(b.tx_hash)
        if st.known and st.block_number is None:
            first = self._pending_since.setdefault(b.tx_hash, self.clock())
            if self.bump_after_s and self.clock() - first >= self.bump_after_s:
                log.warning(
                    "tx %s for aggregation %d/%d pending for %.0fs; replacing it with higher fees",
                    b.tx_hash.hex(),
                    b.domain_id,
                    b.aggregation_id,
                    self.clock() - first,
                    extra={
                        "domain": b.domain_id,
                        "aggregation_id": b.aggregation_id,
                        "batch_id": b.batch_id,
                        "tx_hash": "0x" + b.tx_hash.hex(),
                    },
                )
                self._replace.add(b.tx_hash)
                return True
            return False  # still pending
        if st.known and st.status == 1:
            return False  # mined but not visible yet; next round will see it
        if st.known and st.status == 0:
            log.warning(
                "tx %s for aggregation %d/%d reverted; resending",
                b.tx_hash.hex(),
                b.domain_id,
                b.aggregation_id,
                extra={
                    "domain": b.domain_id,
                    "aggregation_id": b.aggregation_id,
                    "batch_id": b.batch_id,
                    "tx_hash": "0x" + b.tx_hash.hex(),
                    "code": "REVERTED",
                },
            )
            self.metrics.inc("sheaf_chain_failures_total", code="REVERTED")
        else:
            log.warning(
                "tx %s for aggregation %d/%d was dropped; resending",
                b.tx_hash.hex(),
                b.domain_id,
                b.aggregation_id,
                extra={
                    "domain": b.domain_id,
                    "aggregation_id": b.aggregation_id,
                    "batch_id": b.batch_id,
                    "tx_hash": "0x" + b.tx_hash.hex(),
                    "code": "DROPPED",
                },
            )
            self.metrics.inc("sheaf_chain_failures_total", code="DROPPED")
        return True

    async def _send(self, b: BatchRow) -> bool:
        """Post `b`; False if it was not sent (abandoned, back to the operators, or a replacement
        above the fee cap)."""
        replace = b.tx_hash if b.tx_hash is not None and b.tx_hash in self._replace else None
        try:
            sent = await self._send_once(b, replace)
        except FeeCapReached as e:
            log.warning(
                "aggregation %d/%d: %s; the pending transaction keeps waiting",
                b.domain_id,
                b.aggregation_id,
                e,
                extra={
                    "domain": b.domain_id,
                    "aggregation_id": b.aggregation_id,
                    "batch_id": b.batch_id,
                    "code": "FEE_CAP",
                },
            )
            self.metrics.inc("sheaf_chain_failures_total", code="FEE_CAP")
            return False
        if replace is not None:
            self._replace.discard(replace)
            self._pending_since.pop(replace, None)
            if sent:
                self.metrics.inc("sheaf_fee_bumps_total")
        return sent

    async def _send_once(self, b: BatchRow, replace: bytes | None) -> bool:
        assert b.aggregation_id is not None
        if b.kind == KIND_RECURSIVE:
            leaves, proof = await self.ledger.recursive_payload(b.batch_id)
            assert proof is not None
            try:
                tx = await self.chain.send_recursive(
                    b.domain_id, b.aggregation_id, leaves, proof, replace, publish_leaves=self.publish_leaves
                )
            except ContractLogicError as e:
                why = proof_rejection(e)
                if why is None:
                    raise
                # The registry will never take this proof (its verifier is another circuit, or none is
                # set): retrying would stall the domain forever. The leaves are attested instead.
                log.error(
                    "aggregation %d/%d: the registry rejects the recursive proof of batch %d (%s); "
                    "its proofs go to attestation",
                    b.domain_id,
                    b.aggregation_id,
                    b.batch_id,
                    why,
                    extra={
                        "domain": b.domain_id,
                        "aggregation_id": b.aggregation_id,
                        "batch_id": b.batch_id,
                        "code": PROOF_REJECTED,
                    },
                )
                self.metrics.inc("sheaf_chain_failures_total", code=PROOF_REJECTED)
                self.metrics.inc("sheaf_recursive_failures_total", code=PROOF_REJECTED)
                await self.ledger.abandon(b.batch_id, PROOF_REJECTED, reroute=leaves)
                return False
        else:
            deadline = await self.ledger.deadline(b.batch_id)
            now = int(self.clock())
            if deadline < now + self.expiry_margin_s:
                log.warning(
                    "aggregation %d/%d: batch %d's attestation expires at %d (now %d); collecting "
                    "signatures again",
                    b.domain_id,
                    b.aggregation_id,
                    b.batch_id,
                    deadline,
                    now,
                    extra={
                        "domain": b.domain_id,
                        "aggregation_id": b.aggregation_id,
                        "batch_id": b.batch_id,
                        "code": "EXPIRED",
                    },
                )
                self.metrics.inc("sheaf_chain_failures_total", code="EXPIRED")
                await self.ledger.renew(b.batch_id, now + self.attest_ttl_s)
                self.changes.notify()
                return False
            threshold, gone = await self.chain_view()
            stored = await self.ledger.signatures(b.batch_id)
            chain_id = await self.chain.chain_id()
            # a signature over another deadline (an answer that raced a renewal) counts as gone too
            stale = {op for op, s in stored if not _signs(s, op, chain_id, self.chain.registry, b, deadline)}
            sigs = [(op, s) for op, s in stored if norm_addr(op) not in gone and op not in stale]
            dropped = [op for op, _ in stored if norm_addr(op) in gone or op in stale]
            k = threshold or self.threshold  # 0: ThresholdNotSet; the revert names it
            if len(sigs) < k:
                log.warning(
                    "aggregation %d/%d: %d of batch %d's signatures still count on chain (%s dropped), "
                    "the registry wants %d; back to the operators",
                    b.domain_id,
                    b.aggregation_id,
                    len(sigs),
                    b.batch_id,
                    ",".join(dropped) or "none",
                    k,
                    extra={
                        "domain": b.domain_id,
                        "aggregation_id": b.aggregation_id,
                        "batch_id": b.batch_id,
                        "code": "RESIGN",
                    },
                )
                self.metrics.inc("sheaf_chain_failures_total", code="RESIGN")
                await self.ledger.reopen(b.batch_id, dropped)
                return False
            # The registry wants signers in strictly ascending address order; take the first k.
            sigs.sort(key=lambda x: int(x[0], 16))
            chosen = [s for _, s in sigs[:k]]
            tx = await self.chain.send_attested(
                b.domain_id, b.aggregation_id, b.root, b.leaf_count, deadline, chosen, replace
            )
        if await self.ledger.move(
            b.batch_id,
            [BatchState.SIGNED, BatchState.SUBMITTED],
            BatchState.SUBMITTED,
            tx_hash=tx,
            proof_status=Status.SUBMITTED,
        ):
            crashpoints.reached("post_sent")
        return True
