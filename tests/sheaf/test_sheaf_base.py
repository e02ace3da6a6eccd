"""The shared base: the one scheme list agrees with the proto enums and the statement hash's
scheme byte; the LRU is bounded and evicts least recently used first; the error table maps
codes to the statuses both servers answer with."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from sheaf import errors, paths, schemes
from sheaf.lru import LRU
from sheaf.v1 import envelope_pb2 as pb


def test_scheme_table_matches_proto_enums() -> None:
    proto = {n: v for n, v in pb.Scheme.items() if v != 0}
    assert proto == {s.name: s.value for s in schemes.Scheme}
    producers = {n: v for n, v in pb.ProducerKind.items() if v != 0}
    assert producers == {p.name: p.value for p in schemes.Producer}


def test_every_scheme_has_one_row_with_formats() -> None:
    rows = [info.scheme for info in schemes.SCHEMES]
    assert sorted(rows) == sorted(schemes.Scheme)
    for s in schemes.Scheme:
        assert schemes.formats_of(s), s


def test_scheme_parse_is_strict_and_names_the_known_ones() -> None:
    assert schemes.Scheme.parse("PLONK") is schemes.Scheme.PLONK
    with pytest.raises(ValueError, match="groth16, plonk, halo2"):
        schemes.Scheme.parse("fflonk")


def test_lru_is_bounded_and_evicts_least_recently_used() -> None:
    evicted: list[tuple[int, str]] = []
    c: LRU[int, str] = LRU(2, on_evict=lambda k, v: evicted.append((k, v)))
    c.put(1, "a")
    c.put(2, "b")
    assert c.get(1) == "a"  # 1 is now the most recent
    c.put(3, "c")
    assert evicted == [(2, "b")]
    assert 2 not in c and 1 in c and 3 in c
    assert len(c) == 2
    assert c.get_or_put(4, lambda: "d") == "d"
    assert len(c) == 2


def test_lru_under_concurrent_puts_never_exceeds_its_bound() -> None:
    c: LRU[int, int] = LRU(16)

    def fill(base: int) -> None:
        for i in range(500):
            c.put(base + i, i)

    ts = [threading.Thread(target=fill, args=(k * 1000,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(c) == 16


@pytest.mark.parametrize(
    ("err", "grpc", "http"),
    [
        (errors.InvalidInput("MALFORMED", "proof", "x"), "INVALID_ARGUMENT", 400),
        (errors.InvalidInput("TOO_LARGE", "proof", "x"), "RESOURCE_EXHAUSTED", 413),
        (errors.NotFound("UNKNOWN_PROOF", "proof_id", "x"), "NOT_FOUND", 404),
        (errors.Exhausted("RATE_LIMITED", "auth.prover", "x"), "RESOURCE_EXHAUSTED", 429),
        (errors.Unauthenticated("BAD_SIGNATURE", "auth.signature", "x"), "UNAUTHENTICATED", 401),
        (errors.Unauthenticated("NOT_OPERATOR", "operator", "x"), "PERMISSION_DENIED", 403),
        (errors.Exhausted("SHUTTING_DOWN", "service", "x"), "UNAVAILABLE", 503),
    ],
)
def test_one_status_table(err: errors.SheafError, grpc: str, http: int) -> None:
    st = errors.status_of(err)
    assert (st.grpc, st.http) == (grpc, http)
    assert err.to_dict() == {"code": err.code, "field": err.field, "message": "x"}


def test_a_set_sheaf_gnark_bin_never_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$SHEAF_GNARK_BIN names the build to run: a typo there must not silently pick build/bin or
    PATH (another build, other circuits and keys)."""
    working = tmp_path / "sheaf-gnark"
    working.write_text("#!/bin/sh\n")
    working.chmod(0o755)
    monkeypatch.setattr(paths, "REPO_BIN", working)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("SHEAF_GNARK_BIN", str(tmp_path / "typo"))
    with pytest.raises(paths.BinaryNotFound, match=r"typo.*SHEAF_GNARK_BIN"):
        paths.gnark_binary()
    monkeypatch.delenv("SHEAF_GNARK_BIN")
    assert paths.gnark_binary() == working
    monkeypatch.setenv("SHEAF_GNARK_BIN", str(working))
    assert paths.gnark_binary() == working
