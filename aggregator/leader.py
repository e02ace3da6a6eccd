"""Which aggregator instance batches and posts: a lease row in PostgreSQL (docs/operations.md,
"PostgreSQL: several instances").

Every instance on one database accepts submissions, serves reads and operators; exactly one, the
lease holder, runs the batcher, the recursive prover, the signature sweep and the submitter. The
lease is a row (`leases`: holder, epoch, expires_at) renewed every ttl/3 with the database's clock;
when the holder dies (kill -9, lost host, lost network) its row expires after `ttl` and the next
instance that tries (every ttl/5) takes it with epoch + 1. A holder that cannot renew steps down
on its own monotonic clock before its row can expire (at 0.8 ttl from the renewal it last sent),
so two holders never act at once as long as clocks run at the same rate. A graceful stop releases
the row at once.

Why a lease row and not a session advisory lock (pg_try_advisory_lock): an advisory lock is tied
to one server connection, so it is lost without the holder noticing when that connection drops
(the holder must then check the connection before every action), is held for as long as a stalled
but connected process lives, does not survive a connection pooler in transaction mode, and shows
in pg_locks without an owner name or a term. A row names its holder, carries an epoch (a term
the metrics and /readyz show), bounds a stalled holder's tenure by time, and its takeover time is
a setting (`lease_ttl_s`: a kill -9'd leader is replaced within ttl + ttl/5).

Safety does not rest on the lease alone: two instances acting at once could not post a proof twice
(a proof joins a batch only from QUEUED, under its row lock; aggregation ids are unique per domain;
the registry takes ids in sequence), they would only waste work. The lease is what makes that rare.

`SoleLeader` is the embedded default's (SQLite: one instance, always leading).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from aggregator.metrics import Metrics

log = logging.getLogger("sheaf.leader")

LEASE = "leader"

_TAKE = """
INSERT INTO leases (name, holder, epoch, expires_at, acquired_at)
VALUES (%(name)s, %(me)s, 1, now() + make_interval(secs => %(ttl)s), now())
ON CONFLICT (name) DO UPDATE SET
    holder = excluded.holder,
    epoch = CASE WHEN leases.holder = excluded.holder THEN leases.epoch ELSE leases.epoch + 1 END,
    acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at ELSE now() END,
    expires_at = excluded.expires_at
WHERE leases.holder = excluded.holder OR leases.expires_at < now()
RETURNING epoch
"""
_READ = "SELECT holder, epoch, EXTRACT(EPOCH FROM expires_at - now()) FROM leases WHERE name = %s"
_RELEASE = "UPDATE leases SET expires_at = now() - interval '1 second' WHERE name = %s AND holder = %s"

Hook = Callable[[], Awaitable[None]]


def instance_id(name: str = "") -> str:
    """A holder name unique to this process: `name` (or host:pid) plus a random suffix, so that a
    restarted instance never mistakes its predecessor's lease for its own."""
    return f"{name or f'{socket.gethostname()}:{os.getpid()}'}/{uuid.uuid4().hex[:8]}"


class SoleLeader:
    """One instance (SQLite): it leads from start to stop."""

    def __init__(self, metrics: Metrics | None = None, instance: str = "") -> None:
        self.instance = instance_id(instance)
        self.leading = False
        self.reachable = True
        if metrics is not None:
            _describe(metrics, self)

    async def run(self, on_acquire: Hook, on_lose: Hook) -> None:
        self.leading = True
        await on_acquire()
        await asyncio.Event().wait()  # until cancelled (stop)

    async def release(self) -> None:
        self.leading = False

    def state(self) -> dict[str, Any]:
        return {"instance": self.instance, "leader": self.leading, "holder": self.instance, "epoch": 0}


