"""The SDK's retry policy for unary calls (tenacity under AsyncClient._retrying), with the gRPC
boundary faked: a call failing with retryable statuses then succeeding, the attempt limit, and
errors that are never retried. The live tests (test_client_live.py) cover it against a server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import pytest
from sheaf_client import AsyncClient, Retry, SheafError


def rpc_error(status: grpc.StatusCode, code: str = "") -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata(("sheaf-error-code", code)) if code else grpc.aio.Metadata()
    return grpc.aio.AioRpcError(status, grpc.aio.Metadata(), trailing, details="fake")


def flaky(failures: list[BaseException]) -> tuple[list[int], Callable[[], Awaitable[str]]]:
    calls: list[int] = []

    async def call() -> str:
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return "ok"

    return calls, lambda: call()  # as _unary passes it: a lambda returning an awaitable


async def test_retryable_errors_are_retried_with_capped_backoff() -> None:
    seen: list[tuple[str, int, float]] = []
    policy = Retry(attempts=6, initial=0.01, max_delay=0.015)
    hook = lambda e, n, d: seen.append((e.code, n, d))  # noqa: E731
    async with AsyncClient("127.0.0.1:9", retry=policy, on_retry=hook) as c:
        unavailable = rpc_error(grpc.StatusCode.UNAVAILABLE)
        calls, fn = flaky([unavailable, rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED")])
        assert await c._retrying(fn) == "ok"
    assert len(calls) == 3
    assert [(code, n) for code, n, _ in seen] == [("", 1), ("RATE_LIMITED", 2)]
    assert 0 <= seen[0][2] <= 0.01 and 0 <= seen[1][2] <= 0.015  # full jitter under min(cap, initial*2^n)


async def test_attempts_bound_the_calls_and_the_last_error_is_a_sheaf_error() -> None:
    async with AsyncClient("127.0.0.1:9", retry=Retry(attempts=3, initial=0.001, max_delay=0.001)) as c:
        calls, fn = flaky([rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED)] * 5)
        with pytest.raises(SheafError) as e:
            await c._retrying(fn)
    assert len(calls) == 3 and e.value.status == grpc.StatusCode.DEADLINE_EXCEEDED
    assert isinstance(e.value.__cause__, grpc.aio.AioRpcError)


@pytest.mark.parametrize(
    "error",
    [
        rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED"),
        rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_LARGE"),
        rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED),  # gRPC's own message-size limit
    ],
)
async def test_final_errors_are_not_retried(error: grpc.aio.AioRpcError) -> None:
    seen: list[SheafError] = []
    hook = lambda e, n, d: seen.append(e)  # noqa: E731
    async with AsyncClient("127.0.0.1:9", retry=Retry(attempts=6), on_retry=hook) as c:
        calls, fn = flaky([error])
        with pytest.raises(SheafError) as e:
            await c._retrying(fn)
    assert len(calls) == 1 and seen == [] and e.value.status == error.code()
