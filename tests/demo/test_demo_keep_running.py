"""`make demo KEEP_RUNNING=1` / `python -m demo --keep-running` (issue 16): after the run everything
stays up for browsing, the explorer's URL is printed, and Ctrl-C / SIGTERM then stops it all cleanly.

- test_hold_prints_where_everything_is_and_ends_on_sigterm: the hold itself, in its own process
  (no demo run): the URLs it prints, SIGTERM ending the hold (not the process), its time recorded.
- test_flag_and_make_variable_reach_the_run: --keep-running and $KEEP_RUNNING (what `make demo
  KEEP_RUNNING=1` sets: make puts command-line variables in the recipe's environment).
- test_demo_keep_running_serves_the_explorer (opt-in, SHEAF_TEST_DEMO_BROWSE=1: a real demo run
  without the ezkl slice, ~25 s on a quiet box, over the default suite's budget): the demo held open;
  its explorer page and the JSON it reads answer with the run's slices, batch and whole inference
  (slice 1 unproven); SIGTERM then stops everything and the demo exits 0.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import demo.run as demo_run

REPO_ROOT = Path(__file__).resolve().parents[2]

HOLD = """
import signal
from demo import run as d
signal.signal(signal.SIGTERM, d._on_sigterm)  # as run() installs it
s = {"aggregator": {"http_port": 18080, "grpc": "127.0.0.1:15051"}, "anvil": {"rpc": "http://127.0.0.1:18545"}}
d.hold(s, "0x" + "11" * 20, 31337)
print("HELD", s["kept_running_s"], s["explorer"], flush=True)
"""


def _read_until(p: subprocess.Popen[str], pattern: str, timeout: float) -> list[str]:
    assert p.stdout is not None
    lines: list[str] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        line = p.stdout.readline()
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"no {pattern!r} within {timeout}s:\n{''.join(lines)[-4000:]}")


def test_hold_prints_where_everything_is_and_ends_on_sigterm() -> None:
    p = subprocess.Popen(
        [sys.executable, "-c", HOLD], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        lines = _read_until(p, r"^   chain ", 60)
        text = "".join(lines)
        assert "   explorer     http://127.0.0.1:18080/explorer/\n" in text
        assert "127.0.0.1:15051" in text and "http://127.0.0.1:18545 (chain id 31337)" in text
        assert "0x" + "11" * 20 in text and "Ctrl-C" in text
        time.sleep(0.3)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert "interrupted: stopping" in out
    held = out.split("HELD ", 1)[1].split()
    assert float(held[0]) >= 0.3 and held[1] == "http://127.0.0.1:18080/explorer/"


@pytest.mark.parametrize(
    ("argv", "env", "want"),
    [([], "", False), (["--keep-running"], "", True), ([], "1", True), ([], "0", False)],
)
def test_flag_and_make_variable_reach_the_run(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], env: str, want: bool
) -> None:
    got: list[Any] = []
    monkeypatch.setattr(demo_run, "run", lambda *a: got.append(a) or 0)
    monkeypatch.setenv("KEEP_RUNNING", env)
    assert demo_run.main(argv) == 0
    assert got[0][6] is want  # run(..., keep_running, recursion)


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as r:
        body = r.read()
        return json.loads(body) if r.headers.get_content_type() == "application/json" else body.decode()


@pytest.mark.skipif(
    os.environ.get("SHEAF_TEST_DEMO_BROWSE") != "1", reason="a whole demo run: SHEAF_TEST_DEMO_BROWSE=1"
)
def test_demo_keep_running_serves_the_explorer(tmp_path: Path) -> None:
    summary = tmp_path / "summary.json"
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "demo",
            "--slices",
            "layer0,head",
            "--recursion",
            "off",
            "--workdir",
            str(tmp_path / "demo"),
            "--summary",
            str(summary),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, KEEP_RUNNING="1"),  # as `make demo KEEP_RUNNING=1`
    )
    try:
        lines = _read_until(p, r"^   chain ", 900)
        (url,) = [line.split()[1] for line in lines if line.startswith("   explorer ")]
        base = url.removesuffix("/explorer/")
        assert "<title>Sheaf explorer</title>" in _get(url)
        proofs = _get(base + "/v1/proofs?status=FINALIZED&limit=100")["proofs"]
        batches = _get(base + "/v1/batches?state=finalized")["batches"]
        (inf,) = _get(base + "/v1/inferences")["inferences"]
        assert len(proofs) == 2 and batches and all(b["kind"] == "ATTESTED" for b in batches)
        assert inf["status"] == "FINALIZED" and inf["slices"][1] is None
        assert {s["proof_id"] for s in inf["slices"] if s} == {p["proof_id"] for p in proofs}
        found = _get(base + "/v1/search?q=" + inf["inference_id"])
        assert [x["inference_id"] for x in found["inferences"]] == [inf["inference_id"]]
        time.sleep(1)
        assert p.poll() is None  # still up: held, not finished
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
    finally:
        # A check failed while the demo held: SIGTERM, so the demo stops what it started (anvil,
        # aggregator, operators run in their own sessions: a SIGKILL of the demo would orphan them).
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
    assert p.returncode == 0, out[-4000:] + err[-4000:]
    s = json.loads(summary.read_text())
    assert s["ok"] is True and s["kept_running_s"] >= 1 and s["explorer"] == url and s["leftover"] == []
    assert "interrupted: stopping" in out and "== demo finished" in out
