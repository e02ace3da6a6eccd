"""Size limits, enforced on raw bytes before any parsing so a hostile input costs O(limit)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from normalizers.errors import Code, NormalizeError


@dataclass(frozen=True)
class Limits:
    # Defaults are ~10x the largest legitimate file we have seen for each kind (ezkl proof.json
    # of a logrows-15 slice is ~19 KB, its vk.key ~67 KB; snarkjs files are a few KB).
    max_proof_bytes: int = 1 << 20
    max_vk_bytes: int = 4 << 20
    max_public_bytes: int = 1 << 20
    max_settings_bytes: int = 1 << 20
    max_public_inputs: int = 4096
    max_json_depth: int = 8
    max_json_number_len: int = 80  # decimal digits: 2^256 has 78
    max_json_string_len: int = 100_000  # only ezkl's hex_proof needs long strings

    @classmethod
    def from_env(cls, prefix: str = "SHEAF_LIMIT_") -> Limits:
        """Override any field from the environment, e.g. SHEAF_LIMIT_MAX_PROOF_BYTES=2000000."""
        kw: dict[str, int] = {}
        for f in dataclasses.fields(cls):
            v = os.environ.get(prefix + f.name.upper())
            if v is not None:
                kw[f.name] = int(v)
        return cls(**kw)


DEFAULT_LIMITS = Limits()


def check_size(field: str, data: bytes, limit: int) -> None:
    if len(data) > limit:
        raise NormalizeError(Code.TOO_LARGE, field, f"{len(data)} bytes exceeds the limit of {limit}")


def check_count(field: str, n: int, limit: int) -> None:
    if n > limit:
        raise NormalizeError(Code.TOO_LARGE, field, f"{n} public inputs exceeds the limit of {limit}")
