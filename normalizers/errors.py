"""Normalization errors: one exception type with a stable machine-readable code.

Codes are part of the public interface (the aggregator maps them to gRPC/HTTP errors and the CLI
prints them); never rename one, only add. The status of a code comes from `sheaf.errors.BY_CODE`
(SIDECAR_UNAVAILABLE -> UNAVAILABLE, INTERNAL -> INTERNAL, TOO_LARGE -> RESOURCE_EXHAUSTED), else
the class default INVALID_ARGUMENT: a rejected input is the prover's to fix.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from sheaf.errors import INVALID_ARGUMENT, SheafError, Status


class Code(StrEnum):
    INVALID_POINT = "INVALID_POINT"  # coordinates not on the curve / not a field element
    NOT_IN_SUBGROUP = "NOT_IN_SUBGROUP"  # on the curve (twist) but outside the r-torsion
    POINT_AT_INFINITY = "POINT_AT_INFINITY"  # identity where the scheme forbids it
    NON_CANONICAL_SCALAR = "NON_CANONICAL_SCALAR"  # scalar >= r (or >= p for a coordinate)
    PUBLIC_INPUT_COUNT = "PUBLIC_INPUT_COUNT"  # count does not match the verifying key
    VERIFICATION_FAILED = "VERIFICATION_FAILED"  # well-formed but the proof does not verify
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"  # unknown scheme/format pair, protocol or curve
    TOO_LARGE = "TOO_LARGE"  # a configured limit was exceeded (checked before parsing)
    MALFORMED = "MALFORMED"  # bad JSON, wrong type, missing/extra field
    INVALID_LENGTH = "INVALID_LENGTH"  # binary of the wrong size, truncated or padded
    VK_MISMATCH = "VK_MISMATCH"  # the vk does not fit the proof/settings (e.g. other circuit)
    SIDECAR_UNAVAILABLE = "SIDECAR_UNAVAILABLE"  # the gnark sidecar is missing, crashed or timed out
    INTERNAL = "INTERNAL"  # a bug on our side; never the prover's fault


class NormalizeError(SheafError):
    """A rejected input. `field` names the offending part, e.g. "proof.pi_b[0][1]" or "vk".

    Compared and hashed by value (a batch reports one error object per item, and tests compare
    them); pickles by value (it crosses process pools)."""

    status: ClassVar[Status] = INVALID_ARGUMENT
    code: Code

    def __init__(self, code: Code | str, field: str, message: str) -> None:
        super().__init__(Code(code), field, message)

    def __reduce__(self) -> tuple[type[NormalizeError], tuple[str, str, str]]:
        return (NormalizeError, (self.code.value, self.field, self.message))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NormalizeError) and (self.code, self.field, self.message) == (
            other.code,
            other.field,
            other.message,
        )

    def __hash__(self) -> int:
        return hash((self.code, self.field, self.message))
