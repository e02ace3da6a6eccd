"""The Store's whole-inference block (put_model, get_model, put_inference, get_inference) on every
backend: idempotent inserts that leave the first record alone, and records that survive a reopen
(a new connection, as after a crash)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from aggregator.store import SqliteStore, Store
from aggregator.store_pg import PostgresStore

BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Callable[[], Store]]] = {
    "sqlite": lambda req, tmp: lambda: SqliteStore(tmp / "a.db"),
    "postgres": lambda req, tmp: lambda: PostgresStore(req.getfixturevalue("pg_url")),
}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_models_and_inferences_are_durable_and_idempotent(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    open_store = BACKENDS[backend](request, tmp_path)
    mid, other = b"\x01" * 32, b"\x02" * 32
    s = open_store()
    try:
        assert s.get_model(mid) is None and s.get_inference("1-ab") is None
        assert s.put_model(mid, '[{"proven":true}]') is True
        assert s.put_model(mid, "changed") is False  # the id is the spec's hash: the first one stays
        assert s.put_model(other, "[]") is True
        assert s.put_inference("1-ab", 1, mid, b"\xab" * 32, 2, '{"proof_ids":["1-x"]}') is True
        assert s.put_inference("1-ab", 9, other, b"\x00" * 32, 0, "{}") is False
    finally:
        s.close()
    s = open_store()  # reopened: what was acknowledged is there
    try:
        assert s.get_model(mid) == '[{"proven":true}]' and s.get_model(other) == "[]"
        assert s.get_inference("1-ab") == (1, mid, b"\xab" * 32, 2, '{"proof_ids":["1-x"]}')
    finally:
        s.close()
