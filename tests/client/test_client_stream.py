"""watch()'s stream handling against a scripted gRPC server (the generated servicer, real grpc.aio on
loopback): a stream that closes cleanly before a terminal status is reopened, the server's replay
is skipped up to the last event yielded, and a terminal replay ends the iteration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from sheaf_client import AsyncClient, ProofStatus, Retry, SheafError
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
