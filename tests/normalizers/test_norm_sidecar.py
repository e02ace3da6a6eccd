"""The sidecar client against the real `sheaf-gnark serve`: multiplexing, restart, missing binary."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from normalizers.api import Normalizer
from normalizers.errors import Code, NormalizeError
from normalizers.sidecar import VerifierSidecar, find_binary


def test_ping_version(gnark_bin: Path) -> None:
    sc = VerifierSidecar(str(gnark_bin))
    try:
        assert sc.request("ping")["pong"] is True
        v = sc.request("version")
        assert v["protocol"] == 2 and v["gnark"].startswith("v0.")
    finally:
        sc.close()


def test_concurrent_requests_are_matched_by_id(gnark_bin: Path) -> None:
    sc = VerifierSidecar(str(gnark_bin))
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for _ in range(50):
                # a mix of fast and failing requests from many threads; each must get its own answer
                assert sc.request("ping")["pong"] is True
                r = sc.request(
                    "groth16.verify_batch",
                    items=[{"canonical_vk": "zz", "proof": "", "public_inputs": []}] * k,
                )
                # k results means this thread got the answer to its own request
                assert len(r["results"]) == k and all(x["code"] == "MALFORMED" for x in r["results"])
        except BaseException as e:  # collected for the main thread
            errors.append(e)

    try:
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(1, 9)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors[:1]
        assert sc.restarts == 0
    finally:
        sc.close()


async def test_async_requests(gnark_bin: Path) -> None:
    sc = VerifierSidecar(str(gnark_bin))
    try:
        res = await asyncio.gather(*(sc.arequest("ping") for _ in range(20)))
        assert all(r["pong"] for r in res)
    finally:
        sc.close()


def test_unknown_op_is_malformed(gnark_bin: Path) -> None:
    sc = VerifierSidecar(str(gnark_bin))
    try:
        with pytest.raises(NormalizeError) as ei:
            sc.request("no.such.op")
        assert (ei.value.code, ei.value.field) == (Code.MALFORMED, "op")
    finally:
        sc.close()


def test_restart_after_crash(gnark_bin: Path) -> None:
    sc = VerifierSidecar(str(gnark_bin))
    try:
        sc.request("ping")
        first = sc.pid()
        assert first is not None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while sc.pid() is not None and time.monotonic() < deadline:  # the client sees it exit
            time.sleep(0.01)
        assert sc.request("ping")["pong"] is True
        assert sc.pid() != first and sc.restarts == 1
    finally:
        sc.close()


def test_missing_binary_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEAF_GNARK_BIN", str(tmp_path / "nope"))
    monkeypatch.setattr("sheaf.paths.REPO_BIN", tmp_path / "nope2")
    monkeypatch.setenv("PATH", str(tmp_path))
    with Normalizer() as n, pytest.raises(NormalizeError) as ei:
        n.ctx.sidecar().request("ping")
    assert ei.value.code == Code.SIDECAR_UNAVAILABLE and "sheaf-gnark binary not found" in ei.value.message


def test_explicit_binary_never_falls_back(
    tmp_path: Path, gnark_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A configured path that does not exist is an error, even with a working binary elsewhere."""
    monkeypatch.setenv("SHEAF_GNARK_BIN", str(gnark_bin))
    with pytest.raises(NormalizeError) as ei:
        find_binary(str(tmp_path / "typo"))
    assert ei.value.code == Code.SIDECAR_UNAVAILABLE and "typo" in ei.value.message
    assert find_binary(None) == gnark_bin


def test_closed_client_refuses(gnark_bin: Path) -> None:
    sc = VerifierSidecar(str(gnark_bin))
    sc.request("ping")
    sc.close()
    with pytest.raises(NormalizeError) as ei:
        sc.request("ping")
    assert ei.value.code == Code.SIDECAR_UNAVAILABLE


def test_timeout_is_sidecar_unavailable(gnark_bin: Path) -> None:
    sc = VerifierSidecar(str(gnark_bin), timeout=1e-6)
    try:
        with pytest.raises(NormalizeError) as ei:
            sc.request(
                "groth16.verify_batch",
                items=[{"canonical_vk": "00", "proof": "", "public_inputs": []}] * 2000,
            )
        assert ei.value.code == Code.SIDECAR_UNAVAILABLE and "timeout" in ei.value.message
        assert sc.request("ping", timeout=30)["pong"] is True  # the late answer does not confuse the next one
    finally:
        sc.close()
