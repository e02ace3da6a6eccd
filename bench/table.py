"""The benchmarks' tables: rich Tables printed without wrapping.

Every benchmark prints its figures as a table (and writes them to bench/results/*.json). rich lays
out the columns; when stdout is not a terminal (make bench | tee, CI logs) the console is made wide
enough that no row wraps, so each row stays one line for whoever greps the log."""

from __future__ import annotations

import sys
from collections.abc import Collection, Iterable, Sequence

from rich import box
from rich.console import Console
from rich.table import Table


def table(
    title: str, columns: Sequence[str], rows: Iterable[Sequence[object]], *, left: int | Collection[str] = 1
) -> Table:
    """A table whose label columns (the first `left` ones, or those named in `left`) are left-aligned
    and the rest (figures) right-aligned."""
    t = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        header_style="bold",
    )
    for i, c in enumerate(columns):
        label = i < left if isinstance(left, int) else c in left
        t.add_column(c, justify="left" if label else "right", no_wrap=True)
    for r in rows:
        t.add_row(*("-" if v is None else str(v) for v in r))
    return t


def show(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    left: int | Collection[str] = 1,
    notes: Sequence[str] = (),
) -> None:
    """Print a table (and notes under it) to stdout."""
    tty = sys.stdout.isatty()
    console = Console(width=None if tty else 10_000, color_system="auto" if tty else None, soft_wrap=not tty)
    console.print(table(title, columns, rows, left=left))
    for n in notes:
        console.print(n, highlight=False, markup=False)
