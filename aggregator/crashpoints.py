"""TEST-ONLY crash injection at the aggregator's named durable steps.

`SHEAF_TEST_CRASH_AT=<step>[:<n>]` (read once, by `aggregator run` at startup) makes the process
exit with `os._exit(137)` (as kill -9 would: no cleanup, no flush) right after the n-th (default:
first) commit of that step in this process. Steps:

    ingest      a group of submissions committed (before the acks are sent)
    batch       a batch persisted (proofs AGGREGATING)
    attest      an operator's signature committed
    promote     a batch moved PENDING -> SIGNED (k signatures)
    post_sent   the posting transaction sent and its hash stored
    post_mined  the transaction seen mined (batch SUBMITTED at its block)
    finalize    the batch FINALIZED

and in `aggregator operator` (armed the same way, at its startup):

    sign        a batch's signature made (and recorded in --state) but not yet sent to the aggregator

tests/aggregator/test_agg_crashpoints.py crashes at each one and restarts. Never set it in
production (docs/operations.md).
"""

from __future__ import annotations

import os

ENV = "SHEAF_TEST_CRASH_AT"
STEPS = ("ingest", "batch", "attest", "promote", "post_sent", "post_mined", "finalize", "sign")

_armed: tuple[str, int] | None = None
_seen: dict[str, int] = {}


def arm_from_env() -> None:
    """Read SHEAF_TEST_CRASH_AT once (ValueError for an unknown step)."""
    global _armed
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        _armed = None
        return
    step, _, n = raw.partition(":")
    if step not in STEPS:
        raise ValueError(f"{ENV}: unknown step {step!r} (one of {', '.join(STEPS)})")
    _armed = (step, int(n) if n else 1)


def reached(step: str) -> None:
    """Called right after `step`'s commit; exits the process if armed for this occurrence."""
    if _armed is None or _armed[0] != step:
        return
    _seen[step] = _seen.get(step, 0) + 1
    if _seen[step] == _armed[1]:
        os._exit(137)
