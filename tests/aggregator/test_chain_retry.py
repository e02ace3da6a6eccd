"""Chain._retry's policy (tenacity) with a faked RPC boundary: which errors are retried, how many
attempts, what running out raises, and the ok flag healthy() reads. No node needed."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest
from web3.exceptions import ContractLogicError, TransactionNotFound

from aggregator.chain import Chain, RpcError


def chain(retries: int) -> Chain:
    return Chain("http://127.0.0.1:9", "0x" + "00" * 20, retries=retries)  # never contacted


def flaky(failures: list[BaseException], result: int = 7) -> tuple[list[int], Callable[[], Awaitable[int]]]:
    calls: list[int] = []

    async def fn() -> int:
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return result

    return calls, lambda: fn()  # as the callers pass it: a lambda returning an awaitable


async def test_transient_failures_are_retried_with_backoff() -> None:
    c = chain(retries=6)
    calls, fn = flaky([ConnectionError("refused"), TimeoutError("slow")])
    t0 = time.monotonic()
    assert await c._retry("block_number", fn) == 7
    elapsed = time.monotonic() - t0
    assert len(calls) == 3 and c.ok
    assert 0.3 <= elapsed < 2.0  # 0.1 s then 0.2 s, each +0-20% (upper bound: a busy CI machine)


async def test_running_out_of_attempts_raises_rpc_error() -> None:
    c = chain(retries=2)
    calls, fn = flaky([ConnectionError("refused")] * 5)
    with pytest.raises(RpcError, match=r"^nonce: ConnectionError: refused") as e:
        await c._retry("nonce", fn)
    assert len(calls) == 3 and not c.ok  # the first attempt and 2 retries
    assert isinstance(e.value.__cause__, ConnectionError)


@pytest.mark.parametrize("answer", [ContractLogicError("reverted"), TransactionNotFound("gone")])
async def test_an_answer_from_the_node_is_not_retried(answer: Exception) -> None:
    c = chain(retries=6)
    c.ok = False
    calls, fn = flaky([answer])
    with pytest.raises(type(answer)):
        await c._retry("call", fn)
    assert len(calls) == 1 and c.ok  # raised as is, at once; the node was reachable
