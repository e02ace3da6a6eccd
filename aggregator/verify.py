"""Deprecated: renamed aggregator.admission. Kept only for aggregator/recursion.py (`Item`: the same
record as normalizers.api.ProofInput) until its owner switches; then delete this module."""

from normalizers.api import ProofInput as Item

__all__ = ["Item"]