class PgLease:
    """The lease on PostgreSQL (its own connection, so that a long store call never delays a
    renewal). `run(on_acquire, on_lose)` until cancelled: hooks start/stop the leader's loops."""

    def __init__(
        self, url: str, *, ttl_s: float = 5.0, instance: str = "", metrics: Metrics | None = None
    ) -> None:
        if ttl_s < 1.0:
            raise ValueError("lease_ttl_s must be >= 1")
        self.url = url
        self.ttl = ttl_s
        self.instance = instance_id(instance)  # `instance`: a name; the suffix makes it unique
        self.leading = False
        self.reachable = False  # the last attempt reached the database
        self.epoch = 0
        self.holder = ""
        self.expires_in = 0.0
        self.acquired = 0  # times this instance took the lease
        self._conn: psycopg.AsyncConnection[tuple[Any, ...]] | None = None
        self._valid_until = 0.0  # monotonic: step down at this time unless renewed
        if metrics is not None:
            _describe(metrics, self)

    async def _c(self) -> psycopg.AsyncConnection[tuple[Any, ...]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = await psycopg.AsyncConnection.connect(
                self.url,
                autocommit=True,
                application_name=f"sheaf-lease {self.instance}"[:63],
                connect_timeout=max(1, int(self.ttl / 2)),
            )
        return self._conn

    async def try_take(self) -> bool:
        """One attempt to take or renew the lease (a statement bounded by ttl/3)."""
        sent = time.monotonic()
        try:
            c = await self._c()
            async with asyncio.timeout(self.ttl / 3):
                args = {"name": LEASE, "me": self.instance, "ttl": self.ttl}
                r = await (await c.execute(_TAKE, args)).fetchone()
                row = await (await c.execute(_READ, (LEASE,))).fetchone()
        except (psycopg.Error, OSError, TimeoutError) as e:
            if self.reachable:
                log.warning("lease: the attempt failed (retrying): %s", e)
            self.reachable = False
            if self._conn is not None:
                await self._conn.close()
                self._conn = None
            return False
        self.reachable = True
        if row is not None:
            self.holder, self.epoch, self.expires_in = str(row[0]), int(row[1]), float(row[2])
        if r is None:
            return False
        # the row expires at (database now at execution) + ttl, which is after `sent` + ttl
        self._valid_until = sent + 0.8 * self.ttl
        return True

    async def run(self, on_acquire: Hook, on_lose: Hook) -> None:
        try:
            while True:
                took = await self.try_take()
                if took and not self.leading:
                    self.leading = True
                    self.acquired += 1
                    log.info("lease: %s leads (epoch %d)", self.instance, self.epoch)
                    await on_acquire()
                elif not took and self.leading and time.monotonic() >= self._valid_until:
                    await self._step_down(on_lose, "the lease could not be renewed in time")
                elif not took and self.leading and self.holder and self.holder != self.instance:
                    await self._step_down(on_lose, f"{self.holder} holds the lease")
                if self.leading:
                    # renew every ttl/3, and always before the local deadline
                    await asyncio.sleep(max(0.05, min(self.ttl / 3, self._valid_until - time.monotonic())))
                else:
                    await asyncio.sleep(self.ttl / 5)
        finally:
            if self.leading:
                self.leading = False
                await on_lose()

    async def _step_down(self, on_lose: Hook, why: str) -> None:
        log.warning("lease: %s steps down: %s", self.instance, why)
        self.leading = False
        await on_lose()

    async def release(self) -> None:
        """Give the lease up now (graceful stop): another instance takes it at its next attempt."""
        self.leading = False
        try:
            c = await self._c()
            async with asyncio.timeout(2.0):
                await c.execute(_RELEASE, (LEASE, self.instance))
        except (psycopg.Error, OSError, TimeoutError) as e:
            log.warning("lease: release failed (it expires on its own): %s", e)
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def state(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "leader": self.leading,
            "holder": self.holder,
            "epoch": self.epoch,
            "expires_in_s": round(self.expires_in, 3),
        }


Leadership = SoleLeader | PgLease


def _describe(m: Metrics, lease: SoleLeader | PgLease) -> None:
    m.describe("sheaf_leader", "1 if this instance holds the batching/posting lease")
    m.gauge("sheaf_leader", lambda: {(("instance", lease.instance),): float(lease.leading)})
    m.describe("sheaf_lease_epoch", "The lease's epoch (+1 at every change of holder), as last read")
    m.gauge("sheaf_lease_epoch", lambda: {(): float(lease.state()["epoch"])})
    m.describe("sheaf_lease_reachable", "1 if the last lease attempt reached the database")
    m.gauge("sheaf_lease_reachable", lambda: {(): float(lease.reachable)})
