"""The identity of a KZG SRS (halo2 format, as ezkl writes it): which toxic waste it was made with.

Every party that touches Halo2 proofs (the prover, the aggregator, each operator) must use the
same SRS, or a cut of it: a proof made with one SRS verifies with no other. The id is
`"kzg-bn254-" + sha256("sheaf/srs-id/v1" || g1[0] || g2 || s_g2)[:16].hex()`, over exactly the
points KZG verification reads, so the full SRS and a k=1 verifier cut of it
(`python -m provers.srs cut`) have the same id, while two dev SRSs generated on two machines
(`ezkl.gen_srs`, fresh toxic waste each time) differ (s_g2 differs).

File layout (halo2 ParamsKZG::write): u32 LE k, 2^k G1, 2^k Lagrange G1, g2, s_g2; G1 64 bytes,
G2 128 bytes (uncompressed).
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass

from sheaf.errors import FAILED_PRECONDITION, SheafError

G1_BYTES = 64
G2_BYTES = 128
MAX_K = 28
ID_DOMAIN = b"sheaf/srs-id/v1"
ID_PREFIX = "kzg-bn254-"


class SrsError(SheafError):
    """A KZG SRS that cannot be read, or that differs from another party's (`SRS_MISMATCH`)."""

    status = FAILED_PRECONDITION


@dataclass(frozen=True)
class VerifierPoints:
    """What KZG verification reads of an SRS file, plus its size."""

    k: int
    g1: bytes  # g1[0], g1[1] (128 bytes)
    lagrange: bytes  # the first two Lagrange G1 points (128 bytes; kept by the k=1 cut)
    g2_s_g2: bytes  # g2 || s_g2 (256 bytes)

    @property
    def srs_id(self) -> str:
        h = hashlib.sha256(ID_DOMAIN + self.g1[:G1_BYTES] + self.g2_s_g2).digest()
        return ID_PREFIX + h[:16].hex()

    def k1_cut(self) -> bytes:
        """A k=1 SRS file with these points (verifies every proof made with the full SRS)."""
        return struct.pack("<I", 1) + self.g1 + self.lagrange + self.g2_s_g2


def read_verifier_points(path: str | os.PathLike[str]) -> VerifierPoints:
    """The verification points of the SRS file at `path`; `SrsError` (SRS_UNREADABLE/SRS_MALFORMED)
    if it cannot be read or is not a halo2 KZG SRS (wrong size for its k)."""
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            head = f.read(4)
            if len(head) != 4:
                raise SrsError("SRS_MALFORMED", "srs", f"{p} is not a halo2 KZG SRS file (no header)")
            k = struct.unpack("<I", head)[0]
            if not 1 <= k <= MAX_K:
                raise SrsError("SRS_MALFORMED", "srs", f"{p}: bad SRS size k={k}")
            n = 1 << k
            size = os.fstat(f.fileno()).st_size
            want = 4 + 2 * n * G1_BYTES + 2 * G2_BYTES
            if size != want:
                raise SrsError(
                    "SRS_MALFORMED", "srs", f"{p}: {size} bytes does not match a k={k} SRS ({want} bytes)"
                )
            g1 = f.read(2 * G1_BYTES)
            f.seek(4 + n * G1_BYTES)
            lagrange = f.read(2 * G1_BYTES)
            f.seek(4 + 2 * n * G1_BYTES)
            g2s = f.read(2 * G2_BYTES)
    except OSError as e:
        raise SrsError("SRS_UNREADABLE", "srs", f"cannot read SRS {p}: {e.strerror}") from None
    return VerifierPoints(k, g1, lagrange, g2s)


def srs_id(path: str | os.PathLike[str]) -> str:
    """The SRS id of the file at `path` (see the module docstring)."""
    return read_verifier_points(path).srs_id


def mismatch(expected: str, expected_from: str, got: str, got_from: str, fix: str) -> SrsError:
    """The one SRS_MISMATCH error: names both ids, where each came from and what to do."""
    g = got or "none (no SRS configured)"
    return SrsError(
        "SRS_MISMATCH",
        "srs_id",
        f"{got_from} uses SRS {g} but {expected_from} uses SRS {expected}: Halo2 proofs made with one "
        f"do not verify with the other. {fix}",
    )
