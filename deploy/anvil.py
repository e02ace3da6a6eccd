"""A local anvil node on a free loopback port, started and stopped cleanly.

Used by the demo, the integration tests and the benchmarks. anvil comes from the pinned npm
package @foundry-rs/anvil-linux-amd64 (node_modules/.bin/anvil is the binary itself); ANVIL_BIN
overrides it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parent.parent
# anvil's well-known dev accounts (mnemonic "test test ... junk"): public test keys, never real funds.
ANVIL_DEV_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
)


def anvil_binary() -> str:
    env = os.environ.get("ANVIL_BIN")
    if env:
        return env
    local = REPO_ROOT / "node_modules" / ".bin" / "anvil"
    if local.exists():
        return str(local)
    found = shutil.which("anvil")
    if not found:
        raise FileNotFoundError("anvil not found: run `make setup` (installs @foundry-rs/anvil from npm)")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Anvil:
    """`with Anvil() as node:` gives a running node at node.rpc_url; it is stopped on exit."""

    port: int = 0
    chain_id: int = 31337
    block_time: float | None = None  # None: mine on every transaction
    extra_args: list[str] = field(default_factory=list)
    startup_timeout_s: float = 30.0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Anvil:
        if self.port == 0:
            self.port = free_port()
        cmd = [
            anvil_binary(),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
        ]
        if self.block_time is not None:
            cmd += ["--block-time", str(self.block_time)]
        cmd += self.extra_args
        self.process = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"anvil exited with {self.process.returncode} at start: {err.strip()}")
            if self._answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"anvil did not answer on {self.rpc_url} within {self.startup_timeout_s}s")

    def _answers(self) -> bool:
        body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
        req = urllib.request.Request(self.rpc_url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=0.5) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def stop(self, timeout_s: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
