"""Talking to SheafRegistry: reads, and sending aggregations with retries, gas margin and one nonce source.

The chain is the source of truth: the submitter never remembers "I posted id N", it reads the
registry's nextAggregationId and getAggregation every round, so restarts, dropped transactions and
reorgs all come down to the same reconciliation (see aggregator.submitter).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from eth_account import Account
from hexbytes import HexBytes
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential
from tenacity.wait import wait_base
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import ContractLogicError, TransactionNotFound

from aggregator.merkle import merkle_root
from sheaf.registry_abi import REGISTRY_ABI, REGISTRY_ERRORS

log = logging.getLogger("sheaf.chain")
T = TypeVar("T")


def registry_error_name(e: ContractLogicError) -> str | None:
    """The name of the registry's custom error a call reverted with (e.g. "SignerNotOperator"),
    or None for anything else (a verifier's own error, a plain revert)."""
    data = str(getattr(e, "data", "") or "").lower().removeprefix("0x")
    sig = REGISTRY_ERRORS.get(data[:8])
    return sig.split("(")[0] if sig else None


class RpcError(Exception):
    """The node could not be reached or kept failing after retries."""


@dataclass(frozen=True)
class OnChainAggregation:
    root: bytes
    leaf_count: int
    kind: int
    block_number: int


@dataclass(frozen=True)
class TxState:
    known: bool  # the node knows the transaction (pending or mined)
    block_number: int | None
    block_hash: bytes | None
    status: int | None


class FeeCapReached(Exception):
    """Replacing a stuck transaction would need a fee above the configured cap: it is left pending."""


def _transient_rpc_error(e: BaseException) -> bool:
    """Retried: connection refused, timeouts, 5xx. Not: a revert or an unknown transaction (the node
    answered), nor a cancellation (a BaseException, not an Exception)."""
    return isinstance(e, Exception) and not isinstance(e, (ContractLogicError, TransactionNotFound))


class _JitteredBackoff(wait_base):
    """0.1 s doubling to 3 s, each wait stretched by 0-20%: tenacity's jitters are additive, this
    one scales with the wait so that instances retrying together drift apart at every size."""

    _exp = wait_exponential(multiplier=0.1, max=3.0)

    def __call__(self, retry_state: RetryCallState) -> float:
        return float(self._exp(retry_state)) * (1 + random.random() * 0.2)


_rpc_backoff = _JitteredBackoff()


def bumped(fee: int) -> int:
    """A replacement's fee: +12.5% and 1 wei (nodes want >= 10% more on both fees to replace)."""
    return fee + fee // 8 + 1


class Chain:
    def __init__(
        self,
        rpc_url: str,
        registry: str,
        key: str | None = None,
        *,
        gas_margin_pct: int = 30,
        retries: int = 6,
        timeout_s: float = 5.0,
        max_fee_per_gas: int = 0,
    ) -> None:
        # web3's own retry layer (seconds of hidden backoff) is off: retries, their log and the ok flag
        # are ours (_retry).
        self.w3 = AsyncWeb3(
            AsyncHTTPProvider(
                rpc_url, request_kwargs={"timeout": timeout_s}, exception_retry_configuration=None
            )
        )
        self.registry = AsyncWeb3.to_checksum_address(registry)
        self.contract = self.w3.eth.contract(address=self.registry, abi=REGISTRY_ABI)
        self.account = Account.from_key(key) if key else None
        self.gas_margin_pct = gas_margin_pct
        self.max_fee_per_gas = max_fee_per_gas  # wei; 0: no cap
        self.retries = retries
        self._send_lock = asyncio.Lock()
        self.ok = True  # the last RPC call reached the node
        self._chain_id: int | None = None

    async def close(self) -> None:
        await self.w3.provider.disconnect()

    async def _retry(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """fn() with the RPC retry policy: `retries` more attempts after the first, 0.1 s doubling to
        3 s between them (+0-20% jitter); a revert or an unknown transaction is an answer, not an
        outage, and is raised at once. Running out of attempts raises RpcError."""

        def before_sleep(state: RetryCallState) -> None:
            self.ok = False  # healthy() reads it while we wait
            e = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "rpc %s failed (%s), retry %d in %.2fs",
                what,
                type(e).__name__,
                state.attempt_number,
                delay,
                extra={"rpc": what, "attempt": state.attempt_number},
            )

        try:
            # the attempt-block form: fn is a lambda returning an awaitable, which AsyncRetrying(fn)
            # would not await (it awaits only coroutine functions)
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.retries + 1),
                wait=_rpc_backoff,
                retry=retry_if_exception(_transient_rpc_error),
                before_sleep=before_sleep,
                reraise=True,
            ):
                with attempt:
                    out = await fn()
        except (ContractLogicError, TransactionNotFound):
            self.ok = True  # the node answered
            raise
        except Exception as e:  # connection refused, timeouts, 5xx: attempts ran out
            self.ok = False
            raise RpcError(f"{what}: {type(e).__name__}: {e}") from e
        self.ok = True
        return out

    async def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(await self._retry("chain_id", lambda: self.w3.eth.chain_id))
        return self._chain_id

    async def head(self) -> int:
        return int(await self._retry("block_number", lambda: self.w3.eth.block_number))

    async def next_aggregation_id(self, domain_id: int) -> int:
        return int(
            await self._retry(
                "nextAggregationId", lambda: self.contract.functions.nextAggregationId(domain_id).call()
            )
        )

    async def threshold(self) -> int:
        """The registry's k (0: not set; attested posts revert with ThresholdNotSet)."""
        fn = self.contract.functions.threshold()
        return int(await self._retry("threshold", lambda: fn.call()))

    async def is_operator(self, address: str) -> bool:
        fn = self.contract.functions.isOperator(AsyncWeb3.to_checksum_address(address))
        return bool(await self._retry("isOperator", lambda: fn.call()))

    async def aggregation_verifier(self) -> str:
        """The registry's IAggregationProofVerifier (the zero address: recursive posts revert)."""
        fn = self.contract.functions.aggregationVerifier()
        return str(await self._retry("aggregationVerifier", lambda: fn.call()))

    async def get_aggregation(self, domain_id: int, aggregation_id: int) -> OnChainAggregation | None:
        r = await self._retry(
            "getAggregation", lambda: self.contract.functions.getAggregation(domain_id, aggregation_id).call()
        )
        root, leaf_count, kind, block = r
        if int(kind) == 0:
            return None
        return OnChainAggregation(bytes(root), int(leaf_count), int(kind), int(block))

    async def verify_inclusion(
        self,
        domain_id: int,
        aggregation_id: int,
        leaf: bytes,
        path: Sequence[bytes],
        leaf_count: int,
        index: int,
    ) -> bool:
        fn = self.contract.functions.verifyProofAggregation(
            domain_id, aggregation_id, leaf, list(path), leaf_count, index
        )
        return bool(await self._retry("verifyProofAggregation", lambda: fn.call()))

    async def gas_used(self, tx_hash: bytes) -> int:
        """A mined transaction's gasUsed (its receipt): the explorer's gas-saved figures."""
        receipt = await self._retry(
            "eth_getTransactionReceipt", lambda: self.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        )
        return int(receipt["gasUsed"])

    async def aggregation_digest(
        self, domain_id: int, aggregation_id: int, root: bytes, leaf_count: int, deadline: int
    ) -> bytes:
        fn = self.contract.functions.aggregationDigest(domain_id, aggregation_id, root, leaf_count, deadline)
        return bytes(await self._retry("aggregationDigest", lambda: fn.call()))

    async def tx_state(self, tx_hash: bytes) -> TxState:
        try:
            tx = await self._retry("get_transaction", lambda: self.w3.eth.get_transaction(HexBytes(tx_hash)))
        except TransactionNotFound:
            return TxState(False, None, None, None)
        if tx.get("blockNumber") is None:
            return TxState(True, None, None, None)
        try:
            rc = await self._retry("receipt", lambda: self.w3.eth.get_transaction_receipt(HexBytes(tx_hash)))
        except TransactionNotFound:
            return TxState(True, None, None, None)
        return TxState(True, int(rc["blockNumber"]), bytes(rc["blockHash"]), int(rc["status"]))

    async def fees(self) -> tuple[int, int]:
        """(maxFeePerGas, maxPriorityFeePerGas) for a new transaction: twice the latest base fee plus
        the node's suggested tip (web3's own rule, made explicit so a replacement can raise both)."""
        block = await self._retry("latest block", lambda: self.w3.eth.get_block("latest"))
        tip = int(await self._retry("max_priority_fee", lambda: self.w3.eth.max_priority_fee))
        return 2 * int(block.get("baseFeePerGas", 0)) + tip, tip

    async def _send(self, fn: Any, what: str, replace: bytes | None = None) -> bytes:
        """Simulate (a revert surfaces as ContractLogicError with the registry's custom error), estimate
        gas and add the margin, sign with the pending nonce, send. One send at a time per process.

        `replace`: a stuck (pending) transaction of ours: sent again with its nonce and both fees raised
        by at least 12.5% (`bumped`), so the node replaces it; FeeCapReached if that exceeds
        max_fee_per_gas. If it is no longer pending, this is an ordinary send."""
        if self.account is None:
            raise RuntimeError("no submitter key configured")
        sender = self.account.address
        async with self._send_lock:
            await self._retry(f"{what}.call", lambda: fn.call({"from": sender}))
            est = int(await self._retry(f"{what}.estimate", lambda: fn.estimate_gas({"from": sender})))
            gas = est * (100 + self.gas_margin_pct) // 100 + 20_000
            fee, tip = await self.fees()
            old = await self._pending_tx(replace) if replace else None
            if old is not None:
                nonce = int(old["nonce"])
                fee = max(fee, bumped(int(old.get("maxFeePerGas") or old.get("gasPrice") or 0)))
                tip = max(tip, bumped(int(old.get("maxPriorityFeePerGas") or old.get("gasPrice") or 0)))
                if self.max_fee_per_gas and fee > self.max_fee_per_gas:
                    raise FeeCapReached(
                        f"replacing {what} needs maxFeePerGas {fee} > cap {self.max_fee_per_gas}"
                    )
            else:
                nonce = int(
                    await self._retry("nonce", lambda: self.w3.eth.get_transaction_count(sender, "pending"))
                )
                if self.max_fee_per_gas:
                    fee = min(fee, self.max_fee_per_gas)
                    tip = min(tip, fee)
            chain_id = await self.chain_id()
            tx = await fn.build_transaction(
                {
                    "from": sender,
                    "nonce": nonce,
                    "gas": gas,
                    "chainId": chain_id,
                    "maxFeePerGas": fee,
                    "maxPriorityFeePerGas": tip,
                }
            )
            raw = self.account.sign_transaction(tx).raw_transaction
            h = await self._retry("send_raw_transaction", lambda: self.w3.eth.send_raw_transaction(raw))
            log.info(
                "sent %s nonce=%d gas=%d (estimate %d) maxFee=%d tip=%d%s tx=%s",
                what,
                nonce,
                gas,
                est,
                fee,
                tip,
                f" replacing {replace.hex()}" if old is not None and replace else "",
                bytes(h).hex(),
            )
            return bytes(h)

    async def _pending_tx(self, tx_hash: bytes) -> Any:
        try:
            tx = await self._retry("get_transaction", lambda: self.w3.eth.get_transaction(HexBytes(tx_hash)))
        except TransactionNotFound:
            return None
        return tx if tx.get("blockNumber") is None else None

    async def send_attested(
        self,
        domain_id: int,
        aggregation_id: int,
        root: bytes,
        leaf_count: int,
        deadline: int,
        signatures: Sequence[bytes],
        replace: bytes | None = None,
    ) -> bytes:
        fn = self.contract.functions.submitAttestedAggregation(
            domain_id, aggregation_id, root, leaf_count, deadline, list(signatures)
        )
        return await self._send(fn, f"submitAttestedAggregation({domain_id},{aggregation_id})", replace)

    async def send_recursive(
        self,
        domain_id: int,
        aggregation_id: int,
        leaves: Sequence[bytes],
        proof: bytes,
        replace: bytes | None = None,
        *,
        publish_leaves: bool = False,
    ) -> bytes:
        """Post a proven batch: the root variant (root, count; the proof binds both), or with
        `publish_leaves` every leaf in calldata (the registry recomputes the root)."""
        if publish_leaves:
            fn = self.contract.functions.submitRecursiveAggregation(
                domain_id, aggregation_id, list(leaves), proof
            )
            what = "submitRecursiveAggregation"
        else:
            fn = self.contract.functions.submitRecursiveAggregationRoot(
                domain_id, aggregation_id, merkle_root(list(leaves)), len(leaves), proof
            )
            what = "submitRecursiveAggregationRoot"
        return await self._send(fn, f"{what}({domain_id},{aggregation_id})", replace)
