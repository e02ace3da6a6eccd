"""The recursion tree's plan and key cache (gnark/tree, docs/recursion.md "Recursion tree"), shared by
sheaf-deploy (deploy/tree.py: export and deploy the per-level verifiers) and the aggregator
(aggregator/tree_prover.py: prove batches level by level).

    plan = TreePlan(k=2, npub=1, fanin=2, levels=1)   # K proofs per leaf job, fan-in F, D merges
    plan.level_of(3)                                    # 1: the top level of the shallowest tree
    plan.node_ranges(3)                                 # [[range(0, 2), range(2, 3)], [range(0, 3)]]
    pinned_keys_problem(tree_cache_root(), "99241c91...", proving=True)   # "" when usable
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sheaf.paths import cache_dir


@dataclass(frozen=True)
class TreePlan:
    """gnark/tree's Plan: K proofs of one vk per leaf job, fan-in F, D merge levels."""

    k: int = 2
    npub: int = 1
    fanin: int = 2
    levels: int = 1

    def __post_init__(self) -> None:
        for what, v in (("k", self.k), ("fanin", self.fanin)):
            if v < 1 or v & (v - 1):
                raise ValueError(f"tree {what} must be a power of two >= 1, got {v}")
        if self.npub < 1 or not 0 <= self.levels <= 8:
            raise ValueError(f"tree npub must be >= 1 and levels in [0, 8], got {self.npub}/{self.levels}")

    @property
    def name(self) -> str:
        return f"tree_k{self.k}_p{self.npub}_f{self.fanin}_d{self.levels}"

    @property
    def capacity(self) -> int:
        """Proofs under one top proof of the deepest level: K * F^D."""
        return int(self.k * self.fanin**self.levels)

    def level_of(self, n: int) -> int:
        """TreeAggregationAdapter.levelOf: the top level of the shallowest tree over n proofs (ValueError
        outside 1..capacity)."""
        if not 1 <= n <= self.capacity:
            raise ValueError(f"{n} proofs: plan {self.name} holds 1..{self.capacity}")
        level, cap = 0, self.k
        while cap < n:
            cap, level = cap * self.fanin, level + 1
        return level

    def node_ranges(self, n: int) -> list[list[range]]:
        """The leaf positions under every node of the shallowest tree over n proofs, per level (level 0:
        the leaf jobs, chunks of K; level L: F consecutive level L-1 nodes). Every node's root is
        Merkle.root of its positions' statement hashes (docs/recursion.md, "Why the tree gives the flat
        root"), which is how a job's answer is checked."""
        top = self.level_of(n)
        levels = [[range(i, min(i + self.k, n)) for i in range(0, n, self.k)]]
        for _ in range(top):
            below = levels[-1]
            levels.append(
                [
                    range(below[i].start, below[min(i + self.fanin, len(below)) - 1].stop)
                    for i in range(0, len(below), self.fanin)
                ]
            )
        return levels

    def args(self) -> list[str]:
        return [
            "--k",
            str(self.k),
            "--npub",
            str(self.npub),
            "--fanin",
            str(self.fanin),
            "--levels",
            str(self.levels),
        ]


def tree_cache_root(cache: Path | str | None = None) -> Path:
    """The key cache root `sheaf-gnark tree` uses: --cache, else $SHEAF_CACHE/tree."""
    return Path(cache) if cache else cache_dir() / "tree"


def pinned_keys_problem(root: Path, circuit_hash: str, *, proving: bool) -> str:
    """Why the keys of `circuit_hash` under `root` (`<root>/<hash[:32]>/`, as gnark/tree writes them) are
    not usable, or "" if they are: meta.json must name that circuit, vk.bin exist and, for a level the
    process proves, pk.dump too. A worker never runs a setup, so this is checked before it starts."""
    h = circuit_hash.lower().removeprefix("0x")
    if not h:
        return "no circuit hash to pin keys by"
    d = root / h[:32]
    try:
        meta = json.loads((d / "meta.json").read_text())
    except (OSError, ValueError):
        return (
            f"no keys for circuit {h[:16]} under {root} (run `sheaf-gnark tree setup` with the deployed plan)"
        )
    if not isinstance(meta, dict) or str(meta.get("circuit_hash", "")).lower() != h:
        got = meta.get("circuit_hash") if isinstance(meta, dict) else None
        return f"{d}/meta.json names circuit {str(got)[:16]}, not {h[:16]}"
    missing = [f for f in ("vk.bin", *(["pk.dump"] if proving else [])) if not (d / f).is_file()]
    return f"{d} lacks {' and '.join(missing)}" if missing else ""
