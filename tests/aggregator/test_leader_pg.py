"""The leader lease (aggregator.leader.PgLease) on the session's real PostgreSQL, in-process: one
holder at a time, takeover after expiry with a new epoch, immediate takeover after a release, and a
holder that cannot renew steps down before its row expires. (Two real processes and kill -9:
test_pg_failover.py.)"""

from __future__ import annotations

import asyncio
import time

import psycopg

from aggregator.leader import PgLease
from aggregator.metrics import Metrics
from aggregator.store_pg import PostgresStore


class Loops:
    """Stands for the leader's loops: records when they start and stop."""

    def __init__(self) -> None:
        self.log: list[tuple[str, float]] = []

    async def lead(self) -> None:
        self.log.append(("lead", time.monotonic()))

    async def follow(self) -> None:
        self.log.append(("follow", time.monotonic()))


async def _until(cond: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_one_holder_takeover_on_expiry_and_on_release(pg_url: str) -> None:
    PostgresStore(pg_url).close()  # the schema (the lease table is in it)
    m = Metrics()
    a, b = PgLease(pg_url, ttl_s=1.0, instance="a", metrics=m), PgLease(pg_url, ttl_s=1.0, instance="b")
    la, lb = Loops(), Loops()
    ta = asyncio.create_task(a.run(la.lead, la.follow))
    await _until(lambda: a.leading, 5)
    tb = asyncio.create_task(b.run(lb.lead, lb.follow))
    await asyncio.sleep(1.5)  # several renewals (every ttl/3): b never gets it
    assert a.leading and not b.leading and b.holder == a.instance and b.reachable
    assert f'sheaf_leader{{instance="{a.instance}"}} 1' in m.render()
    epoch = a.epoch

    # a dies without a word (its task is gone, its row stays): b takes over once the row expires
    ta.cancel()
    await asyncio.gather(ta, return_exceptions=True)
    assert la.log[-1][0] == "follow"  # the loops stop with the task
    gone = time.monotonic()
    await _until(lambda: b.leading, 3)
    assert 0.5 < time.monotonic() - gone < 1.0 + 0.2 + 0.5  # expiry (ttl) + one attempt (ttl/5)
    assert b.epoch == epoch + 1 and lb.log == [("lead", lb.log[0][1])]

    # a graceful stop releases: a new instance takes it at its first attempt
    tb.cancel()
    await asyncio.gather(tb, return_exceptions=True)
    await b.release()
    c = PgLease(pg_url, ttl_s=1.0, instance="c")
    assert await c.try_take() and c.epoch == epoch + 2
    await c.release()


async def test_a_holder_that_cannot_renew_steps_down_before_expiry(pg_url: str) -> None:
    PostgresStore(pg_url).close()
    a = PgLease(pg_url, ttl_s=1.0, instance="a")
    la = Loops()
    ta = asyncio.create_task(a.run(la.lead, la.follow))
    await _until(lambda: a.leading, 5)
    # the database becomes unreachable for a: its renewals fail (a wrong password from now on)
    a.url = pg_url.replace("@127.0.0.1", "x@127.0.0.1")
    assert a._conn is not None
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (a._conn.info.backend_pid,))
        cut = time.monotonic()
        await _until(lambda: not a.leading, 2)
        stepped = time.monotonic() - cut
        row = admin.execute("SELECT EXTRACT(EPOCH FROM expires_at - now()) FROM leases").fetchone()
    assert row is not None and float(row[0]) > 0  # it stepped down while its row was still valid
    assert stepped < 1.0 and [k for k, _ in la.log] == ["lead", "follow"] and not a.reachable
    ta.cancel()
    await asyncio.gather(ta, return_exceptions=True)
