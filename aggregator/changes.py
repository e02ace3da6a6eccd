"""`Changes`: the one "something changed" signal the aggregator's loops wait on (new proofs committed,
a batch made, signed, proved or posted), and the flag that tells them to stop."""

from __future__ import annotations

import asyncio


class Changes:
    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.closed = False  # set once by the service's stop(): loops end, long-polls return

    def notify(self) -> None:
        """Wake every waiter (each waits on the event current when it started)."""
        ev, self._event = self._event, asyncio.Event()
        ev.set()

    async def wait(self, timeout: float) -> None:
        """Return at the next notify() or after `timeout` seconds, whichever comes first."""
        ev = self._event
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except TimeoutError:
            pass

    def close(self) -> None:
        self.closed = True
        self.notify()
