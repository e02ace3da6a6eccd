"""Deployment errors: a stable machine-readable code plus an actionable message."""

from __future__ import annotations


class DeployError(Exception):
    """`code` is stable (scripts and tests match on it); the message says what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


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
