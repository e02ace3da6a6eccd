"""AsyncClient: the one implementation (grpc.aio). `Client` (sync.py) runs it on a private loop."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from sheaf_client._pb import aggregator_pb2 as pb
from sheaf_client._pb import aggregator_pb2_grpc as pbg
from sheaf_client.errors import SheafError, WaitTimeout
from sheaf_client.inference import (
    InferenceReceipt,
    InferenceStatus,
    InferenceSubmitted,
    SliceInput,
    SliceSpec,
)
from sheaf_client.types import (
    Aggregation,
    AggregationKind,
    InclusionProof,
    Page,
    ProofStatus,
    ProofSummary,
    ProverAuth,
    Scheme,
    StatusUpdate,
    SubmitResult,
    from_hex,
)

T = TypeVar("T")


E = TypeVar("E", ProofStatus, AggregationKind)


def _by_name(cls: type[E], value: E | str | int) -> int:
    """The enum number of a member, its name in any case ("FINALIZED", "attested") or a number (as
    is: a newer server may know more values; the server checks it)."""
    if isinstance(value, str):
        try:
            return int(cls[value.upper()])
        except KeyError:
            raise ValueError(f"unknown {cls.__name__} {value!r:.40}") from None
    return int(value)


class Retry:
    """Exponential backoff with full jitter: attempt n waits uniform(0, min(max_delay, initial*2^n)).

    Unary calls run it through tenacity (`_retrying`); the predicate is Sheaf's (SheafError.retryable:
    RESOURCE_EXHAUSTED only when rate-limited, from the trailing metadata), so gRPC's built-in
    retryPolicy, which can't tell RATE_LIMITED from TOO_LARGE, isn't used. `watch` resumes its
    stream with the same `delay` in its own loop: its attempt count restarts after every event
    yielded, which is not a plain retry of one call.
    """

    def __init__(self, attempts: int = 6, initial: float = 0.2, max_delay: float = 5.0) -> None:
        if attempts < 1:
            raise ValueError("attempts must be >= 1")
        self.attempts, self.initial, self.max_delay = attempts, initial, max_delay

    def delay(self, n: int) -> float:
        """The wait before retry n + 1 (n = 0 after the first failure)."""
        return random.uniform(0, min(self.max_delay, self.initial * 2**n))


NO_RETRY = Retry(attempts=1)


def _retryable_rpc_error(e: BaseException) -> bool:
    return isinstance(e, grpc.aio.AioRpcError) and SheafError.from_rpc(e).retryable


class AsyncClient:
    """Async client for the aggregator's gRPC API. Use inside a running event loop:

    async with AsyncClient("127.0.0.1:50051") as c:
        r = await c.submit("groth16", "snarkjs", proof, vk=vk, public=public)
        final = await c.submit_and_wait(...)  # or: async for u in c.watch(r.proof_id): ...
    """

    def __init__(
        self,
        target: str,
        *,
        secure: bool = False,
        root_certificates: bytes | None = None,
        timeout: float = 30.0,
        retry: Retry | None = None,
        max_message_bytes: int = 64 * 1024 * 1024,
        on_retry: Callable[[SheafError, int, float], None] | None = None,
    ) -> None:
        """secure=True: TLS (system roots, or `root_certificates` PEM). timeout: per call.
        retry: backoff for UNAVAILABLE / DEADLINE_EXCEEDED / rate-limited RESOURCE_EXHAUSTED.
        on_retry(error, attempt, delay) is called before each retry (logging, tests)."""
        self.target = target
        self.timeout = timeout
        self.retry = retry or Retry()
        self.on_retry = on_retry
        opts = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            # reconnect quickly after an aggregator restart (our own backoff paces the calls)
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ]
        if secure:
            creds = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self.channel = grpc.aio.secure_channel(target, creds, options=opts)
        else:
            if root_certificates is not None:
                raise ValueError("root_certificates given without secure=True")
            self.channel = grpc.aio.insecure_channel(target, options=opts)
        self.stub = pbg.AggregatorStub(self.channel)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    # -- retries --

    async def _retrying(self, fn: Callable[[], Awaitable[T]]) -> T:
        """fn() under `self.retry`: retryable SheafErrors (UNAVAILABLE, DEADLINE_EXCEEDED, rate
        limits) are retried up to `attempts` calls in all; any other error, or the last one, is
        raised as a SheafError."""

        def before_sleep(state: RetryCallState) -> None:
            e = state.outcome.exception() if state.outcome else None
            if self.on_retry is not None and isinstance(e, grpc.aio.AioRpcError) and state.next_action:
                self.on_retry(SheafError.from_rpc(e), state.attempt_number, state.next_action.sleep)

        try:
            # the attempt-block form: fn is a lambda returning an awaitable, which
            # AsyncRetrying(fn) would not await (it awaits only coroutine functions)
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.retry.attempts),
                wait=lambda state: self.retry.delay(state.attempt_number - 1),
                retry=retry_if_exception(_retryable_rpc_error),
                before_sleep=before_sleep,
                reraise=True,
            ):
                with attempt:
                    out = await fn()
        except grpc.aio.AioRpcError as e:
            raise SheafError.from_rpc(e) from e
        return out

    async def _unary(self, method: Any, req: Any) -> Any:
        return await self._retrying(lambda: method(req, timeout=self.timeout))

    # -- calls --

    async def register_vk(
        self, scheme: Scheme | str, format: str, vk: bytes, settings: bytes | None = None
    ) -> str:
        """Register a verifying key; returns its vk_hash (0x-hex) for `submit(vk_hash=...)`."""
        r = await self._unary(
            self.stub.RegisterVerifyingKey,
            pb.RegisterVerifyingKeyRequest(
                scheme=Scheme.parse(scheme).label, format=format, vk=vk, settings=settings or b""
            ),
        )
        return "0x" + bytes(r.vk_hash).hex()

    async def submit(
        self,
        scheme: Scheme | str,
        format: str,
        proof: bytes,
        *,
        vk: bytes | None = None,
        vk_hash: bytes | str | None = None,
        public: bytes | None = None,
        settings: bytes | None = None,
        domain_id: int = 0,
        auth: ProverAuth | None = None,
    ) -> SubmitResult:
        """Submit one proof (producer format: "snarkjs", "gnark", "ezkl"). Retrying is safe: the same
        statement in the same domain gets the same proof_id (`duplicate=True`)."""
        if (vk is None) == (vk_hash is None):
            raise ValueError("give exactly one of vk, vk_hash")
        req = pb.SubmitProofRequest(
            scheme=Scheme.parse(scheme).label,
            format=format,
            proof=proof,
            public=public or b"",
            settings=settings or b"",
            domain_id=domain_id,
        )
        if vk is not None:
            req.vk = vk
        else:
            assert vk_hash is not None
            req.vk_hash = from_hex(vk_hash)
        if auth is not None:
            req.auth.prover, req.auth.signature, req.auth.nonce = auth.prover, auth.signature, auth.nonce
        return SubmitResult.from_pb(await self._unary(self.stub.SubmitProof, req))

    async def status(self, proof_id: str) -> StatusUpdate:
        m = await self._unary(self.stub.GetProofStatus, pb.GetProofStatusRequest(proof_id=proof_id))
        return StatusUpdate.from_pb(m)

    async def aggregation(self, aggregation_id: int, domain_id: int = 0) -> Aggregation:
        """domain_id 0 = the aggregator's default domain."""
        m = await self._unary(
            self.stub.GetAggregation,
            pb.GetAggregationRequest(domain_id=domain_id, aggregation_id=aggregation_id),
        )
        return Aggregation.from_pb(m)

    async def inclusion(self, proof_id: str) -> InclusionProof:
        """The Merkle inclusion receipt (NOT_FOUND/NOT_FINALIZED until the proof is FINALIZED)."""
        m = await self._unary(self.stub.GetInclusionProof, pb.GetInclusionProofRequest(proof_id=proof_id))
        return InclusionProof.from_pb(m)

    async def watch(self, proof_id: str, *, replay: bool = False) -> AsyncGenerator[StatusUpdate, None]:
        """Status updates of `proof_id` until it is terminal (the stream then ends).

        The server's stream starts from the proof's first event; without `replay` the events up to
        the current status (one GetProofStatus before the stream opens) are skipped, so only new
        transitions arrive. A broken stream (UNAVAILABLE, ..., or closed by a server shutting down
        before a terminal status) is reopened with backoff and resumes after the last event yielded.
        Events are ordered by (updated_unix_ms, status).
        """
        cursor: tuple[int, int] | None = None
        if not replay:
            s = await self.status(proof_id)
            cursor = (s.updated_unix_ms, int(s.status))
        n = 0
        while True:
            ended = False  # the stream's last event was terminal (the server then ends it)
            call = self.stub.WatchProof(pb.WatchProofRequest(proof_id=proof_id))
            try:
                async for m in call:
                    u = StatusUpdate.from_pb(m)
                    ended = u.terminal  # the last event: a FAILED proof may be resubmitted (QUEUED again)
                    key = (u.updated_unix_ms, int(u.status))
                    if cursor is not None and key <= cursor:
                        continue
                    cursor, n = key, 0
                    yield u
                if ended:
                    return
                # a clean end before any terminal status: the server shut down (restart, deploy)
                err = SheafError(
                    grpc.StatusCode.UNAVAILABLE,
                    "STREAM_CLOSED",
                    "proof_id",
                    f"the watch stream of {proof_id} closed before a terminal status",
                    proof_id=proof_id,
                )
                cause: BaseException | None = None
            except grpc.aio.AioRpcError as e:
                err, cause = SheafError.from_rpc(e), e
            finally:
                call.cancel()
            if not err.retryable or n + 1 >= self.retry.attempts:
                raise err from cause
            d = self.retry.delay(n)
            if self.on_retry is not None:
                self.on_retry(err, n + 1, d)
            n += 1
            await asyncio.sleep(d)

    async def wait(self, proof_id: str, *, timeout: float = 300.0) -> StatusUpdate:
        """Follow `proof_id` to a terminal status (FINALIZED, REJECTED or FAILED) and return it (with
        aggregation_id / tx_hash filled in). Raises WaitTimeout (a SheafError) after `timeout` s."""
        last = await self.status(proof_id)
        if last.terminal:
            return last
        try:
            async with asyncio.timeout(timeout):
                async for u in self.watch(proof_id):
                    last = u
                    if u.terminal:
                        break
                # the stream ended (terminal) or closed: the status is the authority
                final = await self.status(proof_id)
        except TimeoutError:
            raise WaitTimeout(proof_id, last, timeout) from None
        if not final.terminal:
            raise WaitTimeout(proof_id, final, timeout)
        return final

    async def submit_and_wait(
        self,
        scheme: Scheme | str,
        format: str,
        proof: bytes,
        *,
        timeout: float = 300.0,
        **kw: Any,
    ) -> StatusUpdate:
        """submit(...) then wait(...): the terminal StatusUpdate. A REJECTED/FAILED proof is returned
        (check `.status`, `.reason_code`), not raised; a refused submission raises SheafError."""
        r = await self.submit(scheme, format, proof, **kw)
        return await self.wait(r.proof_id, timeout=timeout)

    # -- lists (ListProofs / ListAggregations: the HTTP list API's twins) --

    async def list_proofs(
        self,
        *,
        status: ProofStatus | str | None = None,
        scheme: Scheme | str | None = None,
        submitter: str | None = None,
        domain_id: int | None = None,
        vk_hash: bytes | str | None = None,
        statement_hash: bytes | str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page[ProofSummary]:
        """A page of proofs, newest first, matching every filter given (None: any). `limit` 1..100;
        `cursor`: the previous page's next_cursor. A bad filter raises SheafError MALFORMED."""
        req = pb.ListProofsRequest(limit=limit, cursor=cursor or "", submitter=submitter or "")
        if status is not None:
            req.status = _by_name(ProofStatus, status)  # type: ignore[assignment]
        if scheme is not None:
            req.scheme = int(Scheme.parse(scheme))  # type: ignore[assignment]
        if domain_id is not None:
            req.domain_id = domain_id
        if vk_hash is not None:
            req.vk_hash = from_hex(vk_hash)
        if statement_hash is not None:
            req.statement_hash = from_hex(statement_hash)
        r = await self._unary(self.stub.ListProofs, req)
        return Page(tuple(ProofSummary.from_pb(m) for m in r.proofs), r.next_cursor or None)

    async def list_aggregations(
        self,
        *,
        domain_id: int | None = None,
        state: str | None = None,
        kind: AggregationKind | str | None = None,
        tx_hash: bytes | str | None = None,
        root: bytes | str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> Page[Aggregation]:
        """A page of batches (aggregations, and failed attempts with aggregation_id 0), newest first.
        `state`: one of BATCH_STATES; entries carry no leaves (aggregation() has them)."""
        req = pb.ListAggregationsRequest(limit=limit, cursor=cursor or "", state=state or "")
        if domain_id is not None:
            req.domain_id = domain_id
        if kind is not None:
            req.kind = _by_name(AggregationKind, kind)  # type: ignore[assignment]
        if tx_hash is not None:
            req.tx_hash = from_hex(tx_hash)
        if root is not None:
            req.root = from_hex(root)
        r = await self._unary(self.stub.ListAggregations, req)
        return Page(tuple(Aggregation.from_pb(m) for m in r.aggregations), r.next_cursor or None)

    # -- whole inferences (docs/inference.md) --

    async def register_model(self, slices: Sequence[SliceSpec]) -> str:
        """Register a model spec with the aggregator; returns its id (0x-hex, = model_id(slices))."""
        req = pb.RegisterModelRequest()
        for s in slices:
            req.slices.add(
                proven=s.proven,
                scheme=s.scheme,
                vk_hash=from_hex(s.vk_hash) if s.proven else b"",
                public_input_count=s.public_input_count,
                in_commit_index=s.in_commit_index,
                out_commit_index=s.out_commit_index,
                output_indices=list(s.output_indices),
            )
        r = await self._unary(self.stub.RegisterModel, req)
        return "0x" + bytes(r.model_id).hex()

    async def model(self, model_id: str | bytes) -> tuple[SliceSpec, ...]:
        m = await self._unary(self.stub.GetModel, pb.GetModelRequest(model_id=from_hex(model_id)))
        return tuple(SliceSpec.from_pb(s) for s in m.slices)

    async def submit_inference(
        self,
        model_id: str | bytes,
        slices: Sequence[SliceInput | None],
        *,
        domain_id: int = 0,
        required_kind: AggregationKind | int = 0,
        auth: Sequence[ProverAuth | None] | None = None,
    ) -> InferenceSubmitted:
        """Submit every slice of one inference as one unit (None for an unproven slice). A slice's
        scheme defaults to the model's (one GetModel call). `auth`: per slice, when the aggregator
        requires prover authentication. Retrying is safe: the same inference gets the same id."""
        model: tuple[SliceSpec, ...] | None = None
        if any(s is not None and s.scheme is None for s in slices):
            model = await self.model(model_id)
        req = pb.SubmitInferenceRequest(
            model_id=from_hex(model_id),
            domain_id=domain_id,
            required_kind=int(required_kind),  # type: ignore[arg-type]
        )
        for i, s in enumerate(slices):
            entry = req.slices.add()
            if s is None:
                continue
            if (s.vk is None) == (s.vk_hash is None):
                raise ValueError(f"slice {i}: give exactly one of vk, vk_hash")
            scheme = (
                s.scheme if s.scheme is not None else (model[i].scheme if model and i < len(model) else 0)
            )
            p = entry.proof
            p.scheme = Scheme.parse(scheme).label
            p.format, p.proof = s.format, s.proof
            p.public, p.settings = s.public or b"", s.settings or b""
            if s.vk is not None:
                p.vk = s.vk
            else:
                assert s.vk_hash is not None
                p.vk_hash = from_hex(s.vk_hash)
            a = auth[i] if auth is not None and i < len(auth) else None
            if a is not None:
                p.auth.prover, p.auth.signature, p.auth.nonce = a.prover, a.signature, a.nonce
        return InferenceSubmitted.from_pb(await self._unary(self.stub.SubmitInference, req))

    async def inference_status(self, inference_id: str) -> InferenceStatus:
        m = await self._unary(self.stub.GetInferenceStatus, pb.GetInferenceRequest(inference_id=inference_id))
        return InferenceStatus.from_pb(m)

    async def get_inference_receipt(self, inference_id: str) -> InferenceReceipt:
        """Every proven slice's inclusion, as verifyInference takes it (NOT_FINALIZED until all are)."""
        m = await self._unary(
            self.stub.GetInferenceReceipt, pb.GetInferenceRequest(inference_id=inference_id)
        )
        return InferenceReceipt.from_pb(m)

    async def wait_inference(
        self, inference_id: str, *, timeout: float = 300.0, poll: float = 0.5
    ) -> InferenceStatus:
        """Poll until the inference is terminal (FINALIZED, or a slice REJECTED/FAILED); WaitTimeout after
        `timeout` s."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            st = await self.inference_status(inference_id)
            if st.terminal:
                return st
            if loop.time() >= end:
                raise WaitTimeout(inference_id, st, timeout)
            await asyncio.sleep(poll)
