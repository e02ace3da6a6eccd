"""`make bench`: every benchmark in one run; each prints its table and writes bench/results/<name>.json.

Each benchmark module exposes `main() -> dict`. A failing benchmark is reported and makes the run
exit non-zero, but does not stop the others.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from pathlib import Path

from bench.table import show

BENCHMARKS = ("normalize", "gas", "ingest", "recursion", "recursion_tree_onchain", "scaleout", "lists")
RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str]) -> int:
    selected = argv or list(BENCHMARKS)
    unknown = sorted(set(selected) - set(BENCHMARKS))
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    summary: dict[str, object] = {}
    for name in selected:
        print(f"\n=== bench: {name} ===", flush=True)
        start = time.monotonic()
        try:
            module = importlib.import_module(f"bench.{name}")
            module.main()
            summary[name] = {"ok": True, "seconds": round(time.monotonic() - start, 1)}
        except Exception:
            traceback.print_exc()
            failed.append(name)
            summary[name] = {"ok": False, "seconds": round(time.monotonic() - start, 1)}
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print()
    show(
        "=== bench summary ===",
        ["bench", "result", "seconds"],
        [[name, "ok" if info["ok"] else "FAILED", info["seconds"]] for name, info in summary.items()],  # type: ignore[index]
        left=2,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
