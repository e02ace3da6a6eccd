"""Where Sheaf's files are: the sheaf-gnark binary, the key/SRS cache ($SHEAF_CACHE) and the
dev SRS. The one module that reads these environment variables."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
REPO_BIN = REPO_ROOT / "build" / "bin" / "sheaf-gnark"
DEFAULT_SRS_LOGROWS = 17


class BinaryNotFound(FileNotFoundError):
    """No usable sheaf-gnark binary; the message says how to get one."""


def gnark_binary(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`explicit` if given, else $SHEAF_GNARK_BIN, else the repo's build/bin, else PATH. A configured
    path (argument or environment) must exist: it never falls back to another binary, which could be
    an older build with other circuits."""
    configured = explicit or os.environ.get("SHEAF_GNARK_BIN")
    if configured:
        p = Path(configured)
        if p.is_file() and os.access(p, os.X_OK):
            return p
        source = "configured" if explicit else "SHEAF_GNARK_BIN"
        raise BinaryNotFound(f"sheaf-gnark binary not found: {p} ({source}) is not an executable file")
    for c in (str(REPO_BIN), shutil.which("sheaf-gnark")):
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
    raise BinaryNotFound(
        f"sheaf-gnark binary not found (set SHEAF_GNARK_BIN or run `make setup`; looked at {REPO_BIN})"
    )


def cache_dir() -> Path:
    """$SHEAF_CACHE, else ~/.cache/sheaf: keys, SRS and prover artifacts (outside the clone)."""
    return Path(os.environ.get("SHEAF_CACHE") or Path.home() / ".cache" / "sheaf")


def recursion_cache_dir() -> Path:
    """Key cache root of `sheaf-gnark aggregate` (shared by the aggregator and sheaf-deploy)."""
    return cache_dir() / "recursion"


def dev_srs_path(logrows: int = DEFAULT_SRS_LOGROWS) -> Path:
    """The INSECURE dev KZG SRS (known toxic waste; dev and tests only)."""
    return cache_dir() / "srs" / f"dev-INSECURE-kzg-bn254-k{logrows}.srs"


def default_srs() -> str | None:
    """$SHEAF_SRS, else the INSECURE dev SRS if this machine has one (dev/test convenience: a
    production deployment passes its ceremony SRS explicitly)."""
    env = os.environ.get("SHEAF_SRS")
    if env:
        return env
    p = dev_srs_path()
    return str(p) if p.is_file() else None
