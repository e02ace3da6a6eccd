"""The list filters' indexes (store schema v4, issue 16): what they cost on writes and what they buy
on reads, on SQLite, with the same rows in a v3 database (no list indexes) and a v4 one.

N proofs are inserted in groups of 200 (the ingest writer's group commit; synchronous=FULL, as in
production), spread over 1,000 vk hashes and 100 provers, plus a rare vk hash and a rare prover with 5
proofs each among the oldest. Then the explorer's pages that a rare value makes slow without an index:
20 proofs of the rare vk hash, of the rare prover, and of a status nothing has (FAILED: the scan
reads every row). Each query is the store's real list_proofs, best of 5.

python -m bench lists  (or python -m bench.lists [N]); writes bench/results/lists.json.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aggregator import store as store_mod
from aggregator.records import KIND_ATTESTED, NewProof, Status
from aggregator.store import MIGRATIONS, SqliteStore
from bench.table import show
from sheaf.hashing import keccak256

RESULTS = Path(__file__).resolve().parent / "results"
GROUP = 200
RARE_VK = b"\xee" * 32
RARE_PROVER = "0x" + "ee" * 20


def _proof(i: int) -> NewProof:
    rare = i < 5
    return NewProof(
        1,
        keccak256(b"bench-list" + i.to_bytes(8, "big")),
        RARE_VK if rare else keccak256(b"vk" + (i % 1000).to_bytes(4, "big")),
        KIND_ATTESTED,
        "groth16",
        "snarkjs",
        b"p" * 256,  # a proof-sized blob: rows as wide as real ones
        b"v" * 64,
        b"[]",
        None,
        RARE_PROVER if rare else "0x" + (i % 100).to_bytes(20, "big").hex(),
    )


def _best_ms(fn: Any, n: int = 5) -> float:
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return round(best * 1000, 3)


def run_one(path: Path, version: int, n: int) -> dict[str, Any]:
    saved = store_mod.MIGRATIONS
    store_mod.MIGRATIONS = MIGRATIONS[:version]
    try:
        s = SqliteStore(path)
    finally:
        store_mod.MIGRATIONS = saved
    try:
        t = time.perf_counter()
        for g in range(0, n, GROUP):
            s.insert_proofs([_proof(i) for i in range(g, min(n, g + GROUP))])
        insert_s = time.perf_counter() - t
        out: dict[str, Any] = {
            "schema": version,
            "proofs": n,
            "insert_per_s": round(n / insert_s),
            "db_mb": round(sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20, 1),
        }
        for name, kw in (
            ("rare_vk_ms", {"vk_hash": RARE_VK}),
            ("rare_prover_ms", {"prover": RARE_PROVER}),
            ("no_match_status_ms", {"status": Status.FAILED}),
            ("newest_page_ms", {}),
        ):
            got = s.list_proofs(21, None, **kw)
            assert len(got) == {"rare_vk_ms": 5, "rare_prover_ms": 5, "no_match_status_ms": 0}.get(name, 21)
            out[name] = _best_ms(lambda kw=kw: s.list_proofs(21, None, **kw))
        return out
    finally:
        s.close()


def main(n: int = 100_000) -> dict[str, Any]:
    rows = []
    with tempfile.TemporaryDirectory() as td:
        for version in (3, 4):
            rows.append(run_one(Path(td) / f"v{version}.db", version, n))
    cols = ("schema", "proofs", "insert_per_s", "db_mb", "rare_vk_ms", "rare_prover_ms", "no_match_status_ms")
    title = f"list queries on SQLite, {n:,} proofs: schema v3 vs v4 (indexes)"
    show(title, cols, [[r[c] for c in cols] for r in rows])
    res = {"sqlite": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "lists.json").write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
