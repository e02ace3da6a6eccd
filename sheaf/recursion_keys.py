"""Naming of the recursion circuit's key cache, shared by every process that may run its dev setup
(`sheaf-deploy`, the aggregator's worker, tests and benchmarks): the shape name of one outer
circuit, the cache root `sheaf-gnark aggregate` uses, and the per-shape setup lock."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from sheaf.paths import recursion_cache_dir


def verifier_key(batch: int, npub: int, plonk: int = 0) -> str:
    """Name of one outer-circuit shape (plonk: how many of the batch slots are PLONK), e.g. "b2_p1_k1":
    the suffix of its manifest entries, generated verifier file and setup lock."""
    return f"b{batch}_p{npub}" + (f"_k{plonk}" if plonk else "")


def recursion_cache_root(cache: Path | None = None) -> Path:
    """The key cache root `sheaf-gnark aggregate` uses: --cache, else $SHEAF_CACHE/recursion."""
    return Path(cache) if cache is not None else recursion_cache_dir()


def setup_lock_path(batch: int, npub: int, cache: Path | None = None, plonk: int = 0) -> Path:
    """One lock file per shape: held by whoever may run the dev setup of that shape (sheaf-deploy's
    `aggregate setup`/`prove`, the aggregator's worker start), so two Sheaf processes never run
    concurrent setups into the same cache entry (their keys would be different and could mix)."""
    return recursion_cache_root(cache) / f".setup-{verifier_key(batch, npub, plonk)}.lock"


@contextlib.contextmanager
def setup_lock(batch: int, npub: int, cache: Path | None = None, plonk: int = 0) -> Iterator[None]:
    """Hold the shape's setup lock (blocking) for the duration of the block."""
    path = setup_lock_path(batch, npub, cache, plonk)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
