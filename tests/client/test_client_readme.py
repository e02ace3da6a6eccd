"""client/README.md's ```python blocks, run in order as one session against a live aggregator
(real anvil + registry, operators running), from the repository root, as the README says."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "client" / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)


def test_readme_has_examples() -> None:
    blocks = python_blocks()
    assert len(blocks) >= 5
    assert any("submit_and_wait" in b for b in blocks) and any("AsyncClient" in b for b in blocks)


async def test_readme_examples_run(
    target: str, operators: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    operators.start()
    monkeypatch.setenv("SHEAF_TARGET", target)
    monkeypatch.chdir(ROOT)
    ns: dict[str, Any] = {"__name__": "readme"}

    def run_all() -> None:
        for n, code in enumerate(python_blocks()):
            exec(compile(code, f"{README}:block{n}", "exec"), ns)

    # the blocking Client must not run on the loop that serves the in-process aggregator
    await asyncio.wait_for(asyncio.to_thread(run_all), 300)
    out = capsys.readouterr().out
    assert "FINALIZED" in out and "INVALID_ARGUMENT VERIFICATION_FAILED" in out
    assert ns["receipt"].leaf == ns["mine"]
