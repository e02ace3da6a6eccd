"""watch()'s stream handling against a scripted gRPC server (the generated servicer, real grpc.aio on
loopback): a stream that closes cleanly before a terminal status is reopened, the server's replay
is skipped up to the last event yielded, and a terminal replay ends the iteration."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from sheaf_client import AsyncClient, Client, ProofStatus, Retry, SheafError
from sheaf_client._pb import aggregator_pb2 as pb
from sheaf_client._pb import aggregator_pb2_grpc as pbg

PID = "1-" + "ab" * 32


def _u(status: int, ts: int) -> Any:
    return pb.ProofStatusUpdate(proof_id=PID, status=status, updated_unix_ms=ts, domain_id=1)  # type: ignore[arg-type]


class Scripted(pbg.AggregatorServicer):
    """GetProofStatus says QUEUED; each WatchProof call replays from the first event, like the
    aggregator, and streams[n] says how far the n-th call gets before it closes cleanly."""

    def __init__(self, streams: list[int]) -> None:
        self.events = [_u(pb.RECEIVED, 10), _u(pb.VALID, 10), _u(pb.QUEUED, 11), _u(pb.AGGREGATING, 20),
                       _u(pb.SUBMITTED, 30), _u(pb.FINALIZED, 40)]  # fmt: skip
        self.streams, self.calls = streams, 0

    async def GetProofStatus(self, request: Any, context: Any) -> Any:
        return self.events[2]

    async def WatchProof(self, request: Any, context: Any) -> AsyncIterator[Any]:
        upto = self.streams[min(self.calls, len(self.streams) - 1)]
        self.calls += 1
        for e in self.events[:upto]:
            yield e


async def _serve(svc: Scripted) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    pbg.add_AggregatorServicer_to_server(svc, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def test_clean_close_before_terminal_is_reopened_and_deduplicated() -> None:
    svc = Scripted([4, 4, 6])  # closes after AGGREGATING twice, then runs to FINALIZED
    server, target = await _serve(svc)
    seen: list[SheafError] = []
    try:
        async with AsyncClient(
            target, retry=Retry(5, 0.01, 0.05), on_retry=lambda e, n, d: seen.append(e)
        ) as c:
            got = [u.status async for u in c.watch(PID)]
            assert got == [ProofStatus.AGGREGATING, ProofStatus.SUBMITTED, ProofStatus.FINALIZED]
            assert [e.code for e in seen] == ["STREAM_CLOSED", "STREAM_CLOSED"] and svc.calls == 3
            svc.calls = 0
            replayed = [u.status async for u in c.watch(PID, replay=True)]
            assert replayed[:3] == [ProofStatus.RECEIVED, ProofStatus.VALID, ProofStatus.QUEUED]
            assert replayed[-1] is ProofStatus.FINALIZED and len(replayed) == 6
    finally:
        await server.stop(None)


async def test_a_stream_that_never_finishes_gives_up_after_the_attempts() -> None:
    svc = Scripted([3])  # always closes at QUEUED
    server, target = await _serve(svc)
    try:
        async with AsyncClient(target, retry=Retry(3, 0.01, 0.05)) as c:
            try:
                async for _ in c.watch(PID):
                    raise AssertionError("nothing new ever happens")
            except SheafError as e:
                assert (e.status, e.code, e.proof_id) == (grpc.StatusCode.UNAVAILABLE, "STREAM_CLOSED", PID)
            else:
                raise AssertionError("watch must give up")
        assert svc.calls == 3
    finally:
        await server.stop(None)


def _self_signed(tmp: Path) -> tuple[bytes, bytes]:
    """A throwaway CA-less cert for 127.0.0.1/localhost (openssl CLI; test only)."""
    key, crt = tmp / "key.pem", tmp / "crt.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(crt),
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return key.read_bytes(), crt.read_bytes()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI for a test cert")
async def test_tls_with_root_certificates(tmp_path: Path) -> None:
    key, crt = _self_signed(tmp_path)
    server = grpc.aio.server()
    pbg.add_AggregatorServicer_to_server(Scripted([6]), server)
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, crt)]))
    await server.start()
    try:
        target = f"localhost:{port}"
        async with AsyncClient(target, secure=True, root_certificates=crt) as c:
            assert (await c.status(PID)).status is ProofStatus.QUEUED
        # the sync client takes the same arguments
        with Client(target, secure=True, root_certificates=crt) as sc:
            assert (await asyncio.to_thread(sc.status, PID)).status is ProofStatus.QUEUED
        # an untrusted certificate (system roots only) and plaintext both fail: no silent fallback
        for kw in ({"secure": True}, {}):
            async with AsyncClient(target, retry=Retry(attempts=1), timeout=5, **kw) as c:  # type: ignore[arg-type]
                with pytest.raises(SheafError) as e:
                    await c.status(PID)
                assert e.value.status == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(None)


async def test_sync_watch_closed_early_cancels_the_stream() -> None:
    svc = Scripted([6])
    server, target = await _serve(svc)
    try:
        with Client(target) as c:

            def first_two() -> list[ProofStatus]:
                out = []
                for u in c.watch(PID, replay=True):
                    out.append(u.status)
                    if len(out) == 2:
                        break  # closes the generator: the async stream is cancelled on the loop
                return out

            assert await asyncio.to_thread(first_two) == [ProofStatus.RECEIVED, ProofStatus.VALID]
            assert (await asyncio.to_thread(c.status, PID)).status is ProofStatus.QUEUED
    finally:
        await server.stop(None)


def test_status_update_carries_the_batch_and_the_provers_progress() -> None:
    """batch_id and progress (proto fields 11, 12) reach the typed StatusUpdate; an unset optional
    progress is None, not "" (a batch not being proved says nothing)."""
    from sheaf_client import StatusUpdate

    m = pb.ProofStatusUpdate(
        proof_id=PID, status=pb.AGGREGATING, batch_id=7, progress="level 1 of 2, 3 of 4 jobs done"
    )
    u = StatusUpdate.from_pb(m)
    assert (u.batch_id, u.progress) == (7, "level 1 of 2, 3 of 4 jobs done")
    quiet = StatusUpdate.from_pb(pb.ProofStatusUpdate(proof_id=PID, status=pb.QUEUED))
    assert (quiet.batch_id, quiet.progress) == (0, None)
    empty = StatusUpdate.from_pb(pb.ProofStatusUpdate(proof_id=PID, status=pb.AGGREGATING, progress=""))
    assert empty.progress == ""  # set but empty stays distinguishable from unset
