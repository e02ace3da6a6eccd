"""Leaves of the recursion circuit: a batch item in the form `sheaf-gnark aggregate prove/serve`
takes ({"scheme", "vk", "proof", "public_inputs"[, "canonical_vk"]}, hex), and its Sheaf statement
hash computed in Python. Used by the running aggregator (aggregator/recursion.py) and by the
tests, benchmarks and demo that make outer proofs (deploy/recursive.py `prove_outer`).

The circuit aggregates Groth16 and gnark PLONK leaves only (docs/recursion.md); a leaf of any other
scheme is refused here (LeafError), never hashed as if it were Groth16.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from normalizers.base import Context
from normalizers.groth16 import parse_snarkjs_proof, parse_snarkjs_vk, snarkjs_public
from normalizers.limits import Limits
from normalizers.statement import statement_hash, vk_hash
from sheaf.errors import InvalidInput
from sheaf.schemes import Scheme

# The schemes the outer circuit has slots for, by their leaf label. A leaf without "scheme" is
# Groth16, as for the worker (gnark/aggregation/run.go: "" or "groth16").
LEAF_SCHEMES: dict[str, Scheme] = {s.label: s for s in (Scheme.GROTH16, Scheme.PLONK)}
LEAF_SCHEME_UNSUPPORTED = "LEAF_SCHEME_UNSUPPORTED"


class LeafError(InvalidInput):
    """A leaf the recursion circuit cannot take (code LEAF_SCHEME_UNSUPPORTED, field "scheme")."""


def leaf_scheme(leaf: Mapping[str, Any]) -> Scheme:
    """The scheme of a batch leaf; LeafError if the circuit has no slot for it."""
    label = leaf.get("scheme") or Scheme.GROTH16.label
    scheme = LEAF_SCHEMES.get(label) if isinstance(label, str) else None
    if scheme is None:
        raise LeafError(
            LEAF_SCHEME_UNSUPPORTED,
            "scheme",
            f"{str(label)!r:.40} is not aggregated recursively (leaf schemes: {', '.join(LEAF_SCHEMES)})",
        )
    return scheme


def snarkjs_leaf(vk_json: bytes, proof_json: bytes, public_json: bytes) -> dict[str, Any]:
    """A snarkjs Groth16 proof as one `aggregate prove` leaf (Sheaf's canonical vk/proof bytes)."""
    ctx = Context(limits=Limits())
    vk = parse_snarkjs_vk(vk_json, ctx)
    return {
        "scheme": Scheme.GROTH16.label,
        "vk": "0x" + vk.canonical.hex(),
        "proof": "0x" + parse_snarkjs_proof(proof_json, ctx).hex(),
        "public_inputs": ["0x" + p.hex() for p in snarkjs_public(public_json, "public", ctx)],
    }


def leaf_statement_hash(leaf: Mapping[str, Any]) -> bytes:
    """Sheaf statement hash of a batch leaf, computed in Python (normalizers/statement.py). A PLONK
    leaf carries gnark's vk encoding in "vk" and the normalizer's canonical bytes in
    "canonical_vk" (the worker checks the two agree)."""
    scheme = leaf_scheme(leaf)
    vk = bytes.fromhex(str(leaf["canonical_vk" if scheme is Scheme.PLONK else "vk"])[2:])
    pubs = [bytes.fromhex(str(p)[2:]) for p in leaf["public_inputs"]]
    return statement_hash(scheme, vk_hash(scheme, vk), pubs)
