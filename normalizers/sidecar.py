"""Client for the gnark sidecar (`sheaf-gnark serve`): newline-delimited JSON over stdin/stdout.

One subprocess, many concurrent callers: each request gets an id, a reader thread resolves the
matching future (responses may come back out of order). If the process dies, pending requests fail
with SIDECAR_UNAVAILABLE and the next request starts a fresh process.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import IO, Any

from normalizers.errors import Code, NormalizeError

REPO_BIN = Path(__file__).resolve().parent.parent / "build" / "bin" / "sheaf-gnark"
DEFAULT_TIMEOUT = 60.0


def find_binary(explicit: str | None = None) -> Path:
    """`explicit` if given (it must exist: a configured path never falls back to another binary),
    else SHEAF_GNARK_BIN, the repo's build/bin, PATH; a clear error if none exists."""
    if explicit:
        if Path(explicit).is_file() and os.access(explicit, os.X_OK):
            return Path(explicit)
        raise NormalizeError(
            Code.SIDECAR_UNAVAILABLE, "sidecar", f"sheaf-gnark binary not found: {explicit} is not executable"
        )
    candidates = [os.environ.get("SHEAF_GNARK_BIN"), str(REPO_BIN), shutil.which("sheaf-gnark")]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return Path(c)
    raise NormalizeError(
        Code.SIDECAR_UNAVAILABLE,
        "sidecar",
        f"sheaf-gnark binary not found (set SHEAF_GNARK_BIN or run `make setup`; looked at {REPO_BIN})",
    )


class Sidecar:
    def __init__(self, binary: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._binary = binary
        self.timeout = timeout
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, Future[dict[str, Any]]] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False
        self.restarts = -1  # incremented on every start
        self._stderr_tail = b""

    # -- process management
    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._closed:
            raise NormalizeError(Code.SIDECAR_UNAVAILABLE, "sidecar", "client is closed")
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        binary = find_binary(self._binary)
        proc = subprocess.Popen(
            [str(binary), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
        )
        self._proc = proc
        self.restarts += 1
        assert proc.stdout is not None and proc.stderr is not None
        threading.Thread(target=self._read, args=(proc, proc.stdout), daemon=True).start()
        threading.Thread(target=self._drain, args=(proc.stderr,), daemon=True).start()
        return proc

    def _drain(self, err: IO[bytes]) -> None:
        for line in err:
            self._stderr_tail = (self._stderr_tail + line)[-2000:]

    def _read(self, proc: subprocess.Popen[bytes], out: IO[bytes]) -> None:
        for line in out:
            try:
                msg = json.loads(line)
                fut = self._pending.pop(int(msg["id"]), None)
            except (ValueError, KeyError, TypeError):
                continue  # not a response line (e.g. a log line); ignore
            if fut is not None and not fut.done():
                fut.set_result(msg)
        proc.wait()
        with self._lock:
            if self._proc is proc:
                self._proc = None
            # only this process's requests are pending on it: everything older failed with it
            dead = list(self._pending.items())
            for rid, fut in dead:
                if getattr(fut, "_sheaf_proc", None) is proc:
                    self._pending.pop(rid, None)
                    if not fut.done():
                        tail = self._stderr_tail.decode(errors="replace")[-500:]
                        fut.set_exception(
                            NormalizeError(
                                Code.SIDECAR_UNAVAILABLE,
                                "sidecar",
                                f"sheaf-gnark exited (code {proc.returncode}) {tail}".strip(),
                            )
                        )

    # -- requests
    def submit(self, op: str, **params: Any) -> Future[dict[str, Any]]:
        fut: Future[dict[str, Any]] = Future()
        with self._lock:
            proc = self._ensure()
            rid = next(self._ids)
            fut._sheaf_proc = proc  # type: ignore[attr-defined]
            fut._sheaf_id = rid  # type: ignore[attr-defined]
            self._pending[rid] = fut
            line = json.dumps({"id": rid, "op": op, **params}, separators=(",", ":")).encode() + b"\n"
            try:
                assert proc.stdin is not None
                proc.stdin.write(line)
            except (BrokenPipeError, OSError) as e:
                self._pending.pop(rid, None)
                fut.set_exception(NormalizeError(Code.SIDECAR_UNAVAILABLE, "sidecar", f"write failed: {e}"))
        return fut

    def result(self, fut: Future[dict[str, Any]], op: str, timeout: float | None = None) -> dict[str, Any]:
        try:
            msg = fut.result(timeout=self.timeout if timeout is None else timeout)
        except FutureTimeout:
            self._pending.pop(getattr(fut, "_sheaf_id", -1), None)  # a late answer is dropped
            raise NormalizeError(
                Code.SIDECAR_UNAVAILABLE, "sidecar", f"{op}: no answer within the timeout"
            ) from None
        return _check(msg)

    def request(self, op: str, timeout: float | None = None, **params: Any) -> dict[str, Any]:
        return self.result(self.submit(op, **params), op, timeout)

    async def arequest(self, op: str, timeout: float | None = None, **params: Any) -> dict[str, Any]:
        fut = self.submit(op, **params)
        try:
            msg = await asyncio.wait_for(
                asyncio.wrap_future(fut), self.timeout if timeout is None else timeout
            )
        except TimeoutError:
            self._pending.pop(getattr(fut, "_sheaf_id", -1), None)
            raise NormalizeError(
                Code.SIDECAR_UNAVAILABLE, "sidecar", f"{op}: no answer within the timeout"
            ) from None
        return _check(msg)

    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            proc, self._proc = self._proc, None
        if proc is not None:
            try:
                assert proc.stdin is not None
                proc.stdin.close()
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()


def _check(msg: dict[str, Any]) -> dict[str, Any]:
    if msg.get("ok") is True:
        return msg
    code = str(msg.get("code") or "INTERNAL")
    if code not in Code.__members__:
        code = "INTERNAL"
    raise NormalizeError(code, str(msg.get("field") or "sidecar"), str(msg.get("message") or "sidecar error"))
