"""Client: the blocking twin of AsyncClient. It runs one AsyncClient on a private event-loop thread,
so both share every behaviour (retries, watch without replay, typed results, errors)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Coroutine, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

from sheaf_client._async import AsyncClient
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
)

T = TypeVar("T")


class Client:
    """Same constructor arguments and methods as AsyncClient, blocking."""

    def __init__(self, target: str, **kw: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="sheaf-client")
        self._thread.start()
        try:
            self._c: AsyncClient = self._run(self._make(target, kw))
        except BaseException:
            self._stop_loop()
            raise

    @staticmethod
    async def _make(target: str, kw: dict[str, Any]) -> AsyncClient:
        return AsyncClient(target, **kw)  # the grpc.aio channel belongs to the loop it is made on

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @property
    def aio(self) -> AsyncClient:
        return self._c

    def register_vk(self, scheme: Scheme | str, format: str, vk: bytes, settings: bytes | None = None) -> str:
        return self._run(self._c.register_vk(scheme, format, vk, settings))

    def submit(
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
        return self._run(
            self._c.submit(
                scheme,
                format,
                proof,
                vk=vk,
                vk_hash=vk_hash,
                public=public,
                settings=settings,
                domain_id=domain_id,
                auth=auth,
            )
        )

    def status(self, proof_id: str) -> StatusUpdate:
        return self._run(self._c.status(proof_id))

    def aggregation(self, aggregation_id: int, domain_id: int = 0) -> Aggregation:
        return self._run(self._c.aggregation(aggregation_id, domain_id))

    def inclusion(self, proof_id: str) -> InclusionProof:
        return self._run(self._c.inclusion(proof_id))

    def wait(self, proof_id: str, *, timeout: float = 300.0) -> StatusUpdate:
        return self._run(self._c.wait(proof_id, timeout=timeout))

    def submit_and_wait(
        self, scheme: Scheme | str, format: str, proof: bytes, *, timeout: float = 300.0, **kw: Any
    ) -> StatusUpdate:
        return self._run(self._c.submit_and_wait(scheme, format, proof, timeout=timeout, **kw))

    def watch(self, proof_id: str, *, replay: bool = False) -> Iterator[StatusUpdate]:
        """Blocking iterator over AsyncClient.watch (closing it cancels the stream)."""
        agen: AsyncGenerator[StatusUpdate, None] = self._c.watch(proof_id, replay=replay)

        async def step() -> tuple[bool, StatusUpdate | None]:
            try:
                return True, await agen.__anext__()
            except StopAsyncIteration:
                return False, None

        async def aclose() -> None:
            await agen.aclose()

        try:
            while True:
                ok, u = self._run(step())
                if not ok:
                    return
                assert u is not None
                yield u
        finally:
            self._run(aclose())

    # -- lists --

    def list_proofs(
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
        return self._run(
            self._c.list_proofs(
                status=status,
                scheme=scheme,
                submitter=submitter,
                domain_id=domain_id,
                vk_hash=vk_hash,
                statement_hash=statement_hash,
                limit=limit,
                cursor=cursor,
            )
        )

    def list_aggregations(
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
        return self._run(
            self._c.list_aggregations(
                domain_id=domain_id,
                state=state,
                kind=kind,
                tx_hash=tx_hash,
                root=root,
                limit=limit,
                cursor=cursor,
            )
        )

    # -- whole inferences --

    def register_model(self, slices: Sequence[SliceSpec]) -> str:
        return self._run(self._c.register_model(slices))

    def model(self, model_id: str | bytes) -> tuple[SliceSpec, ...]:
        return self._run(self._c.model(model_id))

    def submit_inference(
        self,
        model_id: str | bytes,
        slices: Sequence[SliceInput | None],
        *,
        domain_id: int = 0,
        required_kind: AggregationKind | int = 0,
        auth: Sequence[ProverAuth | None] | None = None,
    ) -> InferenceSubmitted:
        return self._run(
            self._c.submit_inference(
                model_id, slices, domain_id=domain_id, required_kind=required_kind, auth=auth
            )
        )

    def inference_status(self, inference_id: str) -> InferenceStatus:
        return self._run(self._c.inference_status(inference_id))

    def get_inference_receipt(self, inference_id: str) -> InferenceReceipt:
        return self._run(self._c.get_inference_receipt(inference_id))

    def wait_inference(
        self, inference_id: str, *, timeout: float = 300.0, poll: float = 0.5
    ) -> InferenceStatus:
        return self._run(self._c.wait_inference(inference_id, timeout=timeout, poll=poll))

    def close(self) -> None:
        try:
            self._run(self._c.close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
