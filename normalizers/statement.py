"""The statement hash as the normalizers use it: the spec itself lives in `sheaf.statement` (the
shared base), re-exported here for the scheme modules and their callers."""

from __future__ import annotations

from sheaf.hashing import keccak256
from sheaf.schemes import Scheme
from sheaf.statement import (
    BN254_P,
    BN254_R,
    ENVELOPE_VERSION,
    STATEMENT_TAG,
    VK_TAG,
    pubs_hash,
    statement_hash,
    vk_hash,
)

__all__ = [
    "BN254_P",
    "BN254_R",
    "ENVELOPE_VERSION",
    "STATEMENT_TAG",
    "VK_TAG",
    "Scheme",
    "keccak256",
    "pubs_hash",
    "statement_hash",
    "vk_hash",
]
