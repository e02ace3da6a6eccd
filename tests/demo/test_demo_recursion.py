"""The demo's recursive route without running it (the run itself: test_demo.py, opt-in
SHEAF_DEMO_RECURSIVE=1): the flag and $SHEAF_DEMO_RECURSION reach run(), a bad value is refused before
anything starts, the key-cache probe tells a warm machine from a new one, and the ticker reports
progress while a long step runs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import demo.run as demo_run


@pytest.mark.parametrize(
    ("argv", "env", "want"),
    [
        ([], None, True),
        (["--recursion", "off"], None, False),
        ([], "off", False),
        (["--recursion", "on"], "off", True),
    ],
)
def test_flag_and_env_reach_the_run(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], env: str | None, want: bool
) -> None:
    got: list[Any] = []
    monkeypatch.setattr(demo_run, "run", lambda *a: got.append(a) or 0)
    if env is None:
        monkeypatch.delenv("SHEAF_DEMO_RECURSION", raising=False)
    else:
        monkeypatch.setenv("SHEAF_DEMO_RECURSION", env)
    assert demo_run.main(argv) == 0
    assert got[0][7] is want


def test_bad_env_value_is_refused_before_anything_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(demo_run, "run", lambda *a: pytest.fail("run() must not start"))
    monkeypatch.setenv("SHEAF_DEMO_RECURSION", "yes")
    assert demo_run.main([]) == 2
    assert "SHEAF_DEMO_RECURSION must be on or off, got 'yes'" in capsys.readouterr().err


def _entry(root: Path, name: str, shape: dict[str, int], pk: bool = True) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "meta.json").write_text(json.dumps({"shape": shape, "circuit_hash": name}))
    if pk:
        (d / "pk.dump").write_bytes(b"k")
    return d


def test_cached_outer_keys_finds_only_complete_entries_of_the_shape(tmp_path: Path) -> None:
    assert demo_run.cached_outer_keys(1, 2, tmp_path / "missing") is None
    _entry(tmp_path, "a", {"batch": 1, "npub": 1})  # another shape
    _entry(tmp_path, "b", {"batch": 1, "npub": 2, "plonk": 1})  # a PLONK slot: another circuit
    _entry(tmp_path, "c", {"batch": 1, "npub": 2}, pk=False)  # a setup that did not finish
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "meta.json").write_text("{not json")
    assert demo_run.cached_outer_keys(1, 2, tmp_path) is None
    want = _entry(tmp_path, "e", {"batch": 1, "npub": 2})
    assert demo_run.cached_outer_keys(1, 2, tmp_path) == want
    assert demo_run.cached_outer_keys(1, 1, tmp_path) == tmp_path / "a"


def test_elapsed_ticker_reports_while_the_step_runs_and_stops_after(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with demo_run.elapsed_ticker("b1_p2 keys", "~10 min", every_s=0.05):
        time.sleep(0.3)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= 2 and all("b1_p2 keys: 0m00s elapsed (estimate ~10 min)" in x for x in lines)
    time.sleep(0.15)
    assert capsys.readouterr().out == ""  # stopped with the block
    with demo_run.elapsed_ticker("load", None, every_s=0.05):
        time.sleep(0.12)
    assert "estimate" not in capsys.readouterr().out
