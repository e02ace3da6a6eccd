"""Issue 13 hardening of attesting, posting and admission, on one anvil for the module:
- attestations expire, refusals are bound to (chain, registry, batch), and an operator never signs a
  second root for an aggregation id while its earlier signature is valid (replay items);
- a posting transaction stuck in the mempool is replaced (same nonce, both fees raised >= 12.5%) and
  the batch follows the replacement to FINALIZED, posted once (anvil's interval mining is switched
  off with evm_setIntervalMining to hold it pending, then on again);
- quotas that rotating addresses cannot bypass: the rate limit binds to the client's network unless
  the prover is allowlisted (loopback is not exempted here, `rate_exempt=[]`); the chain-spend bound
  (`min_post_interval_s`);
- sheaf-deploy's threshold floor and configuration delay.

Real anvil + SheafRegistry, the in-process aggregator and real operator keys (signatures by
eth_account); the registry's own expiry and delay checks are in contracts/test/SheafRegistry*.t.sol.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import aiohttp
import grpc
import pytest
from agg_helpers import (
    OPERATOR_KEYS,
    OWNER_KEY,
    SUBMITTER_KEY,
    ChainEnv,
    deploy_registry,
    make_config,
    proof_pool,
    registry_artifact,
    wait_all_finalized,
)
from eth_account import Account
from hexbytes import HexBytes
from test_agg_store import BACKENDS, _p
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.types import RPCEndpoint

from aggregator import crypto
from aggregator.admission import ProofVerifier
from aggregator.app import App
from aggregator.attestation import Aggregation, sign_refusal
from aggregator.chain import bumped
from aggregator.client import AsyncClient
from aggregator.config import Config
from aggregator.ingest import network_of
from aggregator.operator import Deferred, Signed, check_task
from aggregator.records import KIND_ATTESTED, BatchState, ChainInfo, NewProof, Status
from aggregator.service import Service
from aggregator.store import SqliteStore
from deploy.anvil import Anvil
from deploy.chain import transact
from deploy.errors import DeployError
from deploy.registry import configure_registry, pending_changes, queued_changes
from sheaf.errors import SheafError
from sheaf.hashing import keccak256
from sheaf.v1 import aggregator_pb2 as pb
from sheaf.v1 import aggregator_pb2_grpc as pbg


async def _pending(app: App) -> int:
    db = app.service.db
    end = time.monotonic() + 20
    while not (got := await db.run(db.store.batches_in, BatchState.PENDING)):
        assert time.monotonic() < end, "no batch"
        await asyncio.sleep(0.1)
    return got[0].batch_id


async def _sign_all(app: App, batch_id: int, keys: Sequence[str]) -> None:
    """What operators answer: EIP-712 signatures over the batch's current deadline."""
    a = app.service.attesting
    b = await app.service.db.run(app.service.db.store.get_batch, batch_id)
    assert b is not None and b.aggregation_id is not None
    dl = await app.service.db.run(app.service.db.store.attest_deadline, batch_id)
    for k in keys:
        sig = crypto.sign_aggregation(
            k, a.chain.chain_id, a.chain.registry, b.domain_id, b.aggregation_id, b.root, b.leaf_count, dl
        )
        await a.attest(Account.from_key(k).address, batch_id, b.root, sig, "", [], deadline=dl)


async def test_expiring_attestation_is_collected_again_not_posted(app: App, chain_env: ChainEnv) -> None:
    db, target = app.service.db, f"127.0.0.1:{app.grpc.port}"
    w3 = Web3(Web3.HTTPProvider(chain_env.node.rpc_url))
    reg = w3.eth.contract(
        address=Web3.to_checksum_address(chain_env.registry),
        abi=[
            {
                "type": "function",
                "name": "nextAggregationId",
                "stateMutability": "view",
                "inputs": [{"name": "d", "type": "uint256"}],
                "outputs": [{"type": "uint256"}],
            }
        ],
    )
    p = proof_pool(240)[120]
    async with AsyncClient(target, timeout=10) as c:
        r = await c.submit(p.scheme, p.format, p.proof, vk=p.vk, public=p.public)
        batch_id = await _pending(app)
        next_before = reg.functions.nextAggregationId(1).call()
        # the batch's deadline is 3 s away: inside the poster's margin (max(5, ttl/4)) once signed
        stale = int(time.time()) + 3
        assert await db.run(db.store.renew_attestation, batch_id, stale)
        await _sign_all(app, batch_id, OPERATOR_KEYS[:2])
        end = time.monotonic() + 15
        while (dl := await db.run(db.store.attest_deadline, batch_id)) == stale:
            assert time.monotonic() < end, "the poster neither renewed nor posted"
            await asyncio.sleep(0.1)
        b = await db.run(db.store.get_batch, batch_id)
        assert b is not None and b.state == BatchState.PENDING  # collected again ...
        assert await db.run(db.store.signatures, batch_id) == []  # ... from scratch
        assert dl >= int(time.time()) + app.service.attesting.attest_ttl_s - 30
        assert reg.functions.nextAggregationId(1).call() == next_before  # nothing stale was sent
        assert app.metrics.render().count('code="EXPIRED"') >= 1
        # an answer for the old deadline is too late: not recorded
        late = crypto.sign_aggregation(
            OPERATOR_KEYS[2],
            app.service.attesting.chain.chain_id,
            chain_env.registry,
            b.domain_id,
            b.aggregation_id or 0,
            b.root,
            b.leaf_count,
            stale,
        )
        addr2 = Account.from_key(OPERATOR_KEYS[2]).address
        ok, _ = await app.service.attesting.attest(addr2, batch_id, b.root, late, "", [], deadline=stale)
        assert not ok
        # signed again under the new deadline: posted and finalized
        await _sign_all(app, batch_id, OPERATOR_KEYS[:2])
    await wait_all_finalized(target, [r.proof_id], 60)


