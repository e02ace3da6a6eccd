"""KZG structured reference string for ezkl (Halo2).

The dev SRS made here comes from `ezkl.gen_srs`, whose toxic waste is known to this machine:
INSECURE, for development and tests only. Production passes the path of a ceremony SRS file
(e.g. the perpetual powers-of-tau one, in halo2 format) wherever an `srs` path is taken.

File layout (halo2 ParamsKZG::write, as ezkl writes it): u32 LE k, 2^k G1, 2^k Lagrange G1,
g2, s_g2, each point 64 or 128 raw bytes. Verification reads only g1[0], g2 and s_g2, so
`cut_verifier_srs` keeps a tiny k=1 file that verifies every proof made with the full one.

Every SRS has an id (`sheaf.srs_id`: a hash of g1[0], g2, s_g2; a cut has the id of the SRS it was
cut from). The prover, the aggregator and every operator must use SRSs with the same id:
`python -m provers.srs id FILE` prints it, `ensure` and `cut` print it too.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
from pathlib import Path

# cache_dir and dev_srs_path are sheaf.paths' (the one place $SHEAF_CACHE is read), re-exported for
# this module's callers
from sheaf.paths import DEFAULT_SRS_LOGROWS as DEFAULT_LOGROWS
from sheaf.paths import cache_dir, dev_srs_path
from sheaf.srs_id import SrsError, read_verifier_points, srs_id

__all__ = [
    "DEFAULT_LOGROWS",
    "cache_dir",
    "cut_verifier_srs",
    "dev_srs_path",
    "ensure_dev_srs",
    "srs_id",
    "srs_logrows",
]

G1_BYTES = 64
G2_BYTES = 128


def ensure_dev_srs(logrows: int = DEFAULT_LOGROWS) -> Path:
    """Return the cached dev SRS for `logrows`, generating it once (atomically) if missing."""
    path = dev_srs_path(logrows)
    if path.exists():
        return path
    import ezkl  # lazy: heavy optional dependency, only when we really generate

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    ezkl.gen_srs(str(tmp), logrows)
    os.replace(tmp, path)
    return path


def srs_logrows(path: Path) -> int:
    with path.open("rb") as f:
        head = f.read(4)
    if len(head) != 4:
        raise ValueError(f"{path}: not a halo2 KZG SRS file (shorter than its header)")
    return int(struct.unpack("<I", head)[0])


def cut_verifier_srs(src: Path, dst: Path) -> Path:
    """Write a k=1 SRS holding the points KZG verification uses (g1[0], g2, s_g2) of `src`; it has
    the same SRS id as `src`."""
    data = read_verifier_points(src).k1_cut()
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, dst)
    return dst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provers.srs", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    ens = sub.add_parser(
        "ensure", help="generate the INSECURE dev SRS into the cache if missing; print its path (stdout)"
    )
    ens.add_argument("--logrows", type=int, default=DEFAULT_LOGROWS)
    cut = sub.add_parser("cut", help="write a k=1 verifier SRS cut from a full one (same SRS id)")
    cut.add_argument("src", type=Path)
    cut.add_argument("dst", type=Path)
    ident = sub.add_parser("id", help="print an SRS file's id (equal for an SRS and its cuts)")
    ident.add_argument("srs", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.cmd == "ensure":
            path = ensure_dev_srs(args.logrows)
            # stdout: the path alone (`SRS=$(python -m provers.srs ensure)`); the rest to stderr
            print(f"dev SRS (INSECURE, dev/test only), SRS id {srs_id(path)}:", file=sys.stderr)
            print(path)
        elif args.cmd == "cut":
            out = cut_verifier_srs(args.src, args.dst)
            print(f"{out} (SRS id {srs_id(out)})")
        else:
            print(srs_id(args.srs))
    except SrsError as e:
        print(f"{e.code}: {e.message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
