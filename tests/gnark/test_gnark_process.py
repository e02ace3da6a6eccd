"""The one client of sheaf-gnark's processes (sheaf.gnark_process) against the real binary:
answers matched by id out of order, a crash failing pending requests with a coded error and the
next request restarting the process, error envelopes mapped to the callers' errors, and both
serving commands (`serve`, `aggregate serve`) speaking the same envelope and ready line."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from normalizers.errors import Code, NormalizeError
from normalizers.sidecar import VerifierSidecar, _normalize_error
from sheaf.gnark_process import PROTOCOL, GnarkProcess, ProcessError, RemoteError, SyncGnarkProcess
from sheaf.paths import recursion_cache_dir

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "gnark"
BIN = Path(os.environ.get("SHEAF_GNARK_BIN", ROOT / "build" / "bin" / "sheaf-gnark"))


@pytest.fixture(scope="module")
def bin_path() -> str:
    assert BIN.exists(), f"{BIN} is missing: make build/bin/sheaf-gnark"
    return str(BIN)


def b64(name: str, file: str) -> str:
    return base64.b64encode((FIX / name / file).read_bytes()).decode()


async def test_ready_line_and_out_of_order_answers(bin_path: str) -> None:
    p = await GnarkProcess.start([bin_path, "serve", "--workers", "2"], ready_timeout=30)
    try:
        assert p.ready["process"] == "verifier" and p.ready["protocol"] == PROTOCOL == 2
        assert p.ready["workers"] == 2 and "groth16.verify_batch" in p.ready["ops"]
        r = await p.request(
            "groth16.normalize",
            format="gnark",
            vk=b64("groth16_n1", "vk.bin"),
            proof=b64("groth16_n1", "proof.bin"),
            public=b64("groth16_n1", "public.bin"),
        )
        item = {k: r[k] for k in ("canonical_vk", "proof", "public_inputs")}
        done: list[str] = []

        async def tracked(name: str, op: str, **params: Any) -> dict[str, Any]:
            res = await p.request(op, **params)
            done.append(name)
            return res

        # the slow batch is sent first; the ping sent after it is answered first (two workers)
        slow = asyncio.create_task(tracked("slow", "groth16.verify_batch", items=[item] * 1024))
        await asyncio.sleep(0.05)
        fast = await tracked("fast", "ping")
        res = await slow
        assert fast == {"pong": True} and len(res["results"]) == 1024 and all(x["ok"] for x in res["results"])
        assert done == ["fast", "slow"]
    finally:
        await p.close()
    assert p.returncode == 0  # EOF on stdin: answers what it read, exits 0


async def test_error_envelopes(bin_path: str) -> None:
    p = await GnarkProcess.start([bin_path, "serve", "--max-line", "4096"], ready_timeout=30)
    try:
        with pytest.raises(RemoteError) as ei:
            await p.request("no.such.op")
        assert (ei.value.code, ei.value.field) == ("MALFORMED", "op") and "unknown op" in ei.value.message
        raw = (FIX / "groth16_n1" / "proof.raw.bin").read_bytes()
        with pytest.raises(RemoteError) as ei:
            await p.request(
                "groth16.normalize",
                format="gnark",
                vk=b64("groth16_n1", "vk.bin"),
                proof=base64.b64encode(raw[:-1]).decode(),
                public=b64("groth16_n1", "public.bin"),
            )
        assert ei.value.code == "INVALID_LENGTH"
        with pytest.raises(RemoteError) as ei:
            await p.request("groth16.parse_vk", format="gnark", vk="", bogus=1)
        assert (ei.value.code, ei.value.field) == ("MALFORMED", "bogus")
        # over max_line: refused here (the process could only answer it with id null)
        with pytest.raises(RemoteError) as ei:
            await p.request("ping", pad="x" * 5000)
        assert ei.value.code == "TOO_LARGE"
        assert await p.request("ping", timeout=10) == {"pong": True}
    finally:
        await p.close()


def test_sidecar_maps_errors_to_normalize_errors(bin_path: str) -> None:
    sc = VerifierSidecar(bin_path)
    try:
        with pytest.raises(NormalizeError) as ei:
            sc.request("no.such.op")
        assert (ei.value.code, ei.value.field) == (Code.MALFORMED, "op")
        with pytest.raises(NormalizeError) as ei:
            sc.request("groth16.parse_vk", format="gnark", vk=base64.b64encode(b"\x00" * 10).decode())
        assert ei.value.code == Code.INVALID_LENGTH and ei.value.field.startswith("vk")
    finally:
        sc.close()
    # a code the normalizers do not know is INTERNAL; a process failure is SIDECAR_UNAVAILABLE
    e = _normalize_error(RemoteError("BAD_LEAF", "leaves[0]", "x"))
    assert (e.code, e.field) == (Code.INTERNAL, "leaves[0]")
    e = _normalize_error(ProcessError(ProcessError.EXITED, "gone", 137))
    assert (e.code, e.field, e.message) == (Code.SIDECAR_UNAVAILABLE, "sidecar", "gone")


def test_crash_fails_pending_requests_then_restarts(bin_path: str) -> None:
    sc = VerifierSidecar(bin_path)
    try:
        assert sc.request("ping") == {"pong": True}
        first = sc.pid()
        assert first is not None and sc.restarts == 0
        os.kill(first, signal.SIGSTOP)  # requests sent now stay pending
        futs = [sc.submit("ping") for _ in range(3)]
        time.sleep(0.2)
        assert not any(f.done() for f in futs)
        os.kill(first, signal.SIGKILL)
        for f in futs:
            with pytest.raises(NormalizeError) as ei:
                sc.result(f, "ping", timeout=10)
            assert ei.value.code == Code.SIDECAR_UNAVAILABLE and "exited" in ei.value.message
        assert sc.pid() is None
        assert sc.request("ping") == {"pong": True}  # the next request starts a fresh process
        assert sc.pid() not in (None, first) and sc.restarts == 1
    finally:
        sc.close()


def test_async_core_crash_is_process_exited(bin_path: str) -> None:
    async def main() -> None:
        p = await GnarkProcess.start([bin_path, "serve"], ready_timeout=30)
        os.kill(p.pid, signal.SIGSTOP)
        pending = asyncio.ensure_future(p.request("ping"))
        await asyncio.sleep(0.1)
        os.kill(p.pid, signal.SIGKILL)
        with pytest.raises(ProcessError) as ei:
            await pending
        assert ei.value.code == ProcessError.EXITED and ei.value.returncode == -signal.SIGKILL
        assert not p.alive
        with pytest.raises(ProcessError):  # a dead process takes no more requests
            await p.request("ping")

    asyncio.run(main())


def test_sync_client_from_threads_and_loops(bin_path: str) -> None:
    sp = SyncGnarkProcess(lambda: [bin_path, "serve"], timeout=30)
    try:
        futs = [sp.submit("ping") for _ in range(50)]
        assert all(sp.result(f) == {"pong": True} for f in futs)

        async def many() -> list[dict[str, Any]]:
            return await asyncio.gather(*(sp.arequest("ping") for _ in range(20)))

        assert all(r == {"pong": True} for r in asyncio.run(many()))
        assert sp.restarts == 0
    finally:
        sp.close()
    with pytest.raises(ProcessError) as ei:
        sp.submit("ping")
    assert ei.value.code == ProcessError.UNAVAILABLE


async def test_wrong_protocol_or_no_ready_line(tmp_path: Path) -> None:
    old = tmp_path / "old-sheaf-gnark"
    old.write_text(
        "#!/bin/sh\n"
        'echo \'{"id":null,"ok":true,"event":"ready","protocol":1,"max_line":10,"workers":1}\'\n'
        "cat >/dev/null\n"
    )
    old.chmod(0o755)
    with pytest.raises(ProcessError) as ei:
        await GnarkProcess.start([str(old)], ready_timeout=10)
    assert ei.value.code == ProcessError.UNAVAILABLE and "rebuild sheaf-gnark" in ei.value.message
    dies = tmp_path / "dies"
    dies.write_text("#!/bin/sh\necho 'log line'\necho boom >&2\nexit 3\n")
    dies.chmod(0o755)
    with pytest.raises(ProcessError) as ei:
        await GnarkProcess.start([str(dies)], ready_timeout=10)
    assert ei.value.returncode == 3 and "boom" in ei.value.message
    with pytest.raises(ProcessError) as ei:
        await GnarkProcess.start([str(tmp_path / "missing")], ready_timeout=10)
    assert ei.value.code == ProcessError.UNAVAILABLE


@pytest.mark.slow
@pytest.mark.outer_keys  # runs last, once tools/run-tests' background setup has made the keys
async def test_prover_worker_speaks_the_same_protocol(bin_path: str) -> None:
    """`aggregate serve` (b1_p1, from cached keys only: a cold dev setup takes 10+ minutes) writes
    the same ready line and answers like `serve`."""
    shape = ["--batch", "1", "--npub", "1"]
    c = subprocess.run([bin_path, "aggregate", "compile", *shape], capture_output=True, text=True, check=True)
    if not json.loads(c.stdout)["keys_cached"]:
        pytest.skip(
            f"no cached b1_p1 keys under {recursion_cache_dir()} (run sheaf-deploy or aggregate setup)"
        )
    prover = await GnarkProcess.start([bin_path, "aggregate", "serve", *shape], ready_timeout=600)
    verifier = await GnarkProcess.start([bin_path, "serve"], ready_timeout=30)
    try:
        assert prover.ready["process"] == "prover" and prover.ready["protocol"] == verifier.ready["protocol"]
        assert prover.ready["shape"] == {"batch": 1, "npub": 1} and prover.ready["workers"] == 1
        assert {"info", "prove", "verify", "ping", "version"} <= set(prover.ready["ops"])
        for p in (prover, verifier):
            assert await p.request("ping") == {"pong": True}
            assert (await p.request("version"))["protocol"] == PROTOCOL
        errs = []
        for p in (prover, verifier):
            with pytest.raises(RemoteError) as ei:
                await p.request("fold")
            errs.append((ei.value.code, ei.value.field))
        assert errs == [("MALFORMED", "op")] * 2
        with pytest.raises(RemoteError) as ei:
            await prover.request("verify", leaves=["0x12"], proof="0x00")
        assert (ei.value.code, ei.value.field) == ("BAD_BATCH", "leaves[0]")
    finally:
        await prover.close()
        await verifier.close()


def test_close_fails_requests_still_waiting_for_a_start(tmp_path: Path) -> None:
    slow = tmp_path / "never-ready"
    slow.write_text("#!/bin/sh\nexec sleep 60\n")
    slow.chmod(0o755)
    sp = SyncGnarkProcess(lambda: [str(slow)], timeout=30, ready_timeout=60)
    fut = sp.submit("ping")
    time.sleep(0.2)
    t0 = time.monotonic()
    sp.close()
    with pytest.raises(ProcessError) as ei:
        sp.result(fut, "ping")
    assert ei.value.code == ProcessError.UNAVAILABLE and "closed" in ei.value.message
    assert time.monotonic() - t0 < 10
