"""Attesting: the aggregator's side of the operators' k-of-n signatures (the Operator service).

An operator long-polls for a PENDING attested batch it has not answered (`fetch_task`), re-verifies
it and answers with an EIP-712 signature over (chain, registry, domain, aggregation id, root, leaf
count, deadline) or an EIP-712 refusal in the same domain (`attest`). The deadline is set when the
batch is first handed out, `attest_ttl_s` ahead; a batch still collecting when less than twice the
poster's expiry margin is left is renewed (new deadline, signatures dropped) before it is handed
out again, so operators never sign an attestation that would expire before it can be posted.
k valid signatures move the batch to SIGNED (ready to post), in the same store transaction as the
k-th signature; a sweep (startup, every second) promotes any
PENDING batch already holding k. More than n - k refusals fail it (its good proofs are re-queued).
The signatures themselves are aggregator.attestation's (also used by contracts' tests and bench).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence

from eth_utils.address import to_checksum_address

from aggregator import crashpoints, crypto
from aggregator.admission import norm_addr
from aggregator.attestation import Aggregation, recover_refusal
from aggregator.changes import Changes
from aggregator.config import Config
from aggregator.records import KIND_ATTESTED, BatchRow, BatchState, ChainInfo, ProofRow
from aggregator.store import StoreThread
from aggregator.submitter import expiry_margin
from sheaf.errors import InvalidInput, NotFound, Unauthenticated
from sheaf.paths import default_srs
from sheaf.srs_id import SrsError, mismatch, srs_id

log = logging.getLogger("sheaf.aggregator")


def refusal_cause(operator: str, message: str) -> str:
    """The FAILED status message of a refused proof: who refused and the operator's own words (its
    check's cause, e.g. which pairing failed), bounded and printable: it reaches clients verbatim."""
    words = "".join(ch if ch.isprintable() else " " for ch in message[:300]).strip()
    return f"operator {to_checksum_address(operator)} refused" + (f": {words}" if words else "")


