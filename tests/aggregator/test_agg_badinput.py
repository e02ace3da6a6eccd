"""Bad input over real gRPC: every rejection has the right status and code; health stays SERVING."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from agg_helpers import (
    FIX,
    OPERATOR_KEYS,
    SRS,
    SUBMITTER_KEY,
    ChainEnv,
    Input,
    fixture_inputs,
    make_config,
    proof_pool,
)
from eth_account import Account
from eth_keys import keys
from grpc_health.v1 import health_pb2, health_pb2_grpc

from aggregator import attestation, crypto
from aggregator.admission import ProofVerifier, sign_submission
from aggregator.app import App
from aggregator.attestation import recover_refusal, sign_refusal
from aggregator.chain import Chain
from aggregator.client import AggregatorError, AsyncClient
from aggregator.operator import check_task
from normalizers.api import Normalizer, ProofInput
from normalizers.errors import NormalizeError
from normalizers.statement import BN254_R
from sheaf.v1 import aggregator_pb2 as pb
from sheaf.v1 import aggregator_pb2_grpc as pbg


def _snark(name: str = "mul1_groth16", i: int = 0) -> Input:
    return next(x for x in fixture_inputs() if x.name == f"snarkjs/{name}/{i}")


def _with(inp: Input, **kw: Any) -> Input:
    d = dict(inp.__dict__)
    d.update(kw)
    return Input(**d)


def _bad_corpus() -> list[tuple[str, Input]]:
    g = _snark()
    proof = json.loads(g.proof)
    bad_point = dict(proof, pi_a=["1", "1", "1"])
    gn = next(x for x in fixture_inputs() if x.name == "gnark/groth16_n1")
    ez = next(x for x in fixture_inputs() if x.name.startswith("ezkl/"))
    ezp = json.loads(ez.proof)
    ezp["proof"] = [(b + 1) % 256 if i == 100 else b for i, b in enumerate(ezp["proof"])]
    return [
        ("malformed json", _with(g, proof=b"{")),
        ("tampered public", _with(g, public=b'["34"]')),
        ("public count", _with(g, public=b'["33", "1"]')),
        ("non-canonical public", _with(g, public=json.dumps([str(BN254_R)]).encode())),
        ("unknown scheme", _with(g, scheme="groth17")),
        ("scheme/format mismatch", _with(g, format="ezkl")),
        ("point not on curve", _with(g, proof=json.dumps(bad_point).encode())),
        ("vk of another circuit", _with(g, vk=_snark("sq1_groth16").vk)),
        ("gnark truncated proof", _with(gn, proof=gn.proof[:-7])),
        ("ezkl tampered proof", _with(ez, proof=json.dumps(ezp).encode())),
    ]


def _expected(n: Normalizer, i: Input) -> NormalizeError:
    with pytest.raises(NormalizeError) as ei:
        n.normalize(ProofInput(i.scheme, i.format, i.proof, i.vk, i.public, i.settings))
    return ei.value


async def _serving(port: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        for svc in ("", "sheaf.v1.Aggregator"):
            h = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=svc))
            assert h.status == health_pb2.HealthCheckResponse.SERVING


async def test_rejections_over_grpc(app: App) -> None:
    target = f"127.0.0.1:{app.grpc.port}"
    n = Normalizer(srs=SRS)
    good = _snark()
    async with AsyncClient(target) as c:
        for label, inp in _bad_corpus():
            want = _expected(n, inp)
            with pytest.raises(AggregatorError) as ei:
                await c.submit(
                    inp.scheme, inp.format, inp.proof, vk=inp.vk, public=inp.public, settings=inp.settings
                )
            e = ei.value
            assert e.status == grpc.StatusCode.INVALID_ARGUMENT, label
            assert (e.code, e.field) == (want.code.value, want.field), label
        # vk problems
        with pytest.raises(AggregatorError) as ei:
            await c.submit(good.scheme, good.format, good.proof, public=good.public)
        assert (ei.value.status, ei.value.code) == (grpc.StatusCode.INVALID_ARGUMENT, "MISSING_VK")
        with pytest.raises(AggregatorError) as ei:  # a domain this aggregator does not serve
            await c.submit(good.scheme, good.format, good.proof, vk=good.vk, public=good.public, domain_id=77)
        assert (ei.value.status, ei.value.code, ei.value.field) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "UNKNOWN_DOMAIN",
            "domain_id",
        )
        with pytest.raises(AggregatorError) as ei:
            await c.submit(good.scheme, good.format, good.proof, vk_hash=b"\x42" * 32, public=good.public)
        assert (ei.value.status, ei.value.code, ei.value.field) == (
            grpc.StatusCode.NOT_FOUND,
            "UNKNOWN_VK",
            "vk_hash",
        )
        with pytest.raises(AggregatorError) as ei:
            await c.submit(good.scheme, good.format, good.proof, vk_hash=b"\x42" * 3, public=good.public)
        assert (ei.value.status, ei.value.code) == (grpc.StatusCode.INVALID_ARGUMENT, "BAD_VK_HASH")
        with pytest.raises(AggregatorError) as ei:
            await c.register_vk("groth16", "snarkjs", b"{}")
        assert ei.value.status == grpc.StatusCode.INVALID_ARGUMENT and ei.value.field.startswith("vk")
        # oversize: over the normalizer's proof limit, then over the gRPC message limit
        with pytest.raises(AggregatorError) as ei:
            await c.submit(good.scheme, good.format, b" " * (2 << 20), vk=good.vk, public=good.public)
        assert (ei.value.status, ei.value.code, ei.value.field) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "TOO_LARGE",
            "proof",
        )
        with pytest.raises(AggregatorError) as ei:
            await c.submit(good.scheme, good.format, b" " * (5 << 20), vk=good.vk, public=good.public)
        assert ei.value.status == grpc.StatusCode.RESOURCE_EXHAUSTED
        # unknown ids
        with pytest.raises(AggregatorError) as ei:
            await c.status("1-" + "00" * 32)
        assert (ei.value.status, ei.value.code) == (grpc.StatusCode.NOT_FOUND, "UNKNOWN_PROOF")
        with pytest.raises(AggregatorError) as ei:
            async for _ in c.watch("nope"):
                pass
        assert ei.value.status == grpc.StatusCode.NOT_FOUND
        with pytest.raises(AggregatorError) as ei:
            await c.inclusion("nope")
        assert ei.value.status == grpc.StatusCode.NOT_FOUND
        await _serving(app.grpc.port)

        # fuzzed protobuf bytes straight onto the wire, and bit-flipped valid requests
        rng = random.Random(1234)
        valid = pb.SubmitProofRequest(
            scheme=good.scheme, format=good.format, proof=good.proof, vk=good.vk, public=good.public or b""
        ).SerializeToString()
        raw = c.channel.unary_unary(
            "/sheaf.v1.Aggregator/SubmitProof", request_serializer=None, response_deserializer=None
        )
        codes: set[grpc.StatusCode] = set()
        for k in range(120):
            if k % 2:
                blob = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
            else:
                b = bytearray(valid)
                for _ in range(rng.randrange(1, 6)):
                    b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
                blob = bytes(b)
            try:
                await raw(blob, timeout=10)
                codes.add(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as e:
                codes.add(e.code())
        # undecodable -> MALFORMED_REQUEST, decodable garbage -> coded rejections (a flip that leaves a
        # valid request is accepted); never UNKNOWN/INTERNAL (an unhandled exception)
        assert codes <= {
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.OK,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        }, codes
        with pytest.raises(grpc.aio.AioRpcError) as gi:
            await raw(b"\xff\xff\xff", timeout=10)
        md = dict(gi.value.trailing_metadata() or ())
        assert (gi.value.code(), md.get("sheaf-error-code")) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "MALFORMED_REQUEST",
        )
        assert grpc.StatusCode.INVALID_ARGUMENT in codes
        await _serving(app.grpc.port)

        # operator-facing side refuses strangers
        op = pbg.OperatorStub(c.channel)
        with pytest.raises(grpc.aio.AioRpcError) as gi:
            await op.FetchBatch(pb.FetchBatchRequest(operator=Account.create().address, wait_ms=0), timeout=5)
        assert gi.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as gi:
            await op.SubmitAttestation(
                pb.SubmitAttestationRequest(
                    operator=Account.from_key(OPERATOR_KEYS[0]).address,
                    batch_id=999,
                    root=b"\x00" * 32,
                    signature=b"\x00" * 65,
                ),
                timeout=5,
            )
        assert gi.value.code() == grpc.StatusCode.NOT_FOUND

        # and the service still accepts good work
        fresh = proof_pool(240)[0]
        r = await c.submit(fresh.scheme, fresh.format, fresh.proof, vk=fresh.vk, public=fresh.public)
        assert r.status == pb.QUEUED and not r.duplicate

        # attestation input: forged refusals and signatures by someone else are refused
        op0, op1 = OPERATOR_KEYS[0], OPERATOR_KEYS[1]
        addr0 = Account.from_key(op0).address
        task = await op.FetchBatch(pb.FetchBatchRequest(operator=addr0, wait_ms=5000), timeout=10)
        assert task.has_batch and task.leaf_count >= 1
        forged = [
            pb.SubmitAttestationRequest(
                operator=addr0, batch_id=task.batch_id, refusal_code="VERIFICATION_FAILED"
            ),
            pb.SubmitAttestationRequest(
                operator=addr0,
                batch_id=task.batch_id,
                refusal_code="X",
                signature=sign_refusal(
                    op1,
                    task.batch_id,
                    attestation.Aggregation(
                        task.domain_id, task.aggregation_id, task.root, task.leaf_count, task.deadline
                    ),
                    "X",
                    [],
                    task.chain_id,
                    task.registry,
                ),
            ),
            pb.SubmitAttestationRequest(
                operator=addr0,
                batch_id=task.batch_id,
                root=task.root,
                signature=crypto.sign_aggregation(
                    op1,
                    task.chain_id,
                    task.registry,
                    task.domain_id,
                    task.aggregation_id,
                    task.root,
                    task.leaf_count,
                    task.deadline,
                ),
            ),
        ]
        for req in forged:
            with pytest.raises(grpc.aio.AioRpcError) as gi:
                await op.SubmitAttestation(req, timeout=5)
            md = dict(gi.value.trailing_metadata() or ())
            assert (gi.value.code(), md.get("sheaf-error-code")) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "BAD_SIGNATURE",
            )
        ok = await op.SubmitAttestation(
            pb.SubmitAttestationRequest(
                operator=addr0,
                batch_id=task.batch_id,
                root=task.root,
                signature=crypto.sign_aggregation(
                    op0,
                    task.chain_id,
                    task.registry,
                    task.domain_id,
                    task.aggregation_id,
                    task.root,
                    task.leaf_count,
                    task.deadline,
                ),
            ),
            timeout=5,
        )
        assert ok.accepted and ok.signatures == 1 and ok.threshold == 2
    n.close()
    await _serving(app.grpc.port)


async def test_prover_authentication(chain_env: ChainEnv, tmp_path: Path) -> None:
    alice, bob = Account.create(), Account.create()
    cfg = make_config(
        chain_env,
        tmp_path / "auth.db",
        require_auth=True,
        allowlist=[alice.address],
        rate_per_s=0.01,
        burst=5,
    )
    a = App(cfg, submitter_key=SUBMITTER_KEY)
    await a.start()
    pool = proof_pool(240)[-8:]
    n = Normalizer(groth16_backend="groth16py")
    try:
        async with AsyncClient(f"127.0.0.1:{a.grpc.port}") as c:

            def st(i: Input) -> bytes:
                return n.normalize(ProofInput(i.scheme, i.format, i.proof, i.vk, i.public)).statement_hash

            async def sub(i: Input, **kw: Any) -> Any:
                return await c.submit(
                    i.scheme, i.format, i.proof, vk=i.vk, public=i.public, domain_id=1, **kw
                )

            with pytest.raises(AggregatorError) as ei:
                await sub(pool[0])
            assert (ei.value.status, ei.value.code) == (grpc.StatusCode.UNAUTHENTICATED, "AUTH_REQUIRED")
            ok = await sub(pool[0], prover_key=alice.key.hex(), statement_hash=st(pool[0]), nonce=1)
            assert ok.status == pb.QUEUED
            with pytest.raises(AggregatorError) as ei:  # replayed nonce
                await sub(pool[1], prover_key=alice.key.hex(), statement_hash=st(pool[1]), nonce=1)
            assert (ei.value.status, ei.value.code) == (grpc.StatusCode.UNAUTHENTICATED, "STALE_NONCE")
            with pytest.raises(AggregatorError) as ei:  # signature over another statement
                await sub(pool[1], prover_key=alice.key.hex(), statement_hash=st(pool[2]), nonce=2)
            assert (ei.value.code, ei.value.field) == ("BAD_SIGNATURE", "auth.signature")
            with pytest.raises(AggregatorError) as ei:  # not on the allowlist
                await sub(pool[1], prover_key=bob.key.hex(), statement_hash=st(pool[1]), nonce=1)
            assert (ei.value.status, ei.value.code) == (grpc.StatusCode.UNAUTHENTICATED, "PROVER_NOT_ALLOWED")
            # bob signs but claims to be alice
            req = pb.SubmitProofRequest(
                scheme="groth16",
                format="snarkjs",
                proof=pool[3].proof,
                vk=pool[3].vk,
                public=pool[3].public or b"",
                domain_id=1,
            )
            req.auth.prover, req.auth.nonce = alice.address, 9
            req.auth.signature = sign_submission(bob.key.hex(), st(pool[3]), 9, 1)
            with pytest.raises(grpc.aio.AioRpcError) as gi:
                await c.stub.SubmitProof(req, timeout=10)
            assert gi.value.code() == grpc.StatusCode.UNAUTHENTICATED
            req.auth.signature = b"\x01" * 65
            with pytest.raises(grpc.aio.AioRpcError) as gi:
                await c.stub.SubmitProof(req, timeout=10)
            assert gi.value.code() == grpc.StatusCode.UNAUTHENTICATED
            # burst of 5 is spent (the rejected ones count: the limit protects verification itself)
            with pytest.raises(AggregatorError) as ei:
                await sub(pool[4], prover_key=alice.key.hex(), statement_hash=st(pool[4]), nonce=10)
            assert (ei.value.status, ei.value.code) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED")
        await _serving(a.grpc.port)
    finally:
        n.close()
        await a.stop()


async def test_operator_check_task(chain_env: ChainEnv) -> None:
    items = [i for i in fixture_inputs() if i.scheme in ("groth16", "halo2")][:4]
    n = Normalizer(srs=SRS)
    sts = [
        n.normalize(ProofInput(i.scheme, i.format, i.proof, i.vk, i.public, i.settings)).statement_hash
        for i in items
    ]
    root = crypto.merkle_root(sts)
    chain = Chain(chain_env.node.rpc_url, chain_env.registry)
    chain_id = await chain.chain_id()

    DEADLINE = int(time.time()) + 600

    def task(its: list[Input], r: bytes, registry: str = chain_env.registry) -> Any:
        return pb.AttestationTask(
            has_batch=True,
            batch_id=1,
            domain_id=1,
            aggregation_id=7,
            root=r,
            leaf_count=len(its),
            chain_id=chain_id,
            registry=registry,
            deadline=DEADLINE,
            items=[
                pb.BatchItem(
                    scheme=i.scheme,
                    format=i.format,
                    proof=i.proof,
                    vk=i.vk,
                    public=i.public or b"",
                    settings=i.settings or b"",
                    statement_hash=s,
                )
                for i, s in zip(its, sts, strict=True)
            ],
        )

    key = OPERATOR_KEYS[0]
    v = ProofVerifier(n)
    d = await check_task(task(items, root), v, key, chain_id, chain_env.registry)
    assert d.signature and not d.refusal_code
    # the operator's EIP-712 digest is the registry's own
    digest = await chain.aggregation_digest(1, 7, root, len(items), DEADLINE)
    agg = attestation.Aggregation(1, 7, root, len(items), DEADLINE)
    assert digest == attestation.aggregation_digest(agg, chain_id, chain_env.registry)
    sig = keys.Signature(d.signature[:64] + bytes([d.signature[64] - 27]))  # eth_keys wants v in {0, 1}
    assert sig.recover_public_key_from_msg_hash(digest).to_checksum_address() == Account.from_key(key).address
    # a tampered proof is named and refused
    bad = list(items)
    bad[1] = (
        _with(items[1], public=b'["34"]')
        if items[1].format == "snarkjs"
        else _with(items[1], proof=items[1].proof[:-1])
    )
    d = await check_task(task(bad, root), v, key, chain_id, chain_env.registry)
    assert d.bad == [sts[1]] and d.refusal_code
    # refusals are signed (an unsigned one could be forged to fail batches)
    assert (
        recover_refusal(d.signature, 1, agg, d.refusal_code, d.bad, chain_id, chain_env.registry)
        == Account.from_key(key).address
    )
    # a root that does not match the proofs
    d = await check_task(task(items, b"\x07" * 32), v, key, chain_id, chain_env.registry)
    assert d.refusal_code == "ROOT_MISMATCH"
    # signing for another registry is refused
    d = await check_task(task(items, root, "0x" + "11" * 20), v, key, chain_id, chain_env.registry)
    assert d.refusal_code == "WRONG_REGISTRY"
    n.close()
    assert FIX.exists()
