"""Issue 13 item 7: quotas that rotating addresses cannot bypass, and the chain-spend bound.

Without an allowlist a claimed prover address costs nothing to make, so the rate limit binds to the
client's network (aggregator.ingest.quota_key): here loopback is not exempted (`rate_exempt=[]`),
so 127.0.0.1 is a network like any other. Before this, the bucket was keyed on the claimed
address and every fresh address got a fresh burst. Real in-process aggregator over gRPC and HTTP."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import aiohttp
import grpc
import pytest
from agg_helpers import SUBMITTER_KEY, ChainEnv, make_config, proof_pool
from eth_account import Account

from aggregator.admission import ProofVerifier
from aggregator.app import App
from aggregator.config import Config
from aggregator.ingest import network_of
from aggregator.records import KIND_ATTESTED, BatchState, ChainInfo, NewProof, Status
from aggregator.service import Service
from aggregator.store import SqliteStore
from sheaf.hashing import keccak256
from sheaf.v1 import aggregator_pb2 as pb
from sheaf.v1 import aggregator_pb2_grpc as pbg


def test_network_of() -> None:
    assert str(network_of("203.0.113.7")) == "203.0.113.7/32"
    assert str(network_of("2001:db8:1:2:3:4:5:6")) == "2001:db8:1:2::/64"  # one subscriber's /64
    assert str(network_of("::ffff:203.0.113.7")) == "203.0.113.7/32"
    assert network_of("") is None and network_of("unix:/tmp/s") is None


async def test_fresh_addresses_share_their_networks_quota(chain_env: ChainEnv, tmp_path: Path) -> None:
    cfg = make_config(chain_env, tmp_path / "q.db", rate_per_s=0.01, burst=3, rate_exempt=[])
    app = App(cfg, submitter_key=SUBMITTER_KEY)
    await app.start()
    p = proof_pool(240)[140]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc.port}") as ch:
            stub = pbg.AggregatorStub(ch)
            codes = []
            for _ in range(4):  # each claims a brand-new address (signature junk: checked later)
                req = pb.SubmitProofRequest(
                    scheme=p.scheme,
                    format=p.format,
                    proof=p.proof,
                    vk=p.vk,
                    public=p.public or b"",
                    domain_id=1,
                )
                req.auth.prover, req.auth.nonce, req.auth.signature = (
                    Account.create().address,
                    1,
                    b"\x01" * 65,
                )
                with pytest.raises(grpc.aio.AioRpcError) as gi:
                    await stub.SubmitProof(req, timeout=10)
                md = dict(gi.value.trailing_metadata() or ())
                codes.append((gi.value.code(), md.get("sheaf-error-code"), md.get("sheaf-error-field")))
        # three burst tokens for 127.0.0.1 (spent before the signature failed) ...
        assert [c[0] for c in codes[:3]] == [grpc.StatusCode.UNAUTHENTICATED] * 3
        # ... and the fourth fresh address gets nothing: the quota is the network's
        assert codes[3] == (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED", "source")
        # the same network over HTTP, without any address: the same quota
        body = json.dumps(
            {
                "scheme": p.scheme,
                "format": p.format,
                "proof": base64.b64encode(p.proof).decode(),
                "vk": base64.b64encode(p.vk).decode(),
                "public": base64.b64encode(p.public or b"").decode(),
                "domain_id": 1,
            }
        ).encode()
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://127.0.0.1:{app.http.port}/v1/proofs",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as resp,
        ):
            err = (await resp.json())["error"]
            assert (resp.status, err["code"], err["field"]) == (429, "RATE_LIMITED", "source")
    finally:
        await app.stop()


async def test_spend_bound_holds_partial_batches_not_full_ones(tmp_path: Path) -> None:
    """min_post_interval_s: one partial batch per interval per domain (a post costs the same for 1
    leaf or 64); a full batch is never held. Real store and batcher (no chain needed)."""
    cfg = Config(
        db_path=str(tmp_path / "agg.db"),
        operators=[Account.create().address],
        max_leaves=4,
        max_wait_ms=0,  # without the bound every proof would be its own batch (and post)
        min_post_interval_s=3600,
    )
    svc = Service(cfg, SqliteStore(cfg.db_path), ProofVerifier(object()), ChainInfo(31337, "0x" + "ab" * 20))
    db = svc.db
    try:
        await db.run(db.store.insert_proofs, [_p(0)])
        assert await svc.batcher.make_batches() == 1  # the first partial batch closes at once
        await db.run(db.store.insert_proofs, [_p(1)])
        assert await svc.batcher.make_batches() == 0  # the next partial one waits for the interval
        assert (await db.run(db.store.get_proof, _p(1).proof_id)).status == Status.QUEUED  # type: ignore[union-attr]
        await db.run(db.store.insert_proofs, [_p(i) for i in range(2, 5)])
        assert await svc.batcher.make_batches() == 1  # 4 queued = max_leaves: full, not held
        assert len(await db.run(db.store.batches_in, BatchState.PENDING)) == 2
    finally:
        await svc.stop()


def _p(i: int) -> NewProof:
    st = keccak256(b"spend" + i.to_bytes(4, "big"))
    return NewProof(1, st, b"\x11" * 32, KIND_ATTESTED, "groth16", "snarkjs", b"p", b"vk", b"[]", None)
