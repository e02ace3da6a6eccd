"""Normalization errors: one exception type with a stable machine-readable code.

Codes are part of the public interface (the aggregator maps them to gRPC/HTTP errors and the CLI
prints them); never rename one, only add.
"""

from __future__ import annotations

from enum import StrEnum


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


class NormalizeError(Exception):
    """A rejected input. `field` names the offending part, e.g. "proof.pi_b[0][1]" or "vk"."""

    def __init__(self, code: Code | str, field: str, message: str) -> None:
        self.code = Code(code) if not isinstance(code, Code) else code
        self.field = field
        self.message = message
        super().__init__(f"{self.code.value}: {field}: {message}")

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

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "field": self.field, "message": self.message}
