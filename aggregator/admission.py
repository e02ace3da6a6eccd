"""Admission: the native check of a submitted proof (`ProofVerifier`, one normalizers.Normalizer per
process, shared by the aggregator and each operator) and the EIP-191 message that authenticates a
submission (prover). An operator's refusal is EIP-712 typed data bound to the chain and registry
(aggregator.attestation.sign_refusal).

Not to be confused with gnark/verify (the Go verification sidecar) or deploy/source_verify.py (explorer
verification of deployed contracts).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Protocol

from eth_account import Account
from eth_account.messages import encode_defunct

from aggregator.records import Verdict
from normalizers.api import Normalizer, ProofInput, parse_vk
from normalizers.errors import NormalizeError
from sheaf.hashing import keccak256

AUTH_TAG = b"sheaf/submit"


class Verifier(Protocol):
    """The native check the aggregator's ingest needs (ProofVerifier; a fake in unit tests).
    Errors are SheafErrors (field = the offending part)."""

    async def verify(self, item: ProofInput) -> Verdict: ...

    async def vk_hash(self, scheme: str, fmt: str, vk: bytes, settings: bytes | None) -> bytes: ...


def norm_addr(address: str) -> str:
    """The form addresses are compared and stored in (allowlist, operator set, nonces)."""
    return address.lower()


def auth_message(statement_hash: bytes, nonce: int, domain_id: int) -> bytes:
    """What a prover signs (EIP-191 personal_sign): binds the statement, the domain and a fresh nonce."""
    return keccak256(AUTH_TAG + domain_id.to_bytes(8, "big") + statement_hash + nonce.to_bytes(8, "big"))


def sign_submission(key: str, statement_hash: bytes, nonce: int, domain_id: int) -> bytes:
    return bytes(
        Account.sign_message(encode_defunct(auth_message(statement_hash, nonce, domain_id)), key).signature
    )


def recover_submitter(signature: bytes, statement_hash: bytes, nonce: int, domain_id: int) -> str:
    msg = encode_defunct(auth_message(statement_hash, nonce, domain_id))
    return str(Account.recover_message(msg, signature=signature))


def _input_error(e: Exception, default_field: str) -> Exception:
    """The normalizer's errors are SheafErrors; one without a field names `default_field`."""
    if isinstance(e, NormalizeError):
        return e if e.field else NormalizeError(e.code, default_field, e.message)
    return e


class ProofVerifier:
    """Wraps normalizers.Normalizer; its errors reach callers as SheafErrors (one error type).

    Concurrent verify() calls are micro-batched into normalize_many (one sidecar round trip and one
    RLC batch check for Groth16), with at most `parallel` batches in flight: a lone request is
    verified at once, under load the batches grow by themselves (as the group commit does).
    """

    def __init__(
        self, normalizer: Any | None = None, *, max_batch: int = 64, parallel: int | None = None
    ) -> None:
        if normalizer is None:
            normalizer = Normalizer()
        self.normalizer = normalizer
        self.max_batch = max_batch
        self.parallel = parallel or max(2, os.cpu_count() or 2)
        self._pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def verify(self, item: ProofInput) -> Verdict:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        if self._inflight < self.parallel:
            self._inflight += 1
            t = asyncio.create_task(self._drain())
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
        env = await fut
        return Verdict(
            statement_hash=bytes(env.statement_hash),
            vk_hash=bytes(env.vk_hash),
            scheme=item.scheme,
            recursion_eligible=bool(getattr(env, "recursion_eligible", False)),
            n_public=len(getattr(env, "public_inputs", ())),
            public_inputs=tuple(bytes(p) for p in getattr(env, "public_inputs", ())),
        )

    async def _drain(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                try:
                    if len(group) == 1:
                        results: list[Any] = [await self._one(group[0][0])]
                    else:
                        results = await self.normalizer.anormalize_many([p for p, _ in group])
                except Exception as e:  # the whole call failed (e.g. sidecar gone): every caller hears it
                    results = [e] * len(group)
                for (_, f), r in zip(group, results, strict=True):
                    if f.done():
                        continue
                    if isinstance(r, Exception):
                        f.set_exception(_input_error(r, "proof"))
                    else:
                        f.set_result(r)
        finally:
            self._inflight -= 1

    async def _one(self, pin: Any) -> Any:
        try:
            return await self.normalizer.anormalize(pin)
        except Exception as e:
            return e

    async def vk_hash(self, scheme: str, fmt: str, vk: bytes, settings: bytes | None) -> bytes:
        try:
            _, h = await asyncio.to_thread(parse_vk, scheme, fmt, vk, settings, normalizer=self.normalizer)
        except Exception as e:
            raise _input_error(e, "vk") from e
        return bytes(h)

    async def close(self) -> None:
        c = getattr(self.normalizer, "aclose", None)
        if c is not None:
            await c()
            return
        c = getattr(self.normalizer, "close", None)
        if c is not None:
            c()
