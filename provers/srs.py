"""KZG structured reference string for ezkl (Halo2).

The dev SRS made here comes from `ezkl.gen_srs`, whose toxic waste is known to this machine:
INSECURE, for development and tests only. Production passes the path of a ceremony SRS file
(e.g. the perpetual powers-of-tau one, in halo2 format) wherever an `srs` path is taken.

File layout (halo2 ParamsKZG::write, as ezkl writes it): u32 LE k, 2^k G1, 2^k Lagrange G1,
g2, s_g2, each point 64 or 128 raw bytes. Verification reads only g1[0], g2 and s_g2, so
`cut_verifier_srs` keeps a tiny k=1 file that verifies every proof made with the full one.
"""

from __future__ import annotations

import argparse
import os
import struct
from pathlib import Path

# cache_dir and dev_srs_path are sheaf.paths' (the one place $SHEAF_CACHE is read), re-exported for
# this module's callers
from sheaf.paths import DEFAULT_SRS_LOGROWS as DEFAULT_LOGROWS
from sheaf.paths import cache_dir, dev_srs_path

__all__ = [
    "DEFAULT_LOGROWS",
    "cache_dir",
    "cut_verifier_srs",
    "dev_srs_path",
    "ensure_dev_srs",
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
    """Write a k=1 SRS holding the points KZG verification uses (g1[0], g2, s_g2) of `src`."""
    k = srs_logrows(src)
    n = 1 << k
    data = src.read_bytes()
    expected = 4 + 2 * n * G1_BYTES + 2 * G2_BYTES
    if len(data) != expected:
        raise ValueError(f"{src}: size {len(data)} does not match a k={k} SRS ({expected} bytes)")
    g1 = data[4 : 4 + 2 * G1_BYTES]
    lagrange_start = 4 + n * G1_BYTES
    lagrange = data[lagrange_start : lagrange_start + 2 * G1_BYTES]
    g2s = data[4 + 2 * n * G1_BYTES :]
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(struct.pack("<I", 1) + g1 + lagrange + g2s)
    return dst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provers.srs", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    ens = sub.add_parser("ensure", help="generate the INSECURE dev SRS into the cache if missing")
    ens.add_argument("--logrows", type=int, default=DEFAULT_LOGROWS)
    cut = sub.add_parser("cut", help="write a k=1 verifier SRS cut from a full one")
    cut.add_argument("src", type=Path)
    cut.add_argument("dst", type=Path)
    args = parser.parse_args(argv)
    if args.cmd == "ensure":
        print(f"dev SRS (INSECURE, dev/test only): {ensure_dev_srs(args.logrows)}")
    else:
        print(cut_verifier_srs(args.src, args.dst))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
