"""Suite-wide ordering: tests that need the b1_p1 outer circuit's keys run last.

tools/run-tests starts `sheaf-gnark aggregate setup --batch 1 --npub 1` in the background when
pytest begins (on a cold $SHEAF_CACHE that setup takes ~13 minutes on 2 cores). Running its users
last lets the rest of the suite overlap it; if they arrive early they simply wait for it (the
setup lock in gnark/aggregation/keylock.go), and without run-tests they run the setup themselves.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rest = [i for i in items if i.get_closest_marker("outer_keys") is None]
    last = [i for i in items if i.get_closest_marker("outer_keys") is not None]
    items[:] = rest + last  # stable: each group keeps its collection order
