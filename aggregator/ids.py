"""`AggregationIds`: the registry's next aggregation id per domain, as last seen.

Aggregation ids are sequential per domain on chain. The store allocates them (at least this floor:
another aggregator or an earlier database may have used ids); the submitter reports what the
registry says after each look at the chain (`observe`); the batcher and the prover read `floor`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("sheaf.aggregator")


class AggregationIds:
    def __init__(self, reader: Callable[[int], Awaitable[int]] | None = None) -> None:
        # domain -> registry's nextAggregationId, kept fresh by the submitter
        self._next: dict[int, int] = {}
        self.reader = reader  # reads nextAggregationId for a domain we have not seen yet

    def forget(self) -> None:
        """Read the registry again before the next allocation (an instance that starts leading:
        while it followed, the leader moved the ids on)."""
        self._next.clear()

    def observe(self, domain: int, next_id: int) -> None:
        """The registry's nextAggregationId for `domain` is `next_id` (the submitter just read it)."""
        self._next[domain] = next_id

    async def floor(self, domain: int) -> int:
        """The lowest id a new aggregation of `domain` may take. Without a reader, or while the node
        is down, the local sequence alone decides (floor 1)."""
        if domain not in self._next and self.reader is not None:
            try:
                self._next[domain] = await self.reader(domain)
            except Exception as e:
                log.warning("cannot read next aggregation id of domain %d: %s", domain, e)
        return self._next.get(domain, 1)