async def test_refusal_is_bound_to_chain_registry_and_batch(app: App, chain_env: ChainEnv) -> None:
    a, target = app.service.attesting, f"127.0.0.1:{app.grpc.port}"
    p = proof_pool(240)[121]
    async with AsyncClient(target, timeout=10) as c:
        await c.submit(p.scheme, p.format, p.proof, vk=p.vk, public=p.public)
        batch_id = await _pending(app)
    b = await app.service.db.run(app.service.db.store.get_batch, batch_id)
    assert b is not None and b.aggregation_id is not None
    dl = await a.deadline(batch_id)
    agg = Aggregation(b.domain_id, b.aggregation_id, b.root, b.leaf_count, dl)
    key = OPERATOR_KEYS[0]
    op = Account.from_key(key).address
    cid, reg = a.chain.chain_id, a.chain.registry
    replays = {
        "other chain": sign_refusal(key, batch_id, agg, "X", [], cid + 1, reg),
        "other registry": sign_refusal(key, batch_id, agg, "X", [], cid, "0x" + "11" * 20),
        "other batch id": sign_refusal(key, batch_id + 1, agg, "X", [], cid, reg),
        # the same aggregation id given back after a failure: another root or deadline
        "other root": sign_refusal(
            key, batch_id, Aggregation(1, agg.aggregation_id, bytes(32), 1, dl), "X", [], cid, reg
        ),
        "other deadline": sign_refusal(
            key, batch_id, Aggregation(1, agg.aggregation_id, b.root, b.leaf_count, dl - 1), "X", [], cid, reg
        ),
    }
    for what, sig in replays.items():
        with pytest.raises(SheafError) as ei:
            await a.attest(op, batch_id, b"", sig, "X", [])
        assert ei.value.code == "BAD_SIGNATURE", what
    assert await app.service.db.run(app.service.db.store.signatures, batch_id) == []
    ok, _ = await a.attest(op, batch_id, b"", sign_refusal(key, batch_id, agg, "X", [], cid, reg), "X", [])
    assert ok  # the one for exactly this batch, chain and registry counts


def _task(root: bytes, deadline: int, agg_id: int = 5) -> SimpleNamespace:
    return SimpleNamespace(
        batch_id=9,
        domain_id=1,
        aggregation_id=agg_id,
        root=root,
        leaf_count=1,
        items=[],
        chain_id=31337,
        registry="0x" + "22" * 20,
        deadline=deadline,
    )


