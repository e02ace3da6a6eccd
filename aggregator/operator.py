"""`aggregator operator`: an independent attester with its own key and its own Normalizer.

It trusts nothing from the aggregator: every proof of a batch is re-verified here, each statement
hash recomputed, the Merkle root rebuilt from those, and only then is the EIP-712 Aggregation
signed. A batch with a bad proof or a wrong root is refused (with the offending statements named
and the first failure's code, field and message). If the operator is configured with a chain id /
registry, it refuses to sign for any other.

Halo2 proofs verify only with the KZG SRS they were made with: the operator sends its SRS id
(sheaf.srs_id) with every FetchBatch, and an aggregator using another SRS answers SRS_MISMATCH
naming both ids; the operator then stops with that coded error (`OperatorStopped`) instead of
refusing every Halo2 batch later.

Expiry (issue 13): every signature carries the task's deadline, which the registry enforces. The
operator refuses a deadline less than `min_validity_s` away (DEADLINE_PAST) or more than
`max_ttl_s` ahead (DEADLINE_TOO_FAR). It never signs two different (root, leaf count) for one
(chain, registry, domain, aggregation id) while its earlier signature is still valid: an id given
back after a failed batch is signed again only once the earlier attestation expired (it waits,
without answering), so the old k-1 signatures can never be completed into a quorum for a root the
aggregator abandoned. That memory is in-process unless `--state FILE` keeps it across restarts.
Refusals are EIP-712 too, bound to the chain, the registry and the exact batch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from eth_account import Account
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential

from aggregator import crashpoints, crypto
from aggregator.admission import ProofVerifier
from aggregator.attestation import MAX_ATTESTATION_TTL_S, Aggregation, sign_refusal
from normalizers.api import ProofInput
from sheaf.errors import SheafError
from sheaf.srs_id import SrsError
from sheaf.v1 import aggregator_pb2 as pb
from sheaf.v1 import aggregator_pb2_grpc as pbg

log = logging.getLogger("sheaf.operator")


@dataclass(frozen=True)
class Decision:
    signature: bytes
    refusal_code: str
    refusal_message: str
    bad: list[bytes]
    root: bytes


@dataclass
class Signed:
    """What this operator signed per (chain, registry, domain, aggregation id): (root, leaf count,
    deadline). Another root for the same id waits until the recorded deadline has passed.

    With `path` (`aggregator operator --state FILE`) the record survives restarts: it is loaded at
    start and rewritten (atomically: temp file + rename) before a signature leaves the process."""

    clock: Callable[[], float] = time.time
    by_id: dict[tuple[int, str, int, int], tuple[bytes, int, int]] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self) -> None:
        if self.path is not None and self.path.exists():
            for row in json.loads(self.path.read_text()):
                chain, registry, domain, agg, root, count, dl = row
                self.by_id[int(chain), str(registry), int(domain), int(agg)] = (
                    bytes.fromhex(root),
                    int(count),
                    int(dl),
                )

    def blocked_until(self, task: Any) -> int:
        """0 if signing `task` cannot complete a second quorum for its id; else the deadline to wait for."""
        prev = self.by_id.get(_key(task))
        if prev is None or (prev[0], prev[1]) == (bytes(task.root), task.leaf_count):
            return 0
        return prev[2] if prev[2] >= int(self.clock()) else 0

    def record(self, task: Any) -> None:
        now = int(self.clock())
        self.by_id = {k: v for k, v in self.by_id.items() if v[2] >= now}  # forget expired ones
        prev = self.by_id.get(_key(task))
        dl = (
            max(task.deadline, prev[2])
            if prev and prev[:2] == (bytes(task.root), task.leaf_count)
            else task.deadline
        )
        self.by_id[_key(task)] = (bytes(task.root), task.leaf_count, dl)
        if self.path is not None:
            rows = [[*k, v[0].hex(), v[1], v[2]] for k, v in sorted(self.by_id.items())]
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(rows))
            os.replace(tmp, self.path)


def _key(task: Any) -> tuple[int, str, int, int]:
    return (task.chain_id, task.registry.lower(), task.domain_id, task.aggregation_id)


class Deferred(Exception):
    """The task's aggregation id was signed for another root whose attestation is valid until
    `until`: not answered now (a later fetch returns the batch again)."""

    def __init__(self, until: int) -> None:
        super().__init__(f"an earlier attestation for this id is valid until {until}")
        self.until = until


class OperatorStopped(SheafError):
    """The aggregator answered PERMISSION_DENIED: no retry changes that; the operator stops and
    `aggregator operator` prints the coded error and exits 2 (as it does for SRS_MISMATCH)."""


async def check_task(
    task: Any,
    verifier: ProofVerifier,
    key: str,
    chain_id: int | None = None,
    registry: str | None = None,
    *,
    srs_id: str = "",
    signed: Signed | None = None,
    min_validity_s: int = 5,
    max_ttl_s: int = 3600,
) -> Decision:
    """Check and answer `task`. Raises Deferred (see Signed) instead of answering when the id was
    signed for another root still valid."""
    d = _check_deadline(task, min_validity_s, max_ttl_s, signed.clock if signed else time.time)
    if d is None:
        if signed is not None and (until := signed.blocked_until(task)):
            raise Deferred(until)
        d = await _decide(task, verifier, key, chain_id, registry, srs_id)
    if d.refusal_code:  # refusals are signed too: an unsigned one could be forged to fail batches
        agg = Aggregation(
            task.domain_id, task.aggregation_id, bytes(task.root), task.leaf_count, task.deadline
        )
        sig = sign_refusal(key, task.batch_id, agg, d.refusal_code, d.bad, task.chain_id, task.registry)
        return Decision(sig, d.refusal_code, d.refusal_message, d.bad, d.root)
    if signed is not None:
        signed.record(task)
    return d


def _check_deadline(
    task: Any, min_validity_s: int, max_ttl_s: int, clock: Callable[[], float]
) -> Decision | None:
    now = int(clock())
    if task.deadline < now + min_validity_s:
        msg = f"deadline {task.deadline} is less than {min_validity_s} s away (now {now})"
        return Decision(b"", "DEADLINE_PAST", msg, [], b"")
    if task.deadline > now + min(max_ttl_s, MAX_ATTESTATION_TTL_S):
        ttl = min(max_ttl_s, MAX_ATTESTATION_TTL_S)
        msg = f"deadline {task.deadline} is more than {ttl} s ahead (now {now})"
        return Decision(b"", "DEADLINE_TOO_FAR", msg, [], b"")
    return None


async def _decide(
    task: Any, verifier: ProofVerifier, key: str, chain_id: int | None, registry: str | None, srs_id: str
) -> Decision:
    if chain_id is not None and task.chain_id != chain_id:
        return Decision(b"", "WRONG_CHAIN", f"asked to sign for chain {task.chain_id}", [], b"")
    if registry is not None and task.registry.lower() != registry.lower():
        return Decision(b"", "WRONG_REGISTRY", f"asked to sign for registry {task.registry}", [], b"")
    if task.leaf_count != len(task.items) or not task.items:
        return Decision(
            b"", "LEAF_COUNT", f"leaf_count {task.leaf_count} but {len(task.items)} items", [], b""
        )
    items = [
        ProofInput(i.scheme, i.format, i.proof, i.vk, i.public or None, i.settings or None)
        for i in task.items
    ]
    results = await asyncio.gather(*(verifier.verify(it) for it in items), return_exceptions=True)
    bad: list[bytes] = []
    leaves: list[bytes] = []
    first = ""
    cause = ""  # the first failure, named in the refusal message
    for claimed, r in zip(task.items, results, strict=True):
        if isinstance(r, BaseException):
            bad.append(claimed.statement_hash)
            if not first:
                first = str(r.code) if isinstance(r, SheafError) else "INTERNAL"
                what = f"{r.field}: {r.message}" if isinstance(r, SheafError) else type(r).__name__
                cause = f"{claimed.scheme} proof 0x{bytes(claimed.statement_hash).hex()}: {first} {what}"
                if claimed.scheme == "halo2":
                    cause += f" (this operator's SRS id: {srs_id or 'none'})"
            continue
        if r.statement_hash != claimed.statement_hash:
            bad.append(claimed.statement_hash)
            if not first:
                first = "STATEMENT_MISMATCH"
                cause = (
                    f"recomputed statement 0x{r.statement_hash.hex()}, "
                    f"claimed 0x{bytes(claimed.statement_hash).hex()}"
                )
        leaves.append(r.statement_hash)
    if bad:
        msg = f"{len(bad)} of {len(items)} proofs failed re-verification; first: {cause}"
        return Decision(b"", first, msg[:1000], bad, b"")
    root = crypto.merkle_root(leaves)
    if root != task.root:
        return Decision(b"", "ROOT_MISMATCH", "recomputed root differs", [], root)
    sig = crypto.sign_aggregation(
        key,
        task.chain_id,
        task.registry,
        task.domain_id,
        task.aggregation_id,
        root,
        task.leaf_count,
        task.deadline,
    )
    return Decision(sig, "", "", [], root)


class OperatorProcess:
    def __init__(
        self,
        target: str,
        key: str,
        verifier: ProofVerifier | None = None,
        *,
        chain_id: int | None = None,
        registry: str | None = None,
        wait_ms: int = 5000,
        srs_id: str | None = None,
        max_ttl_s: int = 3600,
        state: Path | None = None,
    ) -> None:
        self.target = target
        self.key = key
        self.address = Account.from_key(key).address
        self.verifier = verifier or ProofVerifier()
        self.chain_id, self.registry = chain_id, registry
        self.wait_ms = wait_ms
        # sheaf.srs_id of this operator's SRS ("" = none), sent with every FetchBatch; None: not sent
        self.srs_id = srs_id
        self.max_ttl_s = max_ttl_s
        self.memory = Signed(path=state)
        self.stopping = asyncio.Event()
        self.deferred = 0
        self.signed = 0
        self.refused = 0

    async def run(self) -> None:
        async with grpc.aio.insecure_channel(self.target) as ch:
            stub = pbg.OperatorStub(ch)
            log.info(
                "operator %s attesting for %s (Halo2 SRS id %s)",
                self.address,
                self.target,
                "not sent" if self.srs_id is None else self.srs_id or "none",
            )
            try:
                while not self.stopping.is_set():
                    # one poll per attempt: an unreachable aggregator is retried with backoff (0.2 s
                    # doubling to 5 s, reset by the next success); a fatal coded answer stops the
                    # operator; stopping ends the waits at once
                    async for attempt in AsyncRetrying(
                        retry=retry_if_exception(_transient),
                        wait=wait_exponential(multiplier=0.2, min=0.2, max=5.0),
                        stop=lambda _state: self.stopping.is_set(),
                        sleep=self._sleep,
                        before_sleep=_log_unreachable,
                        reraise=True,
                    ):
                        with attempt:
                            await self._poll_once(stub)
            except grpc.aio.AioRpcError as e:
                fatal = _fatal(e)
                if fatal is not None:
                    raise fatal from None
                if not self.stopping.is_set():
                    raise
            finally:
                await self.verifier.close()

    async def _sleep(self, seconds: float) -> None:
        """Wait, but no longer than until stop() is called."""
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            pass

    async def _poll_once(self, stub: pbg.OperatorStub) -> None:
        """Fetch one batch (long poll) and send its signature or refusal."""
        req = pb.FetchBatchRequest(operator=self.address, wait_ms=self.wait_ms)
        if self.srs_id is not None:
            req.srs_id = self.srs_id
        task = await stub.FetchBatch(req, timeout=self.wait_ms / 1000 + 5)
        if not task.has_batch:
            return
        try:
            d = await check_task(
                task,
                self.verifier,
                self.key,
                self.chain_id,
                self.registry,
                srs_id=self.srs_id or "",
                signed=self.memory,
                max_ttl_s=self.max_ttl_s,
            )
        except Deferred as e:
            self.deferred += 1
            log.warning(
                "batch %d: aggregation %d/%d was signed for another root, valid until %d; "
                "waiting for it to expire",
                task.batch_id,
                task.domain_id,
                task.aggregation_id,
                e.until,
            )
            wait = max(0.5, min(5.0, e.until + 1 - time.time()))
            await self._sleep(wait)
            return
        if not d.refusal_code:
            crashpoints.reached("sign")  # test-only: killed between signing and sending
        await stub.SubmitAttestation(
            pb.SubmitAttestationRequest(
                operator=self.address,
                batch_id=task.batch_id,
                root=d.root,
                signature=d.signature,
                refusal_code=d.refusal_code,
                refusal_message=d.refusal_message,
                bad_statements=d.bad,
                deadline=task.deadline,
            ),
            timeout=10,
        )
        if not d.refusal_code:
            self.signed += 1
            log.info(
                "signed batch %d (aggregation %d/%d, %d leaves)",
                task.batch_id,
                task.domain_id,
                task.aggregation_id,
                task.leaf_count,
            )
        else:
            self.refused += 1
            log.warning("refused batch %d: %s %s", task.batch_id, d.refusal_code, d.refusal_message)


def _transient(e: BaseException) -> bool:
    return isinstance(e, grpc.aio.AioRpcError) and _fatal(e) is None


def _log_unreachable(state: RetryCallState) -> None:
    e = state.outcome.exception() if state.outcome else None
    code = e.code().name if isinstance(e, grpc.aio.AioRpcError) else type(e).__name__
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning("aggregator unreachable (%s); retrying in %.1fs", code, wait)


def _fatal(e: grpc.aio.AioRpcError) -> SheafError | None:
    """The coded error that stops the operator, or None (transient: retry with backoff)."""
    meta = {k: v for k, v in (e.trailing_metadata() or ()) if isinstance(v, str)}
    code = meta.get("sheaf-error-code", "")
    if code == "SRS_MISMATCH":
        # the aggregator's message names both ids and what to do
        return SrsError(code, meta.get("sheaf-error-field", "srs_id"), _message(e.details() or "", code))
    if e.code() == grpc.StatusCode.PERMISSION_DENIED:  # (NOT_OPERATOR is retried: the set may change)
        return OperatorStopped(code or e.code().name, "operator", _message(e.details() or "", code))
    return None


def _message(details: str, code: str) -> str:
    """The message part of the server's "CODE: field: message" status details."""
    parts = details.split(": ", 2)
    return parts[2] if len(parts) == 3 and parts[0] == code else details
