"""Deployment errors: a stable machine-readable code plus an actionable message."""

from __future__ import annotations

from sheaf.errors import SheafError


class DeployError(SheafError):
    """`code` is stable (scripts and tests match on it); the message says what to do."""

    def __init__(self, code: str, message: str, field: str = "") -> None:
        super().__init__(code, field, message)

    def __reduce__(self) -> tuple[type[DeployError], tuple[str, str, str]]:
        return (type(self), (str(self.code), self.message, self.field))


RPC_UNREACHABLE = "RPC_UNREACHABLE"
CHAIN_ID_MISMATCH = "CHAIN_ID_MISMATCH"
INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
NO_KEY = "NO_KEY"
BAD_KEY = "BAD_KEY"
COMPILE_FAILED = "COMPILE_FAILED"
MANIFEST_MISSING = "MANIFEST_MISSING"
MANIFEST_INVALID = "MANIFEST_INVALID"
TX_FAILED = "TX_FAILED"
UNKNOWN_CONTRACT = "UNKNOWN_CONTRACT"
GNARK_MISSING = "GNARK_MISSING"
RECURSION_SETUP_FAILED = "RECURSION_SETUP_FAILED"
NOT_OWNER = "NOT_OWNER"
CONFIG_INVALID = "CONFIG_INVALID"
# source verification (deploy/source_verify.py: lib-sourcify through node) and submission to a
# verification API (deploy/verify_api.py)
VERIFIER_UNAVAILABLE = "VERIFIER_UNAVAILABLE"
VERIFIER_FAILED = "VERIFIER_FAILED"
VERIFIER_TIMEOUT = "VERIFIER_TIMEOUT"
VERIFY_API_UNREACHABLE = "VERIFY_API_UNREACHABLE"
VERIFY_API_REJECTED = "VERIFY_API_REJECTED"
VERIFY_API_TIMEOUT = "VERIFY_API_TIMEOUT"
