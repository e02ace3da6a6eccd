"""The one client of sheaf-gnark's long-lived processes, which speak one protocol (docs/sidecar.md,
Go package gnark/procproto): newline-delimited JSON on stdin/stdout, request ids, one envelope

    {"id": 7, "ok": true, "result": {...}}
    {"id": 7, "ok": false, "error": {"code": "BAD_LEAF", "field": "leaves[1].proof", "message": "..."}}

and one ready line, `{"id": null, "ok": true, "event": "ready", "result": {"process", "protocol",
"max_line", "workers", "ops", ...}}`, written once the process can take requests.

    p = await GnarkProcess.start([bin, "serve"], ready_timeout=60)   # async, one child process
    r = await p.request("groth16.parse_vk", format="gnark", vk=b64)  # result dict, or raises

    sp = SyncGnarkProcess(lambda: [str(gnark_binary()), "serve"])    # sync + thread-safe
    fut = sp.submit("ping"); sp.result(fut)                           # started on first use

Failures are `ProcessError` (the process could not answer: no binary, not ready, exited, timed out)
or `RemoteError` (it answered with an error envelope: its code, field and message verbatim). Users
map them to their own errors: the normalizers' verifier sidecar (normalizers/sidecar.py) and the
aggregator's prover worker (aggregator/recursion.py).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future
from pathlib import Path
from typing import Any, TypeVar

from sheaf import errors as sheaf_errors
from sheaf.errors import SheafError
from sheaf.paths import BinaryNotFound

log = logging.getLogger("sheaf.gnark_process")

PROTOCOL = 2  # procproto.Version: the ready line must carry this
STREAM_LIMIT = 64 * 1024 * 1024  # longest response line read

_P = TypeVar("_P", bound="GnarkProcess")


class ProcessError(SheafError):
    """The process could not answer. `code` is one of the class constants; `returncode` is set
    when it exited."""

    status = sheaf_errors.UNAVAILABLE
    UNAVAILABLE = "PROCESS_UNAVAILABLE"  # no binary, did not start or get ready, wrong protocol, closed
    EXITED = "PROCESS_EXITED"  # it exited (or its output became unreadable) with the request pending
    TIMEOUT = "PROCESS_TIMEOUT"  # no answer in time (the process keeps running; the caller decides)

    def __init__(self, code: str, message: str, returncode: int | None = None) -> None:
        super().__init__(code, "", message)
        self.returncode = returncode

    def __reduce__(self) -> Any:
        return (type(self), (self.code, self.message, self.returncode))


class RemoteError(SheafError):
    """The process answered with an error envelope: its code, field and message verbatim."""


class GnarkProcess:
    """One running sheaf-gnark serving process (`serve` or `aggregate serve`), driven from one
    event loop. Requests may be in flight together; answers are matched by id, in whatever
    order the process sends them. When it exits, every pending request fails with
    ProcessError(EXITED) and so does every later one: start a new GnarkProcess to go on."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        argv: Sequence[str],
        name: str,
        on_stderr: Callable[[str], None] | None,
    ) -> None:
        self._proc = proc
        self.argv = list(argv)
        self.name = name
        self.ready: dict[str, Any] = {}  # the ready line's result (process, protocol, limits, ...)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._on_stderr = on_stderr
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._write_lock = asyncio.Lock()
        self._gone: ProcessError | None = None
        self._tasks: list[asyncio.Task[None]] = []
        assert proc.stderr is not None
        self._tasks.append(
            asyncio.create_task(self._drain_stderr(proc.stderr), name=f"{name}-stderr-{proc.pid}")
        )

    # -- lifecycle

    @classmethod
    async def spawn(
        cls: type[_P],
        argv: Sequence[str],
        *,
        name: str = "sheaf-gnark",
        on_stderr: Callable[[str], None] | None = None,
    ) -> _P:
        """Start the process (not yet ready: call wait_ready). ProcessError(UNAVAILABLE) if it
        cannot be executed."""
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=STREAM_LIMIT,
            )
        except OSError as e:
            raise ProcessError(ProcessError.UNAVAILABLE, f"{name}: cannot start {argv[0]}: {e}") from e
        return cls(proc, argv, name, on_stderr)

    async def wait_ready(self, timeout: float | None) -> dict[str, Any]:
        """Read up to the ready line (lines that are not JSON before it are skipped: they are not
        part of the protocol) and start dispatching answers. On failure, timeout or cancellation
        the process is killed."""
        try:
            await asyncio.wait_for(self._read_ready(), timeout)
        except BaseException as e:
            await self.kill()
            if isinstance(e, TimeoutError):
                raise ProcessError(
                    ProcessError.UNAVAILABLE, f"{self.name}: not ready after {timeout} s"
                ) from None
            raise
        self._tasks.append(asyncio.create_task(self._dispatch(), name=f"{self.name}-stdout-{self.pid}"))
        return self.ready

    @classmethod
    async def start(
        cls: type[_P],
        argv: Sequence[str],
        *,
        ready_timeout: float | None,
        name: str = "sheaf-gnark",
        on_stderr: Callable[[str], None] | None = None,
    ) -> _P:
        """spawn + wait_ready."""
        p = await cls.spawn(argv, name=name, on_stderr=on_stderr)
        await p.wait_ready(ready_timeout)
        return p

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    @property
    def alive(self) -> bool:
        """Running and answering (False as soon as its output ended)."""
        return self._gone is None and self._proc.returncode is None

    async def wait(self) -> int:
        return await self._proc.wait()

    async def kill(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.kill()
                await self._proc.wait()
        await self._settle()

    def _close_stdin(self) -> None:
        # with stdin closed too the transport finishes (no "Event loop is closed" at GC time)
        if self._proc.stdin is not None:
            with contextlib.suppress(Exception):
                self._proc.stdin.close()

    async def close(self, grace: float = 5.0) -> None:
        """Close stdin (the process answers what it has read, then exits 0); kill it if it has not
        exited after `grace` seconds."""
        self._close_stdin()
        try:
            await asyncio.wait_for(self._proc.wait(), grace)
        except TimeoutError:
            await self.kill(grace=0)
        await self._settle()

    async def _settle(self) -> None:
        self._close_stdin()
        for t in self._tasks:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(t, 5.0)

    def peak_rss_bytes(self) -> int:
        """The process's peak resident set (VmHWM), 0 if unknown (it has exited, or no /proc)."""
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    # -- requests

    async def request(self, op: str, *, timeout: float | None = None, **params: Any) -> dict[str, Any]:
        """Send one request; its result dict, RemoteError (an error envelope) or ProcessError."""
        if self._gone is not None:
            raise self._gone
        rid = next(self._ids)
        data = json.dumps({"id": rid, "op": op, **params}, separators=(",", ":")).encode() + b"\n"
        max_line = self.ready.get("max_line")
        if isinstance(max_line, int) and len(data) - 1 > max_line:
            # the process would discard it and answer TOO_LARGE with id null (unmatchable)
            raise RemoteError(
                "TOO_LARGE", "", f"{op}: request of {len(data) - 1} bytes exceeds max_line {max_line}"
            )
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            try:
                async with self._write_lock:
                    assert self._proc.stdin is not None
                    self._proc.stdin.write(data)
                    await self._proc.stdin.drain()
            except (BrokenPipeError, ConnectionResetError) as e:
                if self._gone is not None:
                    raise self._gone from None
                raise ProcessError(ProcessError.EXITED, f"{self.name}: write failed: {e}") from None
            try:
                msg = await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                raise ProcessError(
                    ProcessError.TIMEOUT, f"{op}: no answer within the timeout ({timeout:g} s)"
                ) from None
        finally:
            self._pending.pop(rid, None)  # a late answer is dropped
        if msg.get("ok") is True:
            res = msg.get("result")
            return res if isinstance(res, dict) else {}
        err = msg.get("error")
        err = err if isinstance(err, dict) else {}
        raise RemoteError(
            str(err.get("code") or "INTERNAL"),
            str(err.get("field") or ""),
            str(err.get("message") or f"{self.name}: error without a message"),
        )

    # -- streams

    async def _read_ready(self) -> None:
        assert self._proc.stdout is not None
        while True:
            raw = await self._proc.stdout.readline()
            if not raw:
                rc = await self._proc.wait()
                raise ProcessError(
                    ProcessError.UNAVAILABLE,
                    f"{self.name} exited ({rc}) before it was ready{self._tail()}",
                    rc,
                )
            try:
                msg = json.loads(raw)
            except ValueError:
                log.debug("%s: skipped before the ready line: %r", self.name, raw[:200])
                continue
            if not (isinstance(msg, dict) and msg.get("event") == "ready" and msg.get("ok") is True):
                raise ProcessError(
                    ProcessError.UNAVAILABLE, f"{self.name}: expected the ready line, got {raw[:200]!r}"
                )
            ready = msg.get("result")
            ready = ready if isinstance(ready, dict) else {}
            if ready.get("protocol") != PROTOCOL:
                raise ProcessError(
                    ProcessError.UNAVAILABLE,
                    f"{self.name} speaks protocol {ready.get('protocol')!r}, this client {PROTOCOL} "
                    f"(rebuild sheaf-gnark: make build/bin/sheaf-gnark)",
                )
            self.ready = ready
            return

    async def _dispatch(self) -> None:
        assert self._proc.stdout is not None
        why = ""
        try:
            while True:
                raw = await self._proc.stdout.readline()
                if not raw:
                    break
                try:
                    msg = json.loads(raw)
                    fut = self._pending.get(msg["id"]) if isinstance(msg["id"], int) else None
                except (ValueError, KeyError, TypeError):
                    log.warning("%s: not an answer, ignored: %r", self.name, raw[:200])
                    continue
                if fut is None:
                    if msg.get("ok") is False:  # e.g. an answer whose request timed out
                        log.warning("%s: unmatched error answer: %r", self.name, raw[:500])
                    continue
                if not fut.done():
                    fut.set_result(msg)
        except (ValueError, asyncio.LimitOverrunError) as e:  # a line over STREAM_LIMIT
            why = f"unreadable output ({e})"
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
        rc = await self._proc.wait()
        self._close_stdin()
        self._gone = ProcessError(
            ProcessError.EXITED, f"{self.name} pid {self.pid} {why or 'exited'} (code {rc}){self._tail()}", rc
        )
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(self._gone)
        self._pending.clear()

    async def _drain_stderr(self, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await stream.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue
            if not raw:
                return
            line = raw.decode(errors="replace").rstrip()
            if not line:
                continue
            self.stderr_tail.append(line)
            if self._on_stderr is not None:
                self._on_stderr(line)

    def _tail(self) -> str:
        tail = " | ".join(self.stderr_tail)[-500:]
        return f": {tail}" if tail else ""


class SyncGnarkProcess:
    """A GnarkProcess for synchronous callers and any event loop, thread-safe: it runs on a
    private event-loop thread, starts at the first request and again at the next request after
    the process exited (requests pending at the exit fail with ProcessError(EXITED)).

    `argv()` is called at every start (the binary is looked up again). `restarts` counts starts
    after the first."""

    def __init__(
        self,
        argv: Callable[[], Sequence[str]],
        *,
        name: str = "sheaf-gnark",
        timeout: float = 60.0,
        ready_timeout: float = 60.0,
    ) -> None:
        self._argv = argv
        self.name = name
        self.timeout = timeout
        self.ready_timeout = ready_timeout
        self.restarts = -1  # incremented on every start
        self._lock = threading.Lock()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._process: GnarkProcess | None = None
        self._starting: asyncio.Task[GnarkProcess] | None = None

    def submit(self, op: str, **params: Any) -> Future[dict[str, Any]]:
        """Send one request; the future resolves to its result dict or ProcessError/RemoteError."""
        with self._lock:
            if self._closed:
                raise ProcessError(ProcessError.UNAVAILABLE, f"{self.name}: client is closed")
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name=f"{self.name}-loop", daemon=True
                )
                self._thread.start()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(self._request(op, params), loop)

    def result(
        self, fut: Future[dict[str, Any]], op: str = "", timeout: float | None = None
    ) -> dict[str, Any]:
        """Wait for a submitted request (default timeout: self.timeout). On timeout the request is
        abandoned (a late answer is dropped) and ProcessError(TIMEOUT) raised."""
        try:
            return fut.result(timeout=self.timeout if timeout is None else timeout)
        except TimeoutError:
            fut.cancel()
            raise ProcessError(ProcessError.TIMEOUT, f"{op}: no answer within the timeout") from None
        except CancelledError:  # close() cancelled it
            raise ProcessError(ProcessError.UNAVAILABLE, f"{op}: client closed") from None

    def request(self, op: str, timeout: float | None = None, **params: Any) -> dict[str, Any]:
        return self.result(self.submit(op, **params), op, timeout)

    async def arequest(self, op: str, timeout: float | None = None, **params: Any) -> dict[str, Any]:
        fut = self.submit(op, **params)
        try:
            return await asyncio.wait_for(
                asyncio.wrap_future(fut), self.timeout if timeout is None else timeout
            )
        except TimeoutError:
            raise ProcessError(ProcessError.TIMEOUT, f"{op}: no answer within the timeout") from None
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if fut.cancelled() and not (me is not None and me.cancelling()):  # close() cancelled it
                raise ProcessError(ProcessError.UNAVAILABLE, f"{op}: client closed") from None
            raise

    def pid(self) -> int | None:
        p = self._process
        return p.pid if p is not None and p.alive else None

    def kill(self, timeout: float = 15.0) -> None:
        """Kill the running process now and return once this client has seen it exit: its pending
        requests fail with ProcessError(EXITED), the next request starts a new process (tests, a
        forced restart)."""
        with self._lock:
            loop = self._loop
        if loop is not None:
            asyncio.run_coroutine_threadsafe(self._akill(), loop).result(timeout)

    def close(self) -> None:
        """Stop the process (stdin closed: it answers what it read) and the loop thread."""
        with self._lock:
            self._closed = True
            loop, thread, self._loop = self._loop, self._thread, None
        if loop is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._aclose(), loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5)
        if not loop.is_running():
            loop.close()

    # -- on the loop thread

    async def _akill(self) -> None:
        if self._process is not None:
            await self._process.kill(grace=0)

    async def _request(self, op: str, params: dict[str, Any]) -> dict[str, Any]:
        p = await self._current()
        return await p.request(op, **params)

    async def _current(self) -> GnarkProcess:
        p = self._process
        if p is not None and p.alive:
            return p
        if self._starting is None or self._starting.done():
            self._starting = asyncio.create_task(self._start())
            # a start whose requesters all gave up must not log "exception never retrieved"
            self._starting.add_done_callback(lambda t: t.cancelled() or t.exception())
        # shielded: one requester's timeout does not abort a start the others wait for
        return await asyncio.shield(self._starting)

    async def _start(self) -> GnarkProcess:
        try:
            argv = list(self._argv())
        except BinaryNotFound as e:
            raise ProcessError(ProcessError.UNAVAILABLE, str(e)) from e
        p = await GnarkProcess.start(argv, ready_timeout=self.ready_timeout, name=self.name)
        if self._closed:
            await p.close()
            raise ProcessError(ProcessError.UNAVAILABLE, f"{self.name}: client is closed")
        self._process = p
        self.restarts += 1
        return p

    async def _aclose(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(BaseException):
                await self._starting
        if self._process is not None:
            await self._process.close()  # answers every request it has read, then exits
        # requests still waiting for a start: their callers get ProcessError(UNAVAILABLE)
        for t in asyncio.all_tasks():
            if t is not asyncio.current_task():
                t.cancel()
