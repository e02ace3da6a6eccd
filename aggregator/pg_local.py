"""A throwaway PostgreSQL server on loopback, for the tests, `make bench` and local trials of the
PostgreSQL store (aggregator.store_pg): `initdb` a cluster in a temporary directory, start it on a
free 127.0.0.1 port (its unix socket in that directory too), wait until it accepts connections,
stop it and delete the directory.

It lives in the aggregator package, next to the backend it serves, so that tests (tests/), benchmarks
(bench/, above the aggregator) and `aggregator pg-local` all use one copy, type-checked with the
rest. It never installs anything: the server binaries come from the system (`make setup` runs
tools/ensure-postgres, which installs Debian's `postgresql` package when they are missing).

PostgreSQL refuses to run as root; when we are root the cluster is owned by, and every server
command runs as, an unprivileged account (`postgres` if the system has one, else `nobody`) through
setpriv. Connections need the generated password (scram-sha-256), also over loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

import psycopg

__all__ = ["LocalPostgres", "PostgresNotFound", "find_bin_dir"]

SUPERUSER = "sheaf"


class PostgresNotFound(RuntimeError):
    pass


def find_bin_dir() -> Path:
    """The directory holding initdb, pg_ctl and postgres: $SHEAF_PG_BIN, PATH, then Debian's
    /usr/lib/postgresql/<newest>/bin."""
    env = os.environ.get("SHEAF_PG_BIN", "")
    cands = [Path(env)] if env else []
    found = shutil.which("initdb")
    if found:
        cands.append(Path(found).resolve().parent)
    cands += [
        Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    ][::-1]
    for d in cands:
        if all((d / b).exists() for b in ("initdb", "pg_ctl", "postgres")):
            return d
    raise PostgresNotFound(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: run `make setup` "
        "(tools/ensure-postgres installs Debian's postgresql package) or set SHEAF_PG_BIN"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_account() -> tuple[int, int] | None:
    """(uid, gid) to run the server as, or None when we are not root (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return pw.pw_uid, pw.pw_gid
    raise PostgresNotFound("running as root and neither a 'postgres' nor a 'nobody' account exists")


class LocalPostgres:
    """One cluster. `start()` / `stop()`, or `with LocalPostgres() as pg:`; `url(db)` for clients.

    `durable=False` (tests) turns fsync off: a commit is still a commit for every client (what
    the store's ack-after-COMMIT relies on), only an OS crash could lose it."""

    def __init__(self, root: str | Path | None = None, *, durable: bool = True, max_connections: int = 100):
        self.bin = find_bin_dir()
        self._own_root = root is None
        # directly under the system temp dir: the unprivileged server account must reach it
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="sheaf-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.durable = durable
        self.max_connections = max_connections
        self.account = _server_account()
        self.port = 0
        self.password = ""
        self.started = False

    # -- lifecycle ---------------------------------------------------------------------------------

    def _run(self, args: Sequence[str | Path], *, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if self.account is not None:
            uid, gid = self.account
            cmd = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *cmd]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = env["LANG"] = "C.UTF-8"
        p = subprocess.run(cmd, cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}\n{tail}")
        return p

    def start(self) -> LocalPostgres:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.account is not None:
            os.chown(self.root, *self.account)
        os.chmod(self.root, 0o700)
        pwfile = self.root / "pw"
        if not self.data.exists():
            self.password = secrets.token_hex(16)
            pwfile.write_text(self.password + "\n")
            if self.account is not None:
                os.chown(pwfile, *self.account)
            self._run(
                [
                    self.bin / "initdb",
                    "-D",
                    self.data,
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-instructions",
                    *([] if self.durable else ["--no-sync"]),
                ]
            )
        else:
            self.password = pwfile.read_text().strip()
        opts = [
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.root}",
            f"-c max_connections={self.max_connections}",
        ]
        if not self.durable:
            opts += ["-c fsync=off", "-c full_page_writes=off"]
        last: Exception | None = None
        for _ in range(3):  # the free port may be taken between the probe and the bind
            self.port = _free_port()
            try:
                self._run(
                    [
                        self.bin / "pg_ctl",
                        "start",
                        "-w",
                        "-t",
                        "60",
                        "-D",
                        self.data,
                        "-l",
                        self.log,
                        "-o",
                        " ".join([f"-p {self.port}", *opts]),
                    ]
                )
                self.started = True
                return self
            except RuntimeError as e:
                last = e
        raise RuntimeError(f"PostgreSQL did not start: {last}")

    def restart(self) -> None:
        """Stop (fast: open connections are cut) and start again on the same port and socket (the
        options are pg_ctl's record of the last start; -l: the new server must not hold our pipes)."""
        self._run(
            [self.bin / "pg_ctl", "restart", "-w", "-t", "60", "-m", "fast", "-D", self.data, "-l", self.log]
        )

    def stop(self, *, remove: bool | None = None) -> None:
        if self.started:
            try:
                self._run([self.bin / "pg_ctl", "stop", "-w", "-m", "fast", "-D", self.data], timeout=60)
            finally:
                self.started = False
        if remove if remove is not None else self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- clients -----------------------------------------------------------------------------------

    def url(self, dbname: str = "postgres", *, schema: str = "") -> str:
        """A libpq URL for `dbname` over loopback TCP (with `schema` first on the search path)."""
        u = f"postgresql://{SUPERUSER}:{quote(self.password)}@127.0.0.1:{self.port}/{dbname}"
        if schema:
            u += "?options=" + quote(f"-csearch_path={schema}")
        return u

    def create_database(self, name: str) -> str:
        """A fresh, empty database; returns its URL."""
        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def create_schema(self, name: str, dbname: str = "postgres") -> str:
        """A fresh, empty schema (cheaper than a database: one per test); returns a URL using it."""
        with psycopg.connect(self.url(dbname), autocommit=True) as c:
            c.execute(f'CREATE SCHEMA "{name}"')
        return self.url(dbname, schema=name)


@contextlib.contextmanager
def local_postgres(*, durable: bool = False) -> Iterator[LocalPostgres]:
    pg = LocalPostgres(durable=durable)
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m aggregator.pg_local [--dir D]`: run a server until Ctrl-C, print its URL."""
    ap = argparse.ArgumentParser(prog="aggregator.pg_local", description=main.__doc__)
    ap.add_argument("--dir", default=None, help="cluster directory (kept); default: a temp dir (removed)")
    a = ap.parse_args(argv)
    pg = LocalPostgres(a.dir)
    pg.start()
    print(pg.url(), flush=True)
    stop = False

    def on_signal(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
