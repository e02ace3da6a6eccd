"""The one list of proof schemes and producers. Everything else derives from it: the statement
hash's scheme byte, the normalizers' registry, CLI choices, the proto enums (a test checks the
.proto files agree) and the recursion circuit's leaf kinds.

Adding a scheme = one row here + one normalizer module registered in `normalizers.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Scheme(IntEnum):
    """Value = the scheme byte in the statement hash and the proto enum number (never renumber)."""

    GROTH16 = 1
    PLONK = 2
    HALO2 = 3

    @property
    def label(self) -> str:
        """The lowercase name used in JSON, CLIs and configs."""
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> Scheme:
        """The scheme called `name` (case-insensitive); ValueError names the known ones."""
        try:
            return cls[name.upper()]
        except (KeyError, AttributeError):
            raise ValueError(f"unknown scheme {name!r:.40} (known: {', '.join(SCHEME_NAMES)})") from None


class Producer(IntEnum):
    """Value = the proto `ProducerKind` number."""

    GNARK = 1
    SNARKJS = 2
    EZKL = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class SchemeInfo:
    scheme: Scheme
    formats: tuple[Producer, ...]  # producers whose native files the normalizer reads


SCHEMES: tuple[SchemeInfo, ...] = (
    SchemeInfo(Scheme.GROTH16, (Producer.GNARK, Producer.SNARKJS)),
    SchemeInfo(Scheme.PLONK, (Producer.GNARK, Producer.SNARKJS)),
    SchemeInfo(Scheme.HALO2, (Producer.EZKL,)),
)
SCHEME_NAMES: tuple[str, ...] = tuple(s.label for s in Scheme)
PRODUCER_NAMES: tuple[str, ...] = tuple(p.label for p in Producer)


def formats_of(scheme: Scheme) -> tuple[str, ...]:
    for info in SCHEMES:
        if info.scheme is scheme:
            return tuple(p.label for p in info.formats)
    raise ValueError(f"scheme {scheme!r} has no row in sheaf.schemes.SCHEMES")
