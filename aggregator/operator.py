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
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import grpc
from eth_account import Account

from aggregator import crypto
from aggregator.admission import ProofVerifier, sign_refusal
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
) -> Decision:
    d = await _decide(task, verifier, key, chain_id, registry, srs_id)
    if d.refusal_code:  # refusals are signed too: an unsigned one could be forged to fail batches
        sig = sign_refusal(key, task.batch_id, d.refusal_code, d.bad)
        return Decision(sig, d.refusal_code, d.refusal_message, d.bad, d.root)
    return d


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
        key, task.chain_id, task.registry, task.domain_id, task.aggregation_id, root, task.leaf_count
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
    ) -> None:
        self.target = target
        self.key = key
        self.address = Account.from_key(key).address
        self.verifier = verifier or ProofVerifier()
        self.chain_id, self.registry = chain_id, registry
        self.wait_ms = wait_ms
        # sheaf.srs_id of this operator's SRS ("" = none), sent with every FetchBatch; None: not sent
        self.srs_id = srs_id
        self.stopping = asyncio.Event()
        self.signed = 0
        self.refused = 0

    async def run(self) -> None:
        backoff = 0.2
        async with grpc.aio.insecure_channel(self.target) as ch:
            stub = pbg.OperatorStub(ch)
            log.info(
                "operator %s attesting for %s (Halo2 SRS id %s)",
                self.address,
                self.target,
                "not sent" if self.srs_id is None else self.srs_id or "none",
            )
            while not self.stopping.is_set():
                try:
                    req = pb.FetchBatchRequest(operator=self.address, wait_ms=self.wait_ms)
                    if self.srs_id is not None:
                        req.srs_id = self.srs_id
                    task = await stub.FetchBatch(req, timeout=self.wait_ms / 1000 + 5)
                    backoff = 0.2
                    if not task.has_batch:
                        continue
                    d = await check_task(
                        task, self.verifier, self.key, self.chain_id, self.registry, srs_id=self.srs_id or ""
                    )
                    await stub.SubmitAttestation(
                        pb.SubmitAttestationRequest(
                            operator=self.address,
                            batch_id=task.batch_id,
                            root=d.root,
                            signature=d.signature,
                            refusal_code=d.refusal_code,
                            refusal_message=d.refusal_message,
                            bad_statements=d.bad,
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
                        log.warning(
                            "refused batch %d: %s %s", task.batch_id, d.refusal_code, d.refusal_message
                        )
                except grpc.aio.AioRpcError as e:
                    fatal = _fatal(e)
                    if fatal is not None:
                        await self.verifier.close()
                        raise fatal from None
                    log.warning("aggregator unreachable (%s); retrying in %.1fs", e.code().name, backoff)
                    try:
                        await asyncio.wait_for(self.stopping.wait(), backoff)
                    except TimeoutError:
                        pass
                    backoff = min(backoff * 2, 5.0)
        await self.verifier.close()


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
