"""Recursive aggregation through the aggregator (issue 6), real parts throughout.

Fast tests: the recursion config and the auto/explicit decision, deferred aggregation ids and
re-routing in the real SQLite store, routing of real fixtures (which proofs the b2/p1 circuit
takes) and the conversion of real gnark/snarkjs proofs into worker leaves (real sidecar).

Slow test (test_recursive_batch_end_to_end): anvil; SheafRegistry + the batch-2 outer verifier
deployed with deploy_recursive_verifier (`sheaf-gnark aggregate setup`: compile + INSECURE dev
setup when $SHEAF_CACHE is empty, else the cached keys); the aggregator App in the default auto
mode builds its RecursiveProver from the manifest (shape and circuit hash pinned) and starts ONE
`sheaf-gnark aggregate serve` worker on the same key cache. A gnark and a snarkjs Groth16 proof
(1 public input each) form one recursive batch; the aggregator is restarted while that batch
waits for its worker (the job is redone by the new process), the second worker is killed with
SIGKILL while it proves (restarted, job sent again), Halo2/PLONK/other-P/commitment proofs are
submitted meanwhile and go the attested way (2 operator processes). Checked: one RECURSIVE
aggregation with both leaves on chain (GetInclusionProof, verifyProofAggregation,
verifyProofAggregationKind), posted exactly once; the others ATTESTED; a tampered outer proof and
reordered leaves are rejected by the registry; ingest answers while the worker proves; metrics.
Measured figures are printed (run with -s).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from agg_helpers import (
    FIX,
    OPERATOR_KEYS,
    OWNER_KEY,
    SRS,
    SUBMITTER_KEY,
    ChainEnv,
    Input,
    fixture_inputs,
    make_config,
    start_operator,
    stop_process,
)
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError

from aggregator import crypto
from aggregator.app import App
from aggregator.chain import Chain
from aggregator.client import AsyncClient
from aggregator.config import Config, RecursionConfig
from aggregator.core import ChainInfo, Core, ProverError, Submission
from aggregator.metrics import Metrics
from aggregator.recursion import (
    PROVER_BAD_LEAF,
    PROVER_LEAF_MISMATCH,
    PROVER_UNAVAILABLE,
    RecursiveProver,
    manifest_recursive,
    plan_recursion,
)
from aggregator.store import KIND_ATTESTED, KIND_RECURSIVE, BatchState, NewProof, Status, Store
from aggregator.verify import Item, ProofVerifier
from deploy.anvil import Anvil
from deploy.api import configure_registry, deploy_all, deploy_recursive_verifier, load_manifest, registry
from deploy.chain import connect
from deploy.recursive import RecursiveDeployment, leaf_statement_hash
from normalizers.api import Normalizer
from normalizers.statement import keccak256
from sheaf.v1 import aggregator_pb2 as pb

N, P = 2, 1  # outer circuit: 2 leaves of 1 public input each
ZERO = "0x" + "00" * 20
RECURSIVE_KIND, ATTESTED_KIND = 1, 2  # SheafRegistry kinds


def _inputs() -> dict[str, Input]:
    return {i.name: i for i in fixture_inputs()}


# -- fast: configuration and the on/off decision ------------------------------------------------


def test_recursion_config_and_plan(tmp_path: Path) -> None:
    p = tmp_path / "sheaf.toml"
    p.write_text(
        "[aggregator]\nmax_leaves = 7\n[aggregator.recursion]\nbatch = 2\nnpub = 1\nmax_attempts = 2\n"
    )
    cfg = Config.load(p)
    rc = cfg.recursion
    assert (rc.enabled, rc.batch, rc.npub, rc.max_attempts, cfg.max_leaves) == (None, 2, 1, 2, 7)
    assert Config().recursion.enabled is None  # default: auto
    p.write_text("[aggregator.recursion]\nenabled = false\n")
    assert Config.load(p).recursion.enabled is False
    p.write_text("[aggregator.recursion]\nbatchsize = 2\n")
    with pytest.raises(ValueError, match="batchsize"):
        Config.load(p)
    p.write_text("[aggregator.recursion]\nmax_attempts = 0\n")
    with pytest.raises(ValueError, match="max_attempts"):
        Config.load(p)

    adapter, other = "0x" + "ab" * 20, "0x" + "cd" * 20
    man = {"registry": "0xreg", "adapter": adapter, "batch": 2, "npub": 1, "circuit_hash": "f00d"}
    auto = RecursionConfig()
    # auto: on only with a verifier on the registry and a known shape (the manifest's, while live)
    assert not plan_recursion(auto, registry_verifier=ZERO, manifest=man).enabled
    on = plan_recursion(auto, registry_verifier=adapter, manifest=man)
    assert (on.enabled, on.batch, on.npub, on.circuit_hash) == (True, 2, 1, "f00d")
    stale = plan_recursion(auto, registry_verifier=other, manifest=man)  # registry moved on
    assert not stale.enabled and "shape" in stale.reason
    own = plan_recursion(RecursionConfig(batch=4, npub=1), registry_verifier=other, manifest=man)
    assert (own.enabled, own.batch, own.circuit_hash) == (True, 4, "")  # other shape: hash not pinned
    assert not plan_recursion(RecursionConfig(enabled=False), registry_verifier=adapter, manifest=man).enabled
    forced = plan_recursion(
        RecursionConfig(enabled=True, batch=1, npub=1), registry_verifier=ZERO, manifest={}
    )
    assert forced.enabled and "NO verifier" in forced.reason
    with pytest.raises(ValueError, match=r"recursion\.batch"):
        plan_recursion(RecursionConfig(enabled=True), registry_verifier=adapter, manifest={})

    d = tmp_path / "deployments"
    d.mkdir()
    (d / "31337.json").write_text(json.dumps({"recursive": man}))
    assert manifest_recursive(str(d), 31337, "0xREG") == man  # address case does not matter
    assert manifest_recursive(str(d), 31337, "0xother") == {}
    assert manifest_recursive(str(d), 1, "0xreg") == {}


# -- fast: deferred ids and re-routing in the real store ----------------------------------------


def _np(i: int, kind: str) -> NewProof:
    st = keccak256(b"rec" + i.to_bytes(4, "big"))
    return NewProof(1, st, b"\x22" * 32, kind, "groth16", "snarkjs", b"p", b"vk", b"[]", None)


def test_store_deferred_ids_and_reroute(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.db")
    s.insert_proofs(
        [_np(i, KIND_RECURSIVE) for i in range(4)] + [_np(10 + i, KIND_ATTESTED) for i in range(2)]
    )
    rec = s.take_queued(1, KIND_RECURSIVE, 2)
    rb = s.create_batch(
        1,
        KIND_RECURSIVE,
        [r.proof_id for r in rec],
        crypto.merkle_root([r.statement_hash for r in rec]),
        defer_id=True,
    )
    assert rb.aggregation_id is None and rb.state == BatchState.PENDING
    assert all(p.status == Status.AGGREGATING for p in s.batch_proofs(rb.batch_id))
    # attested batches created while the recursive one proves take the next ids at once
    att = s.take_queued(1, KIND_ATTESTED, 9)
    assert len(att) == 2
    ab = s.create_batch(1, KIND_ATTESTED, [att[0].proof_id], att[0].statement_hash, 5)
    assert ab.aggregation_id == 5
    done = s.finish_proving(rb.batch_id, b"outer", 3)
    assert done is not None and done.aggregation_id == 6 and done.state == BatchState.SIGNED
    assert s.get_agg_proof(rb.batch_id) == b"outer"
    assert s.finish_proving(rb.batch_id, b"again", 1) is None  # no longer PENDING

    # a deferred batch that fails releases nothing and cascades to no one; re-routed leaves go attested
    rec2 = s.take_queued(1, KIND_RECURSIVE, 2)
    rb2 = s.create_batch(
        1,
        KIND_RECURSIVE,
        [r.proof_id for r in rec2],
        crypto.merkle_root([r.statement_hash for r in rec2]),
        defer_id=True,
    )
    assert s.fail_batch(rb2.batch_id, "PROVER_BAD_LEAF", reroute=[rec2[1].statement_hash])
    assert s.get_batch(ab.batch_id).state == BatchState.PENDING  # type: ignore[union-attr]
    assert s.get_batch(rb2.batch_id).state == BatchState.FAILED  # type: ignore[union-attr]
    a, b = (s.get_proof(r.proof_id) for r in rec2)
    assert a is not None and b is not None
    assert (a.status, a.kind, a.reason_code, a.batch_id) == (Status.QUEUED, KIND_RECURSIVE, "", None)
    assert (b.status, b.kind, b.reason_code) == (Status.QUEUED, KIND_ATTESTED, "PROVER_BAD_LEAF")
    assert {r.proof_id for r in s.take_queued(1, KIND_ATTESTED, 9)} == {att[1].proof_id, b.proof_id}
    s.close()


# -- fast: routing of real proofs and their conversion to worker leaves ---------------------------


async def test_routing_and_leaf_conversion(tmp_path: Path) -> None:
    inputs = _inputs()
    n = Normalizer(srs=SRS, groth16_backend="groth16py")
    # batch 8: two recursive proofs never fill a batch, so no worker is started here
    prover = RecursiveProver(batch=8, npub=P, normalizer=n)
    cfg = Config(
        db_path=str(tmp_path / "agg.db"),
        max_wait_ms=3_600_000,
        recursion=RecursionConfig(max_wait_ms=3_600_000),  # no batch is made: routing only
        groth16_backend="groth16py",
        srs_path=str(SRS),
    )
    core = Core(cfg, Store(cfg.db_path), ProofVerifier(n), ChainInfo(31337, ZERO), Metrics(), prover)
    core.start()
    expect = {
        "gnark/groth16_n1": KIND_RECURSIVE,  # gnark, no commitment, 1 public input
        "snarkjs/mul1_groth16/0": KIND_RECURSIVE,  # snarkjs, 1 public input
        "snarkjs/multi5_groth16/0": KIND_ATTESTED,  # Groth16 with another input count
        "gnark/groth16_n3": KIND_ATTESTED,
        "gnark/plonk_n1": KIND_ATTESTED,  # PLONK with 1 input: not covered by the circuit
        "snarkjs/mul1_plonk/0": KIND_ATTESTED,
        "ezkl/gemm_relu/proof0": KIND_ATTESTED,  # Halo2
    }
    try:
        rows = {}
        for name in expect:
            i = inputs[name]
            r = await core.submit(Submission(i.scheme, i.format, i.proof, i.vk, None, i.public, i.settings))
            rows[name] = await core.proof(r.proof_id)
        assert {k: r.kind for k, r in rows.items()} == expect
        assert core.metrics.counter_value("sheaf_routed_total", kind=KIND_RECURSIVE) == 2
        assert core.metrics.counter_value("sheaf_routed_total", kind=KIND_ATTESTED) == len(expect) - 2
        assert not await core.db.run(core.db.store.batches_in, BatchState.PENDING)

        # worker leaves: canonical bytes whose statement hash is the stored one (gnark via the sidecar)
        names = ["gnark/groth16_n1", "snarkjs/mul1_groth16/0"]
        items = [_item(rows[k]) for k in names]
        hashes = [rows[k].statement_hash for k in names]
        leaves = await prover.leaves(items, hashes)
        assert [leaf_statement_hash(x) for x in leaves] == hashes
        for x in leaves:
            assert len(bytes.fromhex(x["vk"][2:])) == 452 + 64 * (P + 1)
            assert len(bytes.fromhex(x["proof"][2:])) == 256 and len(x["public_inputs"]) == P
        with pytest.raises(ProverError) as e:
            await prover.leaves(items, [hashes[0], b"\x01" * 32])
        assert (e.value.code, e.value.bad_leaves) == (PROVER_LEAF_MISMATCH, (1,))
        other = [_item(rows["gnark/groth16_n1"]), _item(rows["gnark/groth16_n3"])]
        with pytest.raises(ProverError) as e:
            await prover.leaves(other, [hashes[0], rows["gnark/groth16_n3"].statement_hash])
        assert (e.value.code, e.value.bad_leaves) == (PROVER_BAD_LEAF, (1,))
        with pytest.raises(ProverError) as e:
            await prover.leaves([_item(rows["gnark/plonk_n1"])], [rows["gnark/plonk_n1"].statement_hash])
        assert e.value.code == PROVER_BAD_LEAF
    finally:
        await core.stop()
        await prover.close()
        n.close()


def _item(r: Any) -> Item:
    return Item(r.scheme, r.format, r.proof, r.vk, r.public, r.settings)


async def test_missing_worker_binary_disables_recursion(tmp_path: Path) -> None:
    prover = RecursiveProver(batch=N, npub=P, normalizer=None, binary=str(tmp_path / "no-such-binary"))
    try:
        with pytest.raises(ProverError) as e:
            await prover.wait_ready(timeout=30)
        assert e.value.code == PROVER_UNAVAILABLE and "not found" in e.value.message
        assert prover.disabled and not prover.accepts("groth16", P)
    finally:
        await prover.close()


# -- slow: the whole path on anvil -----------------------------------------------------------------


@dataclass
class RecEnv:
    node: Anvil
    out: Path
    registry: str
    operators: list[str]
    deployed: RecursiveDeployment
    deploy_s: float


@pytest.fixture(scope="module")
def rec_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecEnv]:
    with Anvil(block_time=0.5) as node:
        out = tmp_path_factory.mktemp("deployments")
        deploy_all(node.rpc_url, OWNER_KEY, out_dir=out)
        w3 = connect(node.rpc_url)
        reg = registry(w3, load_manifest(31337, out))
        ops = [Account.from_key(k).address for k in OPERATOR_KEYS]
        submitter = Account.from_key(SUBMITTER_KEY).address
        owner = Account.from_key(OWNER_KEY)
        # domain 1: only the aggregator's key may post recursive aggregations
        configure_registry(w3, owner, reg, domains=[(1, submitter)], operators=ops, threshold=2)
        t0 = time.monotonic()
        r = deploy_recursive_verifier(node.rpc_url, OWNER_KEY, batch=N, npub=P, out_dir=out, log=print)
        yield RecEnv(node, out, str(reg.address), ops, r, time.monotonic() - t0)


def _selector(sig: str) -> str:
    return keccak256(sig.encode())[:4].hex()


def _reverts(fn: Any, sender: str, error_sig: str) -> None:
    with pytest.raises((ContractCustomError, ContractLogicError)) as e:
        fn.call({"from": sender})
    data = str(getattr(e.value, "data", None) or e.value)
    assert _selector(error_sig) in data, f"expected {error_sig}, got {data}"


async def _metrics(port: int) -> str:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{port}/metrics") as r:
        assert r.status == 200
        return await r.text()


def _metric(text: str, line_prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _wait(what: str, cond: Any, timeout: float, step: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = await cond()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(step)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not alive either
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.slow
async def test_recursive_batch_end_to_end(rec_env: RecEnv, tmp_path: Path) -> None:
    t_start = time.monotonic()
    inputs = _inputs()
    g_gnark, g_snarkjs = inputs["gnark/groth16_n1"], inputs["snarkjs/mul1_groth16/0"]
    attested = [
        inputs["ezkl/gemm_relu/proof0"],  # Halo2
        inputs["gnark/plonk_n1"],  # PLONK, 1 input
        inputs["gnark/groth16_n3"],  # Groth16, 3 inputs (other P)
        inputs["snarkjs/multi5_groth16/0"],
    ]
    commit = FIX / "gnark" / "groth16_commit_n2"  # Groth16 WITH a Pedersen commitment
    attested.append(
        Input(
            "gnark/groth16_commit_n2",
            "groth16",
            "gnark",
            (commit / "proof.bin").read_bytes(),
            (commit / "vk.bin").read_bytes(),
            (commit / "public.bin").read_bytes(),
        )
    )
    env = ChainEnv(rec_env.node, rec_env.registry, rec_env.operators)
    man = load_manifest(31337, rec_env.out).recursive
    assert (man["batch"], man["npub"]) == (N, P)
    cfg = make_config(
        env,
        tmp_path / "agg.db",
        deployments_dir=str(rec_env.out),
        max_wait_ms=500,
        # auto mode (the default): the registry has a verifier, the manifest gives shape + circuit
        recursion=RecursionConfig(max_wait_ms=120_000),
    )
    ev = rec_env.deployed.exported
    print(
        f"\n[recursive] deploy_recursive_verifier b{N}/p{P}: {rec_env.deploy_s:.1f}s "
        f"(keys {'CREATED' if ev.keys_created else 'cached'}: compile {ev.compile_s}s setup {ev.setup_s}s)"
    )

    # -- aggregator 1: the two Groth16 proofs form one recursive batch, then it stops before proving
    app1 = App(cfg, submitter_key=SUBMITTER_KEY)
    await app1.start()
    p1 = app1.prover
    assert isinstance(p1, RecursiveProver)
    assert (p1.batch, p1.npub, p1.expected_circuit_hash) == (N, P, man["circuit_hash"])
    async with AsyncClient(f"127.0.0.1:{app1.grpc.port}") as c:
        subs = await asyncio.gather(
            *(c.submit(i.scheme, i.format, i.proof, vk=i.vk, public=i.public) for i in (g_gnark, g_snarkjs))
        )

        async def both_aggregating() -> bool:
            st = [await c.status(s.proof_id) for s in subs]
            return all(x.status == pb.AGGREGATING for x in st)

        await _wait("the recursive batch", both_aggregating, 30)
    row = await app1.core.proof(subs[0].proof_id)
    b = await app1.core.batch_for(row)
    assert b is not None and b.kind == KIND_RECURSIVE and b.leaf_count == 2 and b.aggregation_id is None
    assert b.root == crypto.merkle_root([s.statement_hash for s in subs])
    worker1 = p1.worker_pid or 0
    await app1.stop()  # the job was persisted (PENDING): the next process must prove it
    assert worker1 == 0 or not _alive(worker1), "the worker outlived its aggregator"
    b_after = await asyncio.to_thread(_batch_row, cfg.db_path, b.batch_id)
    assert b_after == (BatchState.PENDING, None)

    # -- aggregator 2 on the same database: proves the persisted batch
    app2 = App(cfg, submitter_key=SUBMITTER_KEY)
    await app2.start()
    p2 = app2.prover
    assert isinstance(p2, RecursiveProver)
    target = f"127.0.0.1:{app2.grpc.port}"
    ops = [
        start_operator(target, k, tmp_path / f"op{i}.log", rec_env.registry)
        for i, k in enumerate(OPERATOR_KEYS[:2])
    ]
    chain = Chain(rec_env.node.rpc_url, rec_env.registry)
    w3 = Web3(Web3.HTTPProvider(rec_env.node.rpc_url))
    reg = registry(connect(rec_env.node.rpc_url), load_manifest(31337, rec_env.out))
    try:
        t_ready0 = time.monotonic()
        info = await p2.wait_ready()
        t_ready = time.monotonic() - t_ready0
        assert info["circuit_hash"] == man["circuit_hash"] and info["keys_created"] is False
        print(
            f"[recursive] worker ready in {t_ready:.1f}s (compile {info['compile_ms']} ms, key load "
            f"{info['setup_ms']} ms, {info['nb_constraints']} constraints)"
        )
        await _wait("the worker to prove", lambda: _proving(app2.http.port), 60)
        async with AsyncClient(target) as c:
            # ingest is not blocked while the worker proves: the attested proofs are acked, status answers
            t0 = time.monotonic()
            att = await asyncio.gather(
                *(
                    c.submit(i.scheme, i.format, i.proof, vk=i.vk, public=i.public, settings=i.settings)
                    for i in attested
                )
            )
            ack_s = time.monotonic() - t0
            t0 = time.monotonic()
            st = await c.status(subs[0].proof_id)
            status_s = time.monotonic() - t0
            assert st.status == pb.AGGREGATING and status_s < 2.0, status_s
            # the worker crashes (SIGKILL) while proving the restored job: restarted, job sent again
            first = p2.worker_pid
            assert first is not None and await _proving(app2.http.port)
            os.kill(first, signal.SIGKILL)
            t_kill = time.monotonic()
            await _wait("the restarted worker to prove", lambda: _proving(app2.http.port), 900)
            assert p2.worker_pid not in (None, first) and p2.restarts == 1
            t_prove0 = time.monotonic()
            print(
                f"[recursive] {len(attested)} attested submissions acked in {ack_s:.2f}s and status in "
                f"{status_s:.3f}s while proving; worker back, proving {t_prove0 - t_kill:.1f}s after SIGKILL"
            )
            assert (await c.status(subs[0].proof_id)).status == pb.AGGREGATING

            fin = await asyncio.gather(*(c.wait_finalized(s.proof_id, 900) for s in [*subs, *att]))
            assert [pb.ProofStatus.Name(f.status) for f in fin] == ["FINALIZED"] * len(fin)
            t_fin = time.monotonic() - t_prove0

            incs = [await c.inclusion(s.proof_id) for s in subs]
            agg_id = incs[0].aggregation_id
            for s, inc in zip(subs, incs, strict=True):
                assert inc.kind == pb.RECURSIVE and inc.aggregation_id == agg_id and inc.leaf_count == 2
                assert inc.leaf == s.statement_hash and inc.root == b.root
                path = list(inc.merkle_path)
                assert await chain.verify_inclusion(1, agg_id, inc.leaf, path, 2, inc.index)
                ok, kind = reg.functions.verifyProofAggregationKind(
                    1, agg_id, inc.leaf, path, 2, inc.index
                ).call()
                assert (ok, kind) == (True, RECURSIVE_KIND)
                assert not await chain.verify_inclusion(1, agg_id, b"\x01" * 32, path, 2, inc.index)
            assert {inc.index for inc in incs} == {0, 1}
            oc = await chain.get_aggregation(1, agg_id)
            assert oc is not None and (oc.root, oc.leaf_count, oc.kind) == (b.root, 2, RECURSIVE_KIND)
            agg = await c.aggregation(1, agg_id)
            assert agg.kind == pb.RECURSIVE and list(agg.leaves) == [s.statement_hash for s in subs]
            for s in att:
                inc = await c.inclusion(s.proof_id)
                assert inc.kind == pb.ATTESTED and inc.aggregation_id != agg_id
                ok, kind = reg.functions.verifyProofAggregationKind(
                    1, inc.aggregation_id, inc.leaf, list(inc.merkle_path), inc.leaf_count, inc.index
                ).call()
                assert (ok, kind) == (True, ATTESTED_KIND)
            # the proofs' history: AGGREGATING while proving, re-queued by nobody, then on chain
            hist = [u.status async for u in c.watch(subs[1].proof_id, timeout=10)]
            assert hist == [pb.RECEIVED, pb.VALID, pb.QUEUED, pb.AGGREGATING, pb.SUBMITTED, pb.FINALIZED], (
                hist
            )

        # posted exactly once (two processes, two workers, one SIGKILL): one event for this root
        logs = reg.events.AggregationSubmitted().get_logs(from_block=0)
        ours = [x for x in logs if bytes(x.args.root) == b.root]
        assert len(ours) == 1 and ours[0].args.kind == RECURSIVE_KIND
        nxt = reg.functions.nextAggregationId(1).call()
        assert nxt == 1 + len(logs)
        rcpt = w3.eth.get_transaction_receipt(ours[0].transactionHash)
        gas = int(rcpt["gasUsed"])

        # the registry checks the outer proof: a tampered one and reordered leaves are rejected
        proof = await app2.core.db.run(app2.core.db.store.get_agg_proof, b.batch_id)
        assert proof is not None and len(proof) == 384
        leaves = [s.statement_hash for s in subs]
        sender = Account.from_key(SUBMITTER_KEY).address
        sub = reg.functions.submitRecursiveAggregation
        bad = bytearray(proof)
        bad[70] ^= 1
        _reverts(sub(1, nxt, leaves, bytes(bad)), sender, "ProofInvalid()")
        _reverts(sub(1, nxt, leaves[::-1], proof), sender, "ProofInvalid()")
        _reverts(sub(1, nxt, leaves[:1], proof), sender, "ProofInvalid()")
        assert bytes(sub(1, nxt, leaves, proof).call({"from": sender})) == b.root  # the untampered one

        text = await _metrics(app2.http.port)
        assert _metric(text, 'sheaf_recursive_prove_seconds_count{shape="b2_p1"}') == 1
        assert _metric(text, 'sheaf_recursive_failures_total{code="PROVER_CRASHED"}') == 1
        assert _metric(text, "sheaf_recursive_worker_restarts_total") == 1
        assert _metric(text, 'sheaf_recursive_batches_total{result="proved"}') == 1
        assert _metric(text, 'sheaf_routed_total{kind="attested"}') == len(attested)
        assert (
            _metric(text, "sheaf_recursive_inflight") == 0 and _metric(text, "sheaf_recursive_proving") == 0
        )
        prove_s = _metric(text, 'sheaf_recursive_prove_seconds_sum{shape="b2_p1"}')
        rss = p2.peak_rss_bytes
        assert rss > 0
    finally:
        for o in ops:
            stop_process(o)
        worker2 = p2.worker_pid
        await app2.stop()
        await chain.close()
    assert worker2 is None or not _alive(worker2)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss >> 10
    print(
        f"[recursive] outer prove {prove_s:.1f}s (after the restart), restored-job-to-final {t_fin:.1f}s, "
        f"submitRecursiveAggregation gas {gas}, worker peak RSS {rss >> 20} MiB, "
        f"largest child RSS {kids} MiB, "
        f"test body {time.monotonic() - t_start:.1f}s",
        file=sys.stderr,
    )


async def _proving(port: int) -> bool:
    return _metric(await _metrics(port), "sheaf_recursive_proving") == 1


def _batch_row(db: str, batch_id: int) -> tuple[str, int | None]:
    s = Store(db)
    try:
        b = s.get_batch(batch_id)
        assert b is not None
        return b.state, b.aggregation_id
    finally:
        s.close()
