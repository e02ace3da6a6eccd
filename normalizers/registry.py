"""The schemes the normalizer verifies: one line per scheme, keyed by `sheaf.schemes.Scheme` (a
test checks the keys are exactly that enum). Formats come from `sheaf.schemes.formats_of`.

Adding a scheme = a row in `sheaf.schemes.SCHEMES` + one module implementing
`normalizers.base.SchemeVerifier` + one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from normalizers.base import Context, SchemeVerifier
from normalizers.groth16 import Groth16Verifier
from normalizers.halo2 import Halo2Verifier
from normalizers.plonk import PlonkVerifier
from sheaf.schemes import Scheme

# A factory makes one verifier per Normalizer (its caches live and die with that Normalizer).
VerifierFactory = Callable[[Context], SchemeVerifier]

VERIFIERS: Mapping[Scheme, VerifierFactory] = MappingProxyType(
    {
        Scheme.GROTH16: Groth16Verifier,
        Scheme.PLONK: PlonkVerifier,
        Scheme.HALO2: Halo2Verifier,
    }
)
