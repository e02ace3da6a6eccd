"""End to end: real proofs -> gRPC -> batches -> 2-of-3 operator processes -> anvil -> on-chain inclusion."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import grpc
from agg_helpers import OPERATOR_KEYS, supported_inputs
from conftest import ChainEnv, start_operator, stop_process
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aggregator import crypto
from aggregator.app import App
from aggregator.chain import Chain
from aggregator.client import AsyncClient
from sheaf.v1 import aggregator_pb2 as pb


async def _http(port: int, path: str) -> tuple[int, bytes]:
    # the server shares this event loop: the request must not block it
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status, await r.read()


async def test_all_schemes_end_to_end(app: App, chain_env: ChainEnv, tmp_path: Path) -> None:
    target = f"127.0.0.1:{app.grpc.port}"
    inputs = [i for i in supported_inputs() if "sq1" not in i.name]
    formats = {(i.scheme, i.format) for i in inputs}
    assert {("groth16", "snarkjs"), ("groth16", "gnark"), ("halo2", "ezkl")} <= formats, formats
    # Only two of the three registered operators run: threshold 2 must still be met.
    ops = [
        start_operator(target, k, tmp_path / f"op{i}.log", chain_env.registry)
        for i, k in enumerate(OPERATOR_KEYS[:2])
    ]
    try:
        async with AsyncClient(target) as c:
            # one key goes by hash, as zkVerify allows
            first = inputs[0]
            vk_hash = await c.register_vk(first.scheme, first.format, first.vk, first.settings)
            r0 = await c.submit(
                first.scheme,
                first.format,
                first.proof,
                vk_hash=vk_hash,
                public=first.public,
                settings=first.settings,
            )
            rest = await asyncio.gather(
                *(
                    c.submit(i.scheme, i.format, i.proof, vk=i.vk, public=i.public, settings=i.settings)
                    for i in inputs[1:]
                )
            )
            subs = [r0, *rest]
            assert len({s.proof_id for s in subs}) == len(inputs)
            # resubmitting the same statement is idempotent
            again = await c.submit(
                first.scheme,
                first.format,
                first.proof,
                vk=first.vk,
                public=first.public,
                settings=first.settings,
            )
            assert again.duplicate and again.proof_id == r0.proof_id

            finals = await asyncio.gather(*(c.wait_finalized(s.proof_id, 120) for s in subs))
            assert [pb.ProofStatus.Name(f.status) for f in finals] == ["FINALIZED"] * len(subs)

            chain = Chain(chain_env.node.rpc_url, chain_env.registry)
            seen_aggs = set()
            for s in subs:
                inc = await c.inclusion(s.proof_id)
                assert inc.leaf == s.statement_hash
                assert inc.kind == pb.ATTESTED
                path = list(inc.merkle_path)
                assert crypto.verify_path(inc.root, inc.leaf, path, inc.leaf_count, inc.index)
                assert await chain.verify_inclusion(
                    inc.domain_id, inc.aggregation_id, inc.leaf, path, inc.leaf_count, inc.index
                )
                # a wrong leaf is not included
                assert not await chain.verify_inclusion(
                    inc.domain_id, inc.aggregation_id, b"\x01" * 32, path, inc.leaf_count, inc.index
                )
                seen_aggs.add((inc.domain_id, inc.aggregation_id))
            for d, a in seen_aggs:
                agg = await c.aggregation(d, a)
                oc = await chain.get_aggregation(d, a)
                assert oc is not None and oc.root == agg.root == crypto.merkle_root(list(agg.leaves))
                assert oc.kind == 2 and oc.leaf_count == agg.leaf_count
    finally:
        for p in ops:
            stop_process(p)

    # HTTP side
    code, body = await _http(app.http.port, "/healthz")
    assert code == 200
    code, body = await _http(app.http.port, "/readyz")
    assert code == 200 and json.loads(body)["ready"] is True
    code, body = await _http(app.http.port, f"/v1/proofs/{subs[1].proof_id}")
    assert code == 200 and json.loads(body)["status"] == "FINALIZED"
    code, body = await _http(app.http.port, f"/v1/proofs/{subs[1].proof_id}/inclusion")
    assert code == 200 and json.loads(body)["leaf"] == "0x" + subs[1].statement_hash.hex()
    code, body = await _http(app.http.port, "/v1/proofs/1-00")
    assert code == 404 and json.loads(body)["error"]["code"] == "UNKNOWN_PROOF"
    code, body = await _http(app.http.port, "/metrics")
    text = body.decode()
    assert code == 200
    assert f'sheaf_submissions_total{{result="accepted"}} {len(inputs)}' in text
    assert 'sheaf_submissions_total{result="duplicate"} 1' in text
    assert "sheaf_ack_seconds_bucket" in text and "sheaf_submit_seconds_count" in text

    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc.port}") as ch:
        h = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="sheaf.v1.Aggregator")
        )
        assert h.status == health_pb2.HealthCheckResponse.SERVING
