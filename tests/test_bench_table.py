"""bench/table.py: make bench's tables keep one line per row in logs (stdout not a terminal)."""

from __future__ import annotations

import pytest

from bench.table import show


def test_rows_stay_one_line_and_align(capsys: pytest.CaptureFixture[str]) -> None:
    peer = "snarkjs groth16.verify (node, in-process loop) " * 4  # far wider than 80 columns
    show(
        "title",
        ["scheme", "p/s", "peer"],
        [["groth16", 1654.1, peer], ["plonk", None, "x"]],
        left={"scheme", "peer"},
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "title" and out[1].split() == ["scheme", "p/s", "peer"]
    rows = [ln for ln in out if ln.startswith(("groth16", "plonk"))]
    assert len(rows) == 2 and rows[0].rstrip().endswith(peer.rstrip())  # not wrapped
    # figures are right-aligned in their column, a missing one is "-"
    assert rows[0].index("1654.1") + len("1654.1") == rows[1].index("-") + 1
