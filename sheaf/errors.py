"""One error base type for all of Sheaf, and the one table that maps its codes to gRPC and HTTP
statuses (used by both servers and by every CLI).

Every error a user can cause carries a stable `code` (never renamed, only added), the offending
`field` (e.g. "proof.pi_b[0][1]", "auth.signature"; "" when none applies) and a `message` saying
what to do. Subclasses only pick the default status class; a code may override it in `BY_CODE`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Status:
    """A status class: the gRPC `StatusCode` name and the HTTP status it maps to."""

    grpc: str
    http: int


INVALID_ARGUMENT = Status("INVALID_ARGUMENT", 400)
UNAUTHENTICATED = Status("UNAUTHENTICATED", 401)
PERMISSION_DENIED = Status("PERMISSION_DENIED", 403)
NOT_FOUND = Status("NOT_FOUND", 404)
ALREADY_EXISTS = Status("ALREADY_EXISTS", 409)
FAILED_PRECONDITION = Status("FAILED_PRECONDITION", 409)
TOO_LARGE = Status("RESOURCE_EXHAUSTED", 413)
RATE_LIMITED = Status("RESOURCE_EXHAUSTED", 429)
INTERNAL = Status("INTERNAL", 500)
UNAVAILABLE = Status("UNAVAILABLE", 503)


class SheafError(Exception):
    """Base of every coded Sheaf error: `code` (stable), `field`, `message`."""

    status: ClassVar[Status] = INVALID_ARGUMENT

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(f"{code}: {field}: {message}" if field else f"{code}: {message}")
        self.code = code
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type[SheafError], tuple[str, str, str]]:
        return (type(self), (str(self.code), self.field, self.message))

    def to_dict(self) -> dict[str, str]:
        return {"code": str(self.code), "field": self.field, "message": self.message}


class InvalidInput(SheafError):
    status = INVALID_ARGUMENT


class NotFound(SheafError):
    status = NOT_FOUND


class Exhausted(SheafError):
    status = RATE_LIMITED


class Unauthenticated(SheafError):
    status = UNAUTHENTICATED


class Unavailable(SheafError):
    status = UNAVAILABLE


class Internal(SheafError):
    status = INTERNAL


# Codes whose status differs from their class's default. The one place a code's status is set.
BY_CODE: dict[str, Status] = {
    "TOO_LARGE": TOO_LARGE,
    "QUEUE_QUOTA": RATE_LIMITED,
    "RATE_LIMITED": RATE_LIMITED,
    "NOT_OPERATOR": PERMISSION_DENIED,
    "SHUTTING_DOWN": UNAVAILABLE,
    "SIDECAR_UNAVAILABLE": UNAVAILABLE,
    "INTERNAL": INTERNAL,
}


def status_of(err: SheafError) -> Status:
    """The status for `err`: its code's entry in BY_CODE, else its class's default."""
    return BY_CODE.get(str(err.code), type(err).status)
