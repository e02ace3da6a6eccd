"""The aggregator's (and each operator's) proof check: one normalizers.Normalizer per process."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct

from normalizers.statement import keccak256

AUTH_TAG = b"sheaf/submit"


class InputError(Exception):
    """Bad input: a stable code, the offending field and a message (maps to INVALID_ARGUMENT etc.)."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(f"{code}: {field}: {message}")
        self.code = code
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Verified:
    statement_hash: bytes
    vk_hash: bytes
    scheme: str
    recursion_eligible: bool  # the normalizer's flag: Groth16 without a Pedersen commitment
    n_public: int = 0  # public inputs (the recursive circuit takes exactly P)


@dataclass(frozen=True)
class Item:
    scheme: str
    format: str
    proof: bytes
    vk: bytes
    public: bytes | None
    settings: bytes | None


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


REFUSE_TAG = b"sheaf/refuse"


def refusal_message(batch_id: int, code: str, bad: Sequence[bytes]) -> bytes:
    """What an operator signs (EIP-191) to refuse a batch: refusals fail batches, so they must be
    authenticated like signatures are."""
    return keccak256(REFUSE_TAG + batch_id.to_bytes(8, "big") + code.encode() + b"".join(bad))


def sign_refusal(key: str, batch_id: int, code: str, bad: Sequence[bytes]) -> bytes:
    msg = encode_defunct(refusal_message(batch_id, code, bad))
    return bytes(Account.sign_message(msg, key).signature)


def recover_refusal(signature: bytes, batch_id: int, code: str, bad: Sequence[bytes]) -> str:
    msg = encode_defunct(refusal_message(batch_id, code, bad))
    return str(Account.recover_message(msg, signature=signature))


def _input_error(e: Exception, default_field: str) -> Exception:
    from normalizers.errors import NormalizeError

    if isinstance(e, NormalizeError):
        return InputError(e.code.value, e.field or default_field, e.message)
    return e


class ProofVerifier:
    """Wraps normalizers.Normalizer; maps its errors to InputError so callers see one error type.

    Concurrent verify() calls are micro-batched into normalize_many (one sidecar round trip and one
    RLC batch check for Groth16), with at most `parallel` batches in flight: a lone request is
    verified at once, under load the batches grow by themselves (as the group commit does).
    """

    def __init__(
        self, normalizer: Any | None = None, *, max_batch: int = 64, parallel: int | None = None
    ) -> None:
        if normalizer is None:
            from normalizers.api import Normalizer

            normalizer = Normalizer()
        self.normalizer = normalizer
        self.max_batch = max_batch
        self.parallel = parallel or max(2, os.cpu_count() or 2)
        self._pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self._inflight = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def verify(self, item: Item) -> Verified:
        from normalizers.api import ProofInput

        pin = ProofInput(
            scheme=item.scheme,
            format=item.format,
            proof=item.proof,
            vk=item.vk,
            public=item.public,
            settings=item.settings,
        )
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((pin, fut))
        if self._inflight < self.parallel:
            self._inflight += 1
            t = asyncio.create_task(self._drain())
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)
        env = await fut
        return Verified(
            statement_hash=bytes(env.statement_hash),
            vk_hash=bytes(env.vk_hash),
            scheme=item.scheme,
            recursion_eligible=bool(getattr(env, "recursion_eligible", False)),
            n_public=len(getattr(env, "public_inputs", ())),
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
        import normalizers.api as napi

        try:
            _, h = await asyncio.to_thread(
                napi.parse_vk, scheme, fmt, vk, settings, normalizer=self.normalizer
            )
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