async def test_operator_checks_deadlines_and_never_signs_two_roots_for_one_live_id(tmp_path: Path) -> None:
    now = [1_900_000_000.0]
    mem = Signed(clock=lambda: now[0])
    key = OPERATOR_KEYS[0]
    verifier = ProofVerifier(normalizer=object())  # never reached: every case is decided before it
    t0 = int(now[0])
    d = await check_task(_task(b"\x01" * 32, t0 + 2), verifier, key, signed=mem)
    assert d.refusal_code == "DEADLINE_PAST" and d.signature  # a signed (EIP-712) refusal
    d = await check_task(_task(b"\x01" * 32, t0 + 7200), verifier, key, signed=mem, max_ttl_s=3600)
    assert d.refusal_code == "DEADLINE_TOO_FAR"
    # it signed root A for id 5 until t0 + 600 (recorded as check_task does after signing)
    mem.record(_task(b"\x0a" * 32, t0 + 600))
    assert mem.blocked_until(_task(b"\x0a" * 32, t0 + 900)) == 0  # the same root again: fine (renewal)
    with pytest.raises(Deferred) as ei:  # root B for the same live id: waits, does not answer
        await check_task(_task(b"\x0b" * 32, t0 + 900), verifier, key, signed=mem)
    assert ei.value.until == t0 + 600
    assert mem.blocked_until(_task(b"\x0b" * 32, t0 + 900, agg_id=6)) == 0  # another id: fine
    now[0] = t0 + 601  # the earlier attestation expired: root B may be signed
    assert mem.blocked_until(_task(b"\x0b" * 32, t0 + 1200)) == 0
    # --state: a restarted operator remembers (a fresh Signed on the same file)
    now[0] = t0
    Signed(clock=lambda: now[0], path=tmp_path / "op.json").record(_task(b"\x0a" * 32, t0 + 600))
    again = Signed(clock=lambda: now[0], path=tmp_path / "op.json")
    assert again.blocked_until(_task(b"\x0b" * 32, t0 + 900)) == t0 + 600


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_store_deadlines_on_every_backend(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Store.attest_deadline / ensure_attest_deadline / renew_attestation on SQLite and PostgreSQL."""
    s = BACKENDS[backend](request, tmp_path)()
    try:
        s.insert_proofs([_p(i) for i in range(2)])
        rows = s.take_queued(1, KIND_ATTESTED, 2)
        b = s.create_batch(1, KIND_ATTESTED, [r.proof_id for r in rows], b"\x01" * 32)
        assert s.attest_deadline(b.batch_id) == 0
        assert s.ensure_attest_deadline(b.batch_id, 1000, 500) == 1000  # set once
        s.add_signature(b.batch_id, "0xaa", b"\x02" * 65)
        assert s.ensure_attest_deadline(b.batch_id, 2000, 900) == 1000  # not yet near: kept, signature too
        assert len(s.signatures(b.batch_id)) == 1
        assert s.ensure_attest_deadline(b.batch_id, 2000, 1001) == 2000  # near: renewed, signatures gone
        assert s.signatures(b.batch_id) == []
        s.add_signature(b.batch_id, "0xaa", b"\x02" * 65)
        assert s.set_batch_state(b.batch_id, [BatchState.PENDING], BatchState.SIGNED)
        assert s.ensure_attest_deadline(b.batch_id, 3000, 9999) == 2000  # SIGNED: the poster decides
        assert s.renew_attestation(b.batch_id, 3000)
        got = s.get_batch(b.batch_id)
        assert got is not None and got.state == BatchState.PENDING and s.signatures(b.batch_id) == []
        assert s.attest_deadline(b.batch_id) == 3000
        assert s.set_batch_state(b.batch_id, [BatchState.PENDING], BatchState.FINALIZED)
        assert not s.renew_attestation(b.batch_id, 4000)  # posted: never renewed
        assert s.attest_deadline(b.batch_id) == 3000
    finally:
        s.close()


# -- item 7: a stuck posting transaction is replaced with higher fees ---------------------------


async def _batch(app: App, states: tuple[str, ...], timeout: float = 20) -> int:
    db = app.service.db
    end = time.monotonic() + timeout
    while not (got := await db.run(db.store.batches_in, *states)):
        assert time.monotonic() < end, f"no batch in {states}"
        await asyncio.sleep(0.1)
    return got[0].batch_id


async def test_stuck_posting_transaction_is_replaced_with_higher_fees(
    chain_env: ChainEnv, tmp_path: Path
) -> None:
    w3 = Web3(Web3.HTTPProvider(chain_env.node.rpc_url))
    app = App(make_config(chain_env, tmp_path / "agg.db", bump_after_s=1.0), submitter_key=SUBMITTER_KEY)
    await app.start()
    try:
        db, target = app.service.db, f"127.0.0.1:{app.grpc.port}"
        p = proof_pool(240)[130]
        async with AsyncClient(target, timeout=10) as c:
            r = await c.submit(p.scheme, p.format, p.proof, vk=p.vk, public=p.public)
        batch_id = await _batch(app, (BatchState.PENDING,))
        w3.provider.make_request(RPCEndpoint("evm_setIntervalMining"), [0])  # nothing is mined from here on
        try:
            a = app.service.attesting
            b = await db.run(db.store.get_batch, batch_id)
            assert b is not None and b.aggregation_id is not None
            dl = await a.deadline(batch_id)
            for k in OPERATOR_KEYS[:2]:
                sig = crypto.sign_aggregation(
                    k, a.chain.chain_id, a.chain.registry, 1, b.aggregation_id, b.root, b.leaf_count, dl
                )
                await a.attest(Account.from_key(k).address, batch_id, b.root, sig, "", [], deadline=dl)
            await _batch(app, (BatchState.SUBMITTED,))
            first = (await db.run(db.store.get_batch, batch_id)).tx_hash  # type: ignore[union-attr]
            assert first is not None
            old = w3.eth.get_transaction(HexBytes(first))  # pending; gone from the pool once replaced
            assert old["blockNumber"] is None
            end = time.monotonic() + 20
            while (now := (await db.run(db.store.get_batch, batch_id)).tx_hash) == first:
                assert time.monotonic() < end, "the stuck transaction was not replaced"
                await asyncio.sleep(0.2)
            assert now is not None
            new = w3.eth.get_transaction(HexBytes(now))
            assert new["nonce"] == old["nonce"] and new["blockNumber"] is None
            assert new["maxFeePerGas"] >= bumped(old["maxFeePerGas"])
            assert new["maxPriorityFeePerGas"] >= bumped(old["maxPriorityFeePerGas"])
            assert "sheaf_fee_bumps_total" in app.metrics.render()
        finally:
            w3.provider.make_request(RPCEndpoint("evm_setIntervalMining"), [1])
        await wait_all_finalized(target, [r.proof_id], 60)
        last = (await db.run(db.store.get_batch, batch_id)).tx_hash
        assert last is not None and w3.eth.get_transaction_receipt(HexBytes(last))["status"] == 1
        try:  # the replaced transaction never made it into a block
            assert w3.eth.get_transaction(HexBytes(first))["blockNumber"] is None
        except TransactionNotFound:
            pass
    finally:
        await app.stop()


# -- item 6: sheaf-deploy's owner setup with the threshold floor and the delay -----------------


def test_deploy_configure_sets_floor_and_delay_then_changes_wait() -> None:
    # its own automining anvil: instant blocks, and time can be moved on without touching the module's
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        ops = [Account.from_key(k).address for k in OPERATOR_KEYS]
        reg = w3.eth.contract(
            address=Web3.to_checksum_address(deploy_registry(node.rpc_url, ops[:2], 1, domains=())),
            abi=registry_artifact()[0],
        )
        owner = Account.from_key(OWNER_KEY)
        sent = configure_registry(w3, owner, reg, threshold=2, min_threshold=2, config_delay=3600)
        assert (reg.functions.threshold().call(), reg.functions.minThreshold().call()) == (2, 2)
        assert reg.functions.configDelay().call() == 3600
        assert queued_changes(w3, reg, sent) == []  # the delay was 0 until the last of them
        with pytest.raises(DeployError) as ei:  # below the floor: refused when queued
            transact(w3, owner, reg.functions.setThreshold(1), "below the floor")
        assert _selector("InvalidThreshold(uint256,uint256)") in str(ei.value)
        sent = configure_registry(w3, owner, reg, operators=[ops[2]])  # now only queued
        ((cid, kind, eta),) = queued_changes(w3, reg, sent)
        assert kind == reg.functions.CHANGE_ADD_OPERATOR().call()
        assert not reg.functions.isOperator(ops[2]).call()
        # configure again while it waits: the same change is not queued twice
        assert configure_registry(w3, owner, reg, operators=[ops[2]]) == []
        assert pending_changes(reg) == [(cid, kind, ops[2], 0, eta)]
        with pytest.raises(DeployError) as ei:
            transact(w3, owner, reg.functions.executeConfigChange(cid), "too early")
        assert _selector("ChangeNotReady(uint256,uint256)") in str(ei.value)
        w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [3600])
        w3.provider.make_request(RPCEndpoint("evm_mine"), [])
        assert int(w3.eth.get_block("latest")["timestamp"]) >= eta
        transact(w3, owner, reg.functions.executeConfigChange(cid), "executeConfigChange")
        assert reg.functions.isOperator(ops[2]).call() and reg.functions.operatorCount().call() == 3
        assert pending_changes(reg) == []


def _selector(sig: str) -> str:
    return keccak256(sig.encode())[:4].hex()


# -- item 7: quotas bound to a network, not to fresh addresses; the chain-spend bound -----------


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
        await db.run(db.store.insert_proofs, [_spend_proof(0)])
        assert await svc.batcher.make_batches() == 1  # the first partial batch closes at once
        await db.run(db.store.insert_proofs, [_spend_proof(1)])
        assert await svc.batcher.make_batches() == 0  # the next partial one waits for the interval
        assert (await db.run(db.store.get_proof, _spend_proof(1).proof_id)).status == Status.QUEUED  # type: ignore[union-attr]
        await db.run(db.store.insert_proofs, [_spend_proof(i) for i in range(2, 5)])
        assert await svc.batcher.make_batches() == 1  # 4 queued = max_leaves: full, not held
        assert len(await db.run(db.store.batches_in, BatchState.PENDING)) == 2
    finally:
        await svc.stop()


def _spend_proof(i: int) -> NewProof:
    st = keccak256(b"spend" + i.to_bytes(4, "big"))
    return NewProof(1, st, b"\x11" * 32, KIND_ATTESTED, "groth16", "snarkjs", b"p", b"vk", b"[]", None)
