"""The verifier sidecar, `sheaf-gnark serve`, as the normalizers use it (`ctx.sidecar()`).

One process, many concurrent callers (threads or event loops): the one client of sheaf-gnark's
processes (sheaf.gnark_process, protocol in docs/sidecar.md) with the normalizers' errors. An
error answer keeps its code (MALFORMED, INVALID_POINT, ...); a process that cannot answer (no
binary, exited, timed out, closed) is SIDECAR_UNAVAILABLE. If the process dies, pending requests
fail and the next request starts a fresh one.
"""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

from normalizers.errors import Code, NormalizeError
from sheaf.gnark_process import ProcessError, RemoteError, SyncGnarkProcess
from sheaf.paths import BinaryNotFound, gnark_binary

DEFAULT_TIMEOUT = 60.0


def find_binary(explicit: str | None = None) -> Path:
    """sheaf.paths.gnark_binary with the normalizers' error (SIDECAR_UNAVAILABLE): `explicit` if
    given (it must exist: no fallback), else $SHEAF_GNARK_BIN, the repo's build/bin, PATH."""
    try:
        return gnark_binary(explicit)
    except BinaryNotFound as e:
        raise NormalizeError(Code.SIDECAR_UNAVAILABLE, "sidecar", str(e)) from None


def _normalize_error(e: Exception) -> NormalizeError:
    if isinstance(e, RemoteError):
        code = str(e.code) if str(e.code) in Code.__members__ else "INTERNAL"
        return NormalizeError(code, e.field or "sidecar", e.message)
    if isinstance(e, ProcessError):
        return NormalizeError(Code.SIDECAR_UNAVAILABLE, "sidecar", e.message)
    raise e


class VerifierSidecar(SyncGnarkProcess):
    """`sheaf-gnark serve` (ops: docs/sidecar.md) with NormalizeError failures. Lazy: nothing
    starts before the first request."""

    def __init__(self, binary: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(
            lambda: [str(gnark_binary(binary)), "serve"], name="sheaf-gnark serve", timeout=timeout
        )

    def submit(self, op: str, **params: Any) -> Future[dict[str, Any]]:
        try:
            return super().submit(op, **params)
        except ProcessError as e:
            raise _normalize_error(e) from None

    def result(
        self, fut: Future[dict[str, Any]], op: str = "", timeout: float | None = None
    ) -> dict[str, Any]:
        try:
            return super().result(fut, op, timeout)
        except (ProcessError, RemoteError) as e:
            raise _normalize_error(e) from None

    def request(self, op: str, timeout: float | None = None, **params: Any) -> dict[str, Any]:
        return self.result(self.submit(op, **params), op, timeout)

    async def arequest(self, op: str, timeout: float | None = None, **params: Any) -> dict[str, Any]:
        try:
            return await super().arequest(op, timeout, **params)
        except (ProcessError, RemoteError) as e:
            raise _normalize_error(e) from None

    @property
    def _proc(self) -> _KillHandle:
        """Popen-style handle some tests still use (`sc._proc.kill(); sc._proc.wait()`); new code
        calls `kill()`."""
        return _KillHandle(self)


class _KillHandle:
    def __init__(self, sc: VerifierSidecar) -> None:
        self._sc = sc

    def kill(self) -> None:
        self._sc.kill()

    def wait(self) -> None:
        """kill() already waited for the exit."""
