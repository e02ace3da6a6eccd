"""End to end: real proofs -> gRPC -> batches -> 2-of-3 operator processes -> anvil -> on-chain inclusion."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from pathlib import Path

import aiohttp
import grpc
import pytest
from agg_helpers import (
    OPERATOR_KEYS,
    ROOT,
    ChainEnv,
    proof_pool,
    start_operator,
    stop_process,
    supported_inputs,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aggregator import crypto
from aggregator.app import App
from aggregator.chain import Chain
from aggregator.client import AsyncClient
from aggregator.config import Config
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
    assert f'sheaf_submissions_total{{result="accepted"}} {float(len(inputs))}' in text
    assert 'sheaf_submissions_total{result="duplicate"} 1.0' in text
    assert "sheaf_ack_seconds_bucket" in text and "sheaf_submit_seconds_count" in text

    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc.port}") as ch:
        h = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="sheaf.v1.Aggregator")
        )
        assert h.status == health_pb2.HealthCheckResponse.SERVING


async def _cli(*args: str) -> tuple[int, str, str]:
    p = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aggregator.cli",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await p.communicate()
    return int(p.returncode or 0), out.decode(), err.decode()


async def test_cli_submit_status_and_http_post(app: App, chain_env: ChainEnv, tmp_path: Path) -> None:
    target = f"127.0.0.1:{app.grpc.port}"
    ops = [start_operator(target, k, tmp_path / f"op{i}.log") for i, k in enumerate(OPERATOR_KEYS[1:])]
    pool = proof_pool(240)
    try:
        p = pool[100]
        for name, data in (("proof.json", p.proof), ("vk.json", p.vk), ("public.json", p.public or b"")):
            (tmp_path / name).write_bytes(data)
        code, out, err = await _cli(
            "submit",
            "--target",
            target,
            "--scheme",
            "groth16",
            "--format",
            "snarkjs",
            "--proof",
            str(tmp_path / "proof.json"),
            "--vk",
            str(tmp_path / "vk.json"),
            "--public",
            str(tmp_path / "public.json"),
            "--rpc-url",
            chain_env.node.rpc_url,
            "--timeout",
            "60",
        )
        assert code == 0, err
        res = json.loads(out)
        assert res["status"] == "FINALIZED" and res["verified_on_chain"] is True
        assert res["receipt"]["leaf"] == res["statement_hash"] and res["receipt"]["kind"] == "ATTESTED"
        code, out, _ = await _cli("status", res["proof_id"], "--target", target)
        st = json.loads(out)
        assert code == 0 and st["status"] == "FINALIZED" and st["receipt"]["root"] == res["receipt"]["root"]
        # a bad proof file: exit code 2 and the normalizer's code on stderr
        (tmp_path / "bad.json").write_bytes(b"{")
        code, _, err = await _cli(
            "submit",
            "--target",
            target,
            "--scheme",
            "groth16",
            "--format",
            "snarkjs",
            "--proof",
            str(tmp_path / "bad.json"),
            "--vk",
            str(tmp_path / "vk.json"),
            "--public",
            str(tmp_path / "public.json"),
        )
        assert code == 2 and json.loads(err)["error"]["code"] == "MALFORMED"
        code, _, err = await _cli("status", "1-00", "--target", target)
        assert code == 2 and json.loads(err)["error"]["code"] == "UNKNOWN_PROOF"

        # JSON submission over HTTP
        q = pool[101]
        body = {
            "scheme": "groth16",
            "format": "snarkjs",
            "proof": base64.b64encode(q.proof).decode(),
            "vk": base64.b64encode(q.vk).decode(),
            "public": base64.b64encode(q.public or b"").decode(),
        }
        async with aiohttp.ClientSession() as s:
            url = f"http://127.0.0.1:{app.http.port}"
            async with s.post(f"{url}/v1/proofs", json=body) as r:
                assert r.status == 200
                got = await r.json()
            assert got["status"] == "QUEUED" and got["duplicate"] is False
            async with s.post(f"{url}/v1/proofs", json=dict(body, proof="%%%")) as r:
                e = (await r.json())["error"]
                assert r.status == 400 and (e["code"], e["field"]) == ("MALFORMED", "proof")
            async with s.post(
                f"{url}/v1/proofs", json=dict(body, public=base64.b64encode(b'["1"]').decode())
            ) as r:
                assert r.status == 400 and (await r.json())["error"]["code"] == "VERIFICATION_FAILED"
        async with AsyncClient(target) as c:
            fin = await c.wait_finalized(got["proof_id"], 60)
            assert fin.status == pb.FINALIZED
    finally:
        for o in ops:
            stop_process(o)


def test_config_file(tmp_path: Path) -> None:
    p = tmp_path / "sheaf.toml"
    p.write_text('[aggregator]\nmax_leaves = 7\noperators = ["0x01", "0x02"]\nthreshold = 2\n')
    cfg = Config.load(p, db_path="x.db")
    assert (cfg.max_leaves, cfg.threshold, cfg.db_path, cfg.confirmations) == (7, 2, "x.db", 2)
    p.write_text("[aggregator]\nmax_leafs = 7\n")
    with pytest.raises(ValueError, match="max_leafs"):
        Config.load(p)
    p.write_text('[aggregator]\noperators = ["0x01"]\nthreshold = 2\n')
    with pytest.raises(ValueError, match="threshold"):
        Config.load(p)
