"""The one exception type of the client."""

from __future__ import annotations

from typing import Any

import grpc

# RESOURCE_EXHAUSTED is retried only for these codes (rate limits / queue quota); TOO_LARGE and
# gRPC's own message-size errors share the status but retrying them can never succeed.
RATE_LIMIT_CODES = frozenset({"RATE_LIMITED", "QUEUE_QUOTA"})
_TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class SheafError(Exception):
    """A failed call. `status`: the gRPC status code; `code`: Sheaf's stable error code (trailing
    metadata `sheaf-error-code`, e.g. VERIFICATION_FAILED, MALFORMED, NOT_FOUND codes); `field`: the
    offending request field (`sheaf-error-field`); `message`: the server's details."""

    def __init__(
        self, status: grpc.StatusCode, code: str, field: str, message: str, *, proof_id: str = ""
    ) -> None:
        super().__init__(f"{status.name} {code or '-'}{' ' + field if field else ''}: {message}")
        self.status = status
        self.code = code
        self.field = field
        self.message = message
        self.proof_id = proof_id

    @property
    def retryable(self) -> bool:
        return self.status in _TRANSIENT or (
            self.status == grpc.StatusCode.RESOURCE_EXHAUSTED and self.code in RATE_LIMIT_CODES
        )

    @classmethod
    def from_rpc(cls, e: Any) -> SheafError:
        md = {k: v for k, v in (e.trailing_metadata() or ())}
        return cls(
            e.code(),
            str(md.get("sheaf-error-code", "")),
            str(md.get("sheaf-error-field", "")),
            e.details() or "",
        )


class WaitTimeout(SheafError):
    """submit_and_wait / wait gave up before a terminal status. The proof is still in the aggregator:
    `proof_id` names it, `last` is the last status seen; follow it with `client.watch(proof_id)`
    or `client.status(proof_id)`."""

    def __init__(self, proof_id: str, last: Any, timeout: float) -> None:
        st = last.status.name if last is not None else "unknown"
        super().__init__(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "WAIT_TIMEOUT",
            "proof_id",
            f"proof {proof_id} is still {st} after {timeout:g}s; follow it with "
            f"client.watch({proof_id!r}) or client.status({proof_id!r})",
            proof_id=proof_id,
        )
        self.last = last
