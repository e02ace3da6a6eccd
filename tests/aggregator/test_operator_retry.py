"""The operator's poll loop (aggregator/operator.py, tenacity): an aggregator that cannot be reached
is retried with a doubling backoff, and stopping ends the wait at once. Real gRPC to a closed
loopback port; no chain needed (the operator only signs what it fetches)."""

from __future__ import annotations

import asyncio
import logging
import re
import time

import pytest

from aggregator.operator import OperatorProcess
from deploy.anvil import ANVIL_DEV_KEYS, free_port


async def test_unreachable_aggregator_is_retried_with_backoff_and_stop_is_prompt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="aggregator.operator")
    op = OperatorProcess(f"127.0.0.1:{free_port()}", ANVIL_DEV_KEYS[1], wait_ms=200)  # nothing listens
    run = asyncio.create_task(op.run())
    await asyncio.sleep(2.0)  # 0.2 + 0.4 + 0.8 s of waits: at least three retries logged
    waits = [
        float(w)
        for w in re.findall(r"aggregator unreachable \(UNAVAILABLE\); retrying in ([0-9.]+)s", caplog.text)
    ]
    assert waits[:3] == [0.2, 0.4, 0.8], caplog.text
    assert not run.done()
    t0 = time.monotonic()
    op.stopping.set()  # mid-wait: the backoff sleep ends now, run() returns without an error
    await asyncio.wait_for(run, 2.0)
    assert time.monotonic() - t0 < 1.0
