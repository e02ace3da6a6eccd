"""sheaf/logs.py: JSON log lines with fixed fields and the `extra=` ids, text lines, the
--log-format / $SHEAF_LOG_FORMAT choice, and a real entry point (`aggregator operator` against a
closed port) whose every stderr line parses as such a JSON object."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sheaf.logs import log_format, setup_logging

ROOT = Path(__file__).resolve().parents[2]
FIXED = ["ts", "level", "logger", "msg"]


@pytest.fixture
def root_logger() -> Iterator[None]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_json_lines_carry_fixed_fields_extras_and_tracebacks(
    root_logger: None, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("INFO", "json")
    log = logging.getLogger("sheaf.test")
    log.info("proof %s accepted", "1-0xab", extra={"proof_id": "1-0xab", "domain": 1})
    log.debug("below the level")
    try:
        raise ValueError("bad")
    except ValueError:
        log.exception("batch %d failed", 7, extra={"batch_id": 7, "code": "INTERNAL"})
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert list(first)[:4] == FIXED and first["ts"].endswith("Z")
    assert (first["level"], first["logger"], first["msg"]) == ("INFO", "sheaf.test", "proof 1-0xab accepted")
    assert (first["proof_id"], first["domain"]) == ("1-0xab", 1)
    assert (second["level"], second["batch_id"], second["code"]) == ("ERROR", 7, "INTERNAL")
    assert "ValueError: bad" in second["exc"]


def test_text_lines_are_one_readable_line(root_logger: None, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "text")
    logging.getLogger("sheaf.test").warning("batch %d failed", 7, extra={"batch_id": 7})
    (line,) = capsys.readouterr().err.splitlines()
    assert "WARNING" in line and "batch 7 failed" in line and "[sheaf.test]" in line and "batch_id=7" in line


def test_flag_beats_env_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHEAF_LOG_FORMAT", raising=False)
    assert log_format(None, "json") == "json"
    monkeypatch.setenv("SHEAF_LOG_FORMAT", "text")
    assert log_format(None, "json") == "text"
    assert log_format("json", "text") == "json"
    monkeypatch.setenv("SHEAF_LOG_FORMAT", "yaml")
    with pytest.raises(ValueError, match=r"SHEAF_LOG_FORMAT='yaml': must be one of json, text"):
        log_format(None, "json")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_real_entry_point_logs_json_lines() -> None:
    """`aggregator operator` with no aggregator: it logs its SRS line and its retries; each stderr
    line is one JSON object with the fixed fields (and the operator's `extra=` ids)."""
    env = dict(
        os.environ,
        SHEAF_OPERATOR_KEY="0x" + "11" * 32,
        SHEAF_LOG_FORMAT="text",  # the flag beats the env
    )
    env.pop("SHEAF_SRS", None)
    aggregator = str(Path(sys.executable).parent / "aggregator")  # the console script
    cmd = [aggregator, "--log-format", "json", "operator", "--target", f"127.0.0.1:{_closed_port()}"]
    with subprocess.Popen(
        cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    ) as p:
        assert p.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("unreachable" in x for x in lines):
            line = p.stderr.readline()
            if not line:
                break
            lines.append(line)
        p.send_signal(signal.SIGTERM)
        _, rest = p.communicate(timeout=30)
    lines += rest.splitlines(keepends=True)
    objs = [json.loads(x) for x in lines if x.strip()]
    assert objs and all(list(o)[:4] == FIXED for o in objs), lines
    assert any(o["logger"] == "sheaf.cli" and o["msg"].startswith("operator:") for o in objs)
    assert any("unreachable" in o["msg"] and o["level"] == "WARNING" for o in objs)