class Attesting:
    def __init__(
        self,
        cfg: Config,
        db: StoreThread,
        chain: ChainInfo,
        changes: Changes,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.threshold = cfg.threshold
        self.attest_ttl_s = cfg.attest_ttl_s
        self.clock = clock
        self.operators = {norm_addr(a) for a in cfg.operators}
        self.counted = set(self.operators)  # the operators whose signatures count (observe_chain)
        self.db = db
        self.chain = chain
        self.changes = changes
        self.srs_id = _own_srs_id(cfg)  # operators must verify Halo2 with the same SRS (issue 13)

    def check_operator(self, operator: str) -> str:
        op = norm_addr(operator)
        if op not in self.operators:
            raise Unauthenticated("NOT_OPERATOR", "operator", f"{operator} is not in the operator set")
        return op

    def check_srs(self, operator: str, operator_srs_id: str) -> None:
        """SRS_MISMATCH (FAILED_PRECONDITION) when the operator's SRS id (FetchBatchRequest.srs_id)
        is not this aggregator's: it would refuse every Halo2 batch. Unchecked without an SRS here."""
        op = self.check_operator(operator)
        if self.srs_id and operator_srs_id != self.srs_id:
            log.warning(
                "operator %s uses SRS %s, this aggregator %s", op, operator_srs_id or "none", self.srs_id
            )
            raise mismatch(
                self.srs_id,
                "the aggregator",
                operator_srs_id,
                f"operator {op}",
                "Start the operator with `--srs` set to the aggregator's SRS file or a k=1 cut of it "
                "(`python -m provers.srs cut SRS OUT`; `python -m provers.srs id FILE` prints a file's id).",
            )

    async def deadline(self, batch_id: int) -> int:
        """The batch's deadline, set (or renewed, dropping its signatures) when it is missing or
        too close to post in time."""
        now = int(self.clock())
        return await self.db.run(
            self.db.store.ensure_attest_deadline,
            batch_id,
            now + self.attest_ttl_s,
            now + 2 * expiry_margin(self.attest_ttl_s),
        )

    async def fetch_task(self, operator: str, wait_s: float) -> tuple[BatchRow, list[ProofRow], int] | None:
        """The oldest PENDING attested batch `operator` has not answered, with its deadline, waiting
        up to wait_s."""
        op = self.check_operator(operator)
        store = self.db.store
        deadline = time.monotonic() + wait_s
        while not self.changes.closed:
            # An operator still configured here but no longer counted by the registry (removed on
            # chain) gets nothing to sign: its signature would be dropped at posting anyway. It keeps
            # polling, so it is back at work as soon as the registry counts it again.
            pending = await self.db.run(store.batches_in, BatchState.PENDING) if op in self.counted else []
            for b in pending:
                if b.kind != KIND_ATTESTED:
                    continue
                done = {o for o, _, _ in await self.db.run(store.signatures, b.batch_id)}
                if op not in done:
                    deadline = await self.deadline(b.batch_id)  # a write: only for a batch handed out
                    return b, await self.db.run(store.batch_proofs, b.batch_id), deadline
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            await self.changes.wait(min(left, 1.0))
        return None

    async def attest(
        self,
        operator: str,
        batch_id: int,
        root: bytes,
        signature: bytes,
        refusal: str,
        bad: Sequence[bytes],
        refusal_message: str = "",  # the operator's words (logged: the cause of a refusal)
        deadline: int = 0,  # the task's deadline the operator answered (0: an operator from before)
    ) -> tuple[bool, int]:
        """(accepted, valid signatures so far). A batch no longer PENDING, or renewed since the
        operator fetched it (another deadline), is not an error: the answer comes too late and is
        not recorded."""
        op = self.check_operator(operator)
        store = self.db.store
        b = await self.db.run(store.get_batch, batch_id)
        if b is None:
            raise NotFound("UNKNOWN_BATCH", "batch_id", f"no batch {batch_id}")
        if b.state != BatchState.PENDING or b.aggregation_id is None:
            return False, await self.valid_signatures(b)
        current = await self.db.run(store.attest_deadline, batch_id)
        if deadline and deadline != current:
            log.info(
                "operator %s answered batch %d for deadline %d, now %d: too late",
                op,
                batch_id,
                deadline,
                current,
            )
            return False, await self.valid_signatures(b)
        agg = Aggregation(b.domain_id, b.aggregation_id, b.root, b.leaf_count, current)
        if refusal:
            try:
                refuser = norm_addr(
                    recover_refusal(
                        signature, batch_id, agg, refusal, bad, self.chain.chain_id, self.chain.registry
                    )
                )
            except Exception as e:
                raise InvalidInput(
                    "BAD_SIGNATURE", "signature", f"cannot recover the refusal signer: {e}"
                ) from e
            if refuser != op:
                raise InvalidInput("BAD_SIGNATURE", "signature", f"refusal is signed by {refuser}, not {op}")
            log.warning("operator %s refused batch %d: %s %s", op, batch_id, refusal, refusal_message[:500])
            await self.db.run(store.add_signature, batch_id, op, None, refusal)
            sigs = await self.db.run(store.signatures, batch_id)
            # n and k as the registry counts them (observe_chain): a refusal by an operator the
            # registry dropped does not fail a batch
            refusals = [s for s in sigs if s[1] is None and s[0] in self.counted]
            if len(refusals) > len(self.counted) - self.threshold:
                await self.db.run(
                    store.fail_batch, batch_id, refusal, list(bad), message=refusal_cause(op, refusal_message)
                )
                self.changes.notify()
            return True, await self.valid_signatures(b)
        if root != b.root:
            raise InvalidInput("ROOT_MISMATCH", "root", "the operator's root differs from the batch root")
        try:
            signer = norm_addr(
                crypto.recover_aggregation_signer(
                    signature,
                    self.chain.chain_id,
                    self.chain.registry,
                    b.domain_id,
                    b.aggregation_id,
                    b.root,
                    b.leaf_count,
                    current,
                )
            )
        except Exception as e:
            raise InvalidInput("BAD_SIGNATURE", "signature", f"cannot recover the signer: {e}") from e
        if signer != op:
            raise InvalidInput("BAD_SIGNATURE", "signature", f"signature is by {signer}, not {op}")
        # One transaction: a crash can never leave k stored signatures on a PENDING batch that
        # nothing promotes (issue 13, failure 2); the sweep covers databases from before.
        n, promoted = await self.db.run(
            store.add_signature_and_promote, batch_id, op, signature, self.threshold, sorted(self.counted)
        )
        crashpoints.reached("attest")
        if promoted:
            crashpoints.reached("promote")
            log.info("batch %d signed by %d operators", batch_id, n)
        if n >= self.threshold:
            self.changes.notify()
        return True, n

    async def valid_signatures(self, b: BatchRow) -> int:
        return sum(
            1
            for o, s, _ in await self.db.run(self.db.store.signatures, b.batch_id)
            if s and o in self.counted
        )

    def observe_chain(self, threshold: int, not_operators: Iterable[str]) -> None:
        """The registry's view (read by the poster each round): its threshold, and which configured
        operators it no longer counts. Promotion follows it, so a batch is not promoted with
        signatures the registry would refuse."""
        self.threshold = max(1, threshold)
        self.counted = self.operators - {norm_addr(a) for a in not_operators}

    async def sweep(self) -> int:
        """Promote every PENDING attested batch already holding k counted signatures (startup and
        every tick: whatever left one there, e.g. a crash in an older version, or a lowered
        threshold). Returns how many moved."""
        moved = await self.db.run(self.db.store.promote_attested, self.threshold, sorted(self.counted))
        if moved:
            log.info("sweep: batches %s had %d signatures; now SIGNED", moved, self.threshold)
            self.changes.notify()
        return len(moved)

    async def run_sweeper(self, every_s: float) -> None:
        while not self.changes.closed:
            try:
                await self.sweep()
            except Exception:
                log.exception("signature sweep failed")
            await asyncio.sleep(every_s)


def _own_srs_id(cfg: Config) -> str:
    """The id (sheaf.srs_id) of the SRS this aggregator's normalizer uses (`srs_path`, else
    sheaf.paths.default_srs(), as aggregator.app.make_normalizer); "" without one."""
    path = cfg.srs_path or default_srs()
    if not path:
        log.info("no KZG SRS: Halo2 proofs are not accepted, operators' SRS ids are not checked")
        return ""
    try:
        sid = srs_id(path)
    except SrsError as e:
        log.warning("KZG SRS %s: %s (operators' SRS ids are not checked)", path, e.message)
        return ""
    log.info("Halo2 KZG SRS %s, SRS id %s (operators must use the same)", path, sid)
    return sid
