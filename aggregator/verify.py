"""Deprecated: renamed aggregator.admission. Kept only for callers outside this area until they
switch (then delete this module): bench/ingest.py (`ProofVerifier`), aggregator/recursion.py and
tests/aggregator/test_agg_recursive.py (`Item`: now normalizers.api.ProofInput, the same record).
"""

from aggregator.admission import ProofVerifier
from normalizers.api import ProofInput as Item

__all__ = ["Item", "ProofVerifier"]
