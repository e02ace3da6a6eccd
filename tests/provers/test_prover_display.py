"""The prover CLI's output: the proof table (rich, borderless: one whitespace-separated line per
row whatever its width, for scripts reading stdout) and the proving progress (rich bars on a
terminal, plain lines elsewhere). No proving: the pipeline's reports are replayed."""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from provers.cli import ProveDisplay, _print_table, proof_grid, proof_table

STAGES = ("settings", "calibrate", "compile", "setup", "witness", "prove", "verify")


def replay(d: ProveDisplay) -> None:
    """What run_model reports for one gnark and one ezkl slice."""
    d.line("[1/2] a: proving with gnark-groth16 ...")
    d.line("[1/2] a: done in 0.1s")
    d.line("[2/2] b: proving with ezkl ...")
    for i, st in enumerate(STAGES):
        d.stage("[2/2] b", st, i, len(STAGES))
    d.stage("[2/2] b", "done", len(STAGES), len(STAGES))
    d.line("[2/2] b: done in 3.0s")


def test_off_a_terminal_progress_is_plain_lines(capsys: pytest.CaptureFixture[str]) -> None:
    with ProveDisplay(tty=False).shown() as d:
        replay(d)
    err = capsys.readouterr().err.splitlines()
    assert err[:3] == [
        "[1/2] a: proving with gnark-groth16 ...",
        "[1/2] a: done in 0.1s",
        "[2/2] b: proving with ezkl ...",
    ]
    assert err[3:10] == [f"[2/2] b: ezkl {st} ({i + 1}/7)" for i, st in enumerate(STAGES)]
    assert err[10:] == ["[2/2] b: done in 3.0s"]  # no line for "done": the pipeline says it
    assert all("\x1b" not in x for x in err)  # no escape codes in CI logs


def test_on_a_terminal_progress_is_a_bar_per_ezkl_slice() -> None:
    out = io.StringIO()
    display = ProveDisplay(tty=True, console=Console(file=out, force_terminal=True, width=100))
    with display.shown() as d:
        replay(d)
        assert d.bars is not None
        (task,) = d.bars.tasks
        assert (task.completed, task.total, task.description) == (7, 7, "[2/2] b: done")
    text = out.getvalue()
    assert "\x1b[" in text  # drawn as a live terminal display
    assert "[1/2] a: done in 0.1s" in text and "7/7" in text


def _row(name: str, **kw: Any) -> SimpleNamespace:
    return SimpleNamespace(name=name, **kw)


def test_proof_table_rows_stay_one_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    proofs = [
        _row("layer0_with_a_long_name", backend="gnark-groth16", prove_seconds=1.234, proof_size=256),
        _row("head", backend="ezkl", prove_seconds=12.5, proof_size=4128),
    ]
    results = [
        _row(
            "layer0_with_a_long_name",
            statement_hash=b"\x12" * 32,
            aggregation_id=3,
            kind="RECURSIVE",
            status="FINALIZED",
            tx_hash=b"\xab" * 32,
            gas_used=123456,
            included_on_chain=True,
        )
    ]
    _print_table(proof_grid(proofs, results))  # type: ignore[arg-type]
    lines = capsys.readouterr().out.splitlines()
    text = proof_table(proofs, results)  # type: ignore[arg-type]
    assert text.splitlines() == [ln.rstrip() for ln in lines]  # the same, as a string (demo/run.py)
    assert [ln.split() for ln in lines] == [
        ["slice", "backend", "prove_s", "proof_B", "statement", "agg_id", "kind", "tx", "gas", "on_chain"],
        ["layer0_with_a_long_name", "gnark-groth16", "1.23", "256", "0x121212121212…", "3", "RECURSIVE",
         "0xabababababab…", "123456", "yes"],  # wider than 80 columns: not wrapped
        ["head", "ezkl", "12.50", "4128", "-", "-", "-", "-", "-", "-"],
    ]  # fmt: skip
