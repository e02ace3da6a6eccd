"""Python SDK for the aggregator: `AsyncClient` (grpc.aio) and `Client`, its blocking twin.

async with AsyncClient("127.0.0.1:50051") as c:
    r = await c.submit("groth16", "snarkjs", proof, vk=vk, public=pub)
    final = await c.wait_finalized(r.proof_id)
    receipt = await c.inclusion(r.proof_id)
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Coroutine
from types import TracebackType
from typing import Any, TypeVar

import grpc
from eth_account import Account

from aggregator.admission import sign_submission
from sheaf.v1 import aggregator_pb2 as pb
from sheaf.v1 import aggregator_pb2_grpc as pbg

T = TypeVar("T")
TERMINAL = (pb.FINALIZED, pb.REJECTED, pb.FAILED)


class AggregatorError(Exception):
    """A failed call: gRPC status plus Sheaf's stable error code and field (from trailing metadata)."""

    def __init__(self, status: grpc.StatusCode, code: str, field: str, message: str) -> None:
        super().__init__(f"{status.name} {code} {field}: {message}")
        self.status, self.code, self.field, self.message = status, code, field, message


def _wrap(e: grpc.aio.AioRpcError) -> AggregatorError:
    md = {k: v for k, v in (e.trailing_metadata() or ())}
    return AggregatorError(
        e.code(), str(md.get("sheaf-error-code", "")), str(md.get("sheaf-error-field", "")), e.details() or ""
    )


class AsyncClient:
    def __init__(
        self, target: str, *, timeout: float = 30.0, max_message_bytes: int = 64 * 1024 * 1024
    ) -> None:
        self.target = target
        self.timeout = timeout
        # Short reconnect backoff: after an aggregator restart the client is back within ~0.5 s.
        self.channel = grpc.aio.insecure_channel(
            target,
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ],
        )
        self.stub = pbg.AggregatorStub(self.channel)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    async def _call(self, fn: Any, req: Any, timeout: float | None = None) -> Any:
        try:
            return await fn(req, timeout=timeout or self.timeout)
        except grpc.aio.AioRpcError as e:
            raise _wrap(e) from e

    async def register_vk(self, scheme: str, fmt: str, vk: bytes, settings: bytes | None = None) -> bytes:
        r = await self._call(
            self.stub.RegisterVerifyingKey,
            pb.RegisterVerifyingKeyRequest(scheme=scheme, format=fmt, vk=vk, settings=settings or b""),
        )
        return bytes(r.vk_hash)

    async def submit(
        self,
        scheme: str,
        fmt: str,
        proof: bytes,
        *,
        vk: bytes | None = None,
        vk_hash: bytes | None = None,
        public: bytes | None = None,
        settings: bytes | None = None,
        domain_id: int = 0,
        prover_key: str | None = None,
        statement_hash: bytes | None = None,
        nonce: int | None = None,
    ) -> Any:
        """Submit one proof; returns SubmitProofResponse. With prover_key, the submission is signed
        over statement_hash (compute it with normalizers if not given) and a nonce (default: time in µs)."""
        req = pb.SubmitProofRequest(
            scheme=scheme,
            format=fmt,
            proof=proof,
            public=public or b"",
            settings=settings or b"",
            domain_id=domain_id,
        )
        if vk is not None:
            req.vk = vk
        elif vk_hash is not None:
            req.vk_hash = vk_hash
        if prover_key is not None:
            if statement_hash is None:
                raise ValueError("statement_hash is needed to sign a submission")
            n = nonce if nonce is not None else time.time_ns() // 1000
            req.auth.prover = Account.from_key(prover_key).address
            req.auth.nonce = n
            req.auth.signature = sign_submission(prover_key, statement_hash, n, domain_id or 1)
        return await self._call(self.stub.SubmitProof, req)

    async def status(self, proof_id: str) -> Any:
        return await self._call(self.stub.GetProofStatus, pb.GetProofStatusRequest(proof_id=proof_id))

    async def watch(self, proof_id: str, timeout: float | None = None) -> AsyncIterator[Any]:
        call = self.stub.WatchProof(pb.WatchProofRequest(proof_id=proof_id), timeout=timeout)
        try:
            async for u in call:
                yield u
        except grpc.aio.AioRpcError as e:
            raise _wrap(e) from e

    async def wait_finalized(self, proof_id: str, timeout: float = 120.0) -> Any:
        last = None
        async for u in self.watch(proof_id, timeout=timeout):
            last = u
            if u.status in TERMINAL:
                break
        if last is None or last.status != pb.FINALIZED:
            return await self.status(proof_id)
        return await self.status(proof_id)

    async def inclusion(self, proof_id: str) -> Any:
        return await self._call(self.stub.GetInclusionProof, pb.GetInclusionProofRequest(proof_id=proof_id))

    async def aggregation(self, domain_id: int, aggregation_id: int) -> Any:
        return await self._call(
            self.stub.GetAggregation,
            pb.GetAggregationRequest(domain_id=domain_id, aggregation_id=aggregation_id),
        )


class Client:
    """Blocking wrapper: runs an AsyncClient on a private event loop thread."""

    def __init__(self, target: str, **kw: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="sheaf-client")
        self._thread.start()
        self._c: AsyncClient = self._run(self._make(target, kw))

    async def _make(self, target: str, kw: dict[str, Any]) -> AsyncClient:
        return AsyncClient(target, **kw)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def register_vk(self, scheme: str, fmt: str, vk: bytes, settings: bytes | None = None) -> bytes:
        return self._run(self._c.register_vk(scheme, fmt, vk, settings))

    def submit(self, scheme: str, fmt: str, proof: bytes, **kw: Any) -> Any:
        return self._run(self._c.submit(scheme, fmt, proof, **kw))

    def status(self, proof_id: str) -> Any:
        return self._run(self._c.status(proof_id))

    def wait_finalized(self, proof_id: str, timeout: float = 120.0) -> Any:
        return self._run(self._c.wait_finalized(proof_id, timeout))

    def inclusion(self, proof_id: str) -> Any:
        return self._run(self._c.inclusion(proof_id))

    def aggregation(self, domain_id: int, aggregation_id: int) -> Any:
        return self._run(self._c.aggregation(domain_id, aggregation_id))

    def close(self) -> None:
        self._run(self._c.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
