"""`aggregator run` with a recursion-tree deployment (issue 14): batches proved level by level.

Fast (default, a few seconds): plan_recursion on a tree manifest (kind, plan, per-level circuit hashes
pinned, conflicts refused with their codes); the tree's node ranges against Merkle.sol's composition for
every leaf count; the batcher's selection (chunks of K of one vk, one partial chunk, last); TreeProver
against a stand-in `tree serve` process (bench/standins/tree.py: the real protocol, real pipes, real
Merkle nodes, a fake proof): levels in order with one worker process at a time, progress, a worker
SIGKILLed mid-job restarted and the job re-sent, attempts bounded (ProvingFailed), answers whose node is
not the batch's refused, keys pinned (missing keys, a binary compiling another circuit, a worker naming
other circuits); and a Service on a real SQLite store whose batcher and Proving run the tree prover
over real gnark + snarkjs proofs.

Opt-in (SHEAF_TREE_PROVE=1; cached K=2/F=2 tree keys, ~5-6 GB per job and both cores for minutes):
the App on anvil with a real tree deployment proves a real batch of 3 proofs with `sheaf-gnark tree
serve` workers and posts ONE recursive aggregation, checked on chain.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from agg_helpers import (
    OWNER_KEY,
    SUBMITTER_KEY,
    TREE_BATCH,
    ChainEnv,
    deploy_for_recursion,
    fixture_inputs,
    make_config,
    tree_services,
)

from aggregator import explorer
from aggregator.app import App
from aggregator.chain import Chain
from aggregator.client import AsyncClient
from aggregator.config import Config, RecursionConfig
from aggregator.jobs import (
    CIRCUIT_MISMATCH,
    KEYS_MISSING,
    PROVER_CRASHED,
    PROVER_LEAF_MISMATCH,
    PROVER_REJECTED,
)
from aggregator.leaves import leaf_statement_hash, snarkjs_leaf
from aggregator.merkle import merkle_root
from aggregator.metrics import Metrics
from aggregator.proving import ProveJob, ProvingFailed
from aggregator.records import KIND_RECURSIVE, BatchState, ChainInfo, Submission
from aggregator.recursion import (
    KIND_TREE,
    TREE_MANIFEST_INVALID,
    RecursionPlanError,
    RecursiveProver,
    plan_recursion,
)
from aggregator.tree_prover import TreeProver, select_tree_batch
from bench.standins import tree as tree_standin
from bench.standins import write_binary
from bench.standins.tree import circuit_hashes, fold, make_keys
from deploy.anvil import Anvil
from deploy.api import load_manifest, registry
from deploy.chain import connect
from deploy.tree import deploy_tree_verifier, export_tree_verifiers
from normalizers.api import ProofInput
from sheaf.paths import REPO_ROOT
from sheaf.recursion_tree import TreePlan
from sheaf.v1 import aggregator_pb2 as pb

PLAN = TreePlan(k=2, npub=1, fanin=2, levels=1)
FIX = REPO_ROOT / "tests" / "fixtures" / "tree" / PLAN.name
ADAPTER, REG, ZERO = "0x" + "ab" * 20, "0x" + "12" * 20, "0x" + "00" * 20
H0, H1 = "a" * 64, "b" * 64


def tree_manifest(**over: Any) -> dict[str, Any]:
    """The `recursive` section deploy/tree.py's deploy_tree_verifier writes."""
    base = {"plan": PLAN.name, "k": 2, "npub": 1, "fanin": 2, "levels": 1}
    return {
        "active": PLAN.name,
        "kind": "tree",
        "registry": REG,
        "adapter": ADAPTER,
        "verifiers": ["0x" + "01" * 20, "0x" + "02" * 20],
        "circuit_hashes": [H0, H1],
        "tree": {**base, "capacity": 4},
        **over,
    }


def fixture_leaves() -> list[dict[str, Any]]:
    """Real worker leaves: 2 snarkjs proofs of one vk, then a gnark proof of another."""
    leaves: list[dict[str, Any]] = json.loads((FIX / "proofs.json").read_text())["leaves"]
    return leaves


# -- plan ------------------------------------------------------------------------------------------


def test_plan_recursion_tree() -> None:
    man = tree_manifest()
    p = plan_recursion(RecursionConfig(), registry_verifier=ADAPTER, manifest=man)
    assert (p.enabled, p.kind, p.tree, p.batch, p.npub, p.plonk) == (True, KIND_TREE, PLAN, 4, 1, 0)
    assert p.circuit_hashes == (H0, H1) and p.circuit_hash == H1  # the top level's pins the chain below
    assert "tree" in p.reason and PLAN.name in p.reason
    # the configuration may narrow the batch and restate the manifest (hash with 0x, any case)
    p3 = plan_recursion(
        RecursionConfig(enabled=True, batch=3, npub=1, circuit_hash="0x" + H1.upper()),
        registry_verifier=ADAPTER,
        manifest=man,
    )
    assert (p3.kind, p3.batch) == (KIND_TREE, 3) and "configuration" in p3.reason
    # but not contradict it: startup refuses with a code, naming every conflict
    for rc, words in (
        (RecursionConfig(npub=2), "npub = 2"),
        (RecursionConfig(plonk=1), "Groth16 only"),
        (RecursionConfig(batch=5), "capacity 4"),
        (RecursionConfig(circuit_hash="c" * 64), "top level"),
    ):
        with pytest.raises(RecursionPlanError) as e:
            plan_recursion(rc, registry_verifier=ADAPTER, manifest=man)
        assert e.value.code == CIRCUIT_MISMATCH and words in e.value.message, e.value.message
    # the tree's jobs may go to the PostgreSQL queue (aggregator worker processes prove them)
    pq = plan_recursion(RecursionConfig(queue="postgres"), registry_verifier=ADAPTER, manifest=man)
    assert (pq.kind, pq.circuit_hashes) == (KIND_TREE, (H0, H1))
    for bad in (
        tree_manifest(circuit_hashes=[H0]),  # one hash for two levels
        tree_manifest(circuit_hashes=[H0, "xyz"]),
        tree_manifest(tree={"k": 3, "npub": 1, "fanin": 2, "levels": 1}),  # K not a power of two
        tree_manifest(tree=None),
    ):
        with pytest.raises(RecursionPlanError) as e:
            plan_recursion(RecursionConfig(), registry_verifier=ADAPTER, manifest=bad)
        assert e.value.code == TREE_MANIFEST_INVALID
    # a tree manifest whose adapter is no longer the registry's verifier is not used
    stale = plan_recursion(RecursionConfig(), registry_verifier="0x" + "cd" * 20, manifest=man)
    assert not stale.enabled and stale.kind != KIND_TREE
    assert not plan_recursion(RecursionConfig(), registry_verifier=ZERO, manifest=man).enabled
    assert not plan_recursion(RecursionConfig(enabled=False), registry_verifier=ADAPTER, manifest=man).enabled


def test_node_ranges_compose_to_the_flat_root() -> None:
    """Every node of the shallowest tree over n proofs is Merkle.root of its leaves, and folding the
    children's roots (what a merge proves) gives it: the checks TreeProver makes on each answer."""
    for plan in (
        TreePlan(k=2, fanin=2, levels=2),
        TreePlan(k=4, fanin=2, levels=2),
        TreePlan(k=1, fanin=4, levels=2),
    ):
        hashes = [bytes([i]) * 32 for i in range(plan.capacity)]
        for n in range(1, plan.capacity + 1):
            ranges = plan.node_ranges(n)
            assert len(ranges) - 1 == plan.level_of(n) and ranges[-1] == [range(0, n)]
            assert [i for r in ranges[0] for i in r] == list(range(n))
            assert all(len(r) == plan.k for r in ranges[0][:-1])  # only the last leaf job is partial
            for lv in range(1, len(ranges)):
                kids = ranges[lv - 1]
                for j, r in enumerate(ranges[lv]):
                    sub = kids[j * plan.fanin : (j + 1) * plan.fanin]
                    assert (sub[0].start, sub[-1].stop) == (r.start, r.stop)
                    assert fold([merkle_root(hashes[c.start : c.stop]) for c in sub]) == merkle_root(
                        hashes[r.start : r.stop]
                    )
        with pytest.raises(ValueError):
            plan.node_ranges(plan.capacity + 1)


@dataclass(frozen=True)
class Row:
    name: str
    vk_hash: bytes


def test_select_groups_chunks_of_one_vk() -> None:
    a, b, c = b"A" * 32, b"B" * 32, b"C" * 32
    rows = [Row("c1", c), Row("a1", a), Row("b1", b), Row("a2", a), Row("b2", b), Row("a3", a)]

    def names(k: int, n: int, rs: list[Row] = rows) -> list[str]:
        return [r.name for r in select_tree_batch(rs, k, n)]

    # chunks of K=2 of one vk, whole ones oldest first, the oldest partial one (c1) last
    assert names(2, 8) == ["a1", "a2", "b1", "b2", "c1"]
    assert names(2, 4) == ["a1", "a2", "c1"]  # the oldest proof goes first, even in a partial chunk
    assert names(2, 4, rows[1:]) == ["a1", "a2", "b1", "b2"]
    assert names(2, 3) == ["a1", "a2", "c1"]  # b's chunk does not fit; one partial fits
    assert names(1, 3) == ["c1", "a1", "b1"]  # K=1: every proof is a whole chunk, oldest first
    assert names(4, 8) == ["c1"]  # no vk has 4: only one partial chunk per batch
    assert names(2, 8, rows[1:]) == ["a1", "a2", "b1", "b2", "a3"]
    assert names(2, 1) == ["c1"] and names(2, 1, rows[1:]) == ["a1"]  # a batch cap below K: one leaf job
    assert select_tree_batch([], 2, 4) == []


def test_tree_and_flat_provers_describe_the_recursive_metrics_alike() -> None:
    # one dashboard reads sheaf_recursive_* whichever prover runs: one help text per name
    def described(m: Metrics) -> dict[str, str]:
        return {k: v for k, v in m.help.items() if k.startswith("sheaf_recursive_")}

    tree, flat = Metrics(), Metrics()
    TreeProver(PLAN, metrics=tree)
    RecursiveProver(batch=2, npub=1, normalizer=None, metrics=flat)
    assert described(tree) == described(flat)
    assert "sheaf_recursive_prove_seconds" in described(tree) and "sheaf_recursive_proving" in described(tree)


class _VerifierChain:
    """What App._make_prover asks the chain: the registry and its aggregation verifier."""

    registry = REG

    def __init__(self, verifier: str) -> None:
        self.verifier = verifier

    async def aggregation_verifier(self) -> str:
        return self.verifier


async def test_app_builds_logs_and_starts_either_kind_alike(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the tree when the registry's verifier is the manifest's tree adapter, else the flat circuit;
    # one startup line format and one start path for both (no binary: the workers never start)
    (tmp_path / "31337.json").write_text(json.dumps({"recursive": tree_manifest()}))
    rc = {"worker_bin": str(tmp_path / "no-binary"), "cache_dir": str(tmp_path / "recursion")}
    cases = (
        (
            RecursionConfig(**rc),
            ADAPTER,
            TreeProver,
            f"tree {PLAN.name}, batches of up to 4 leaves, levels 0: {H0[:16]}, 1: {H1[:16]}, "
            f"keys under {tmp_path / 'tree'}",
        ),
        (
            RecursionConfig(enabled=True, batch=2, npub=1, **rc),
            "0x" + "cd" * 20,
            RecursiveProver,
            f"batch 2 (0 PLONK slots), npub 1, circuit not pinned, keys under {tmp_path / 'recursion'}",
        ),
    )
    for cfg, verifier, kind, line in cases:
        app = App(Config(deployments_dir=str(tmp_path), recursion=cfg))
        app.chain, app.metrics = cast(Chain, _VerifierChain(verifier)), Metrics()
        caplog.clear()
        with caplog.at_level("INFO", logger="sheaf.app"):
            p = await app._make_prover(31337)
        try:
            assert isinstance(p, kind) and app._owned_prover is p
            starts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("recursion: on")]
            assert len(starts) == 1 and starts[0].endswith("): " + line), starts
        finally:
            await p.close()


# -- TreeProver against the stand-in worker ----------------------------------------------------------


@dataclass
class Standin:
    binary: str
    cache: Path
    hashes: list[str]

    def prover(self, **kw: Any) -> TreeProver:
        kw.setdefault("circuit_hashes", self.hashes)
        return TreeProver(
            PLAN, binary=self.binary, cache_dir=self.cache, restart_backoff_s=0.01, metrics=Metrics(), **kw
        )


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Standin:
    for v in ("PROVE_S", "EXIT_ON", "BAD_ROOT", "SALT"):
        monkeypatch.delenv(f"SHEAF_TREE_STANDIN_{v}", raising=False)
    cache = tmp_path / "tree"
    return Standin(write_binary(tmp_path / "tree-standin", tree_standin), cache, make_keys(cache, PLAN))


def _gauge(p: TreeProver, name: str) -> float:
    return p.metrics.gauges[name]().get((), 0.0)


async def test_levels_in_order_one_worker_at_a_time(
    standin: Standin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEAF_TREE_STANDIN_PROVE_S", "0.1")
    leaves = fixture_leaves()
    hashes = [leaf_statement_hash(x) for x in leaves]
    p = standin.prover()
    seen: list[tuple[str | None, float, float]] = []
    try:
        info = await p.wait_ready(30)  # start(): the level-0 worker, keys pinned
        assert [x["circuit_hash"] for x in info["levels"]] == standin.hashes[:1]
        task = asyncio.create_task(p.prove_tree(leaves, hashes, batch_id=7, root=merkle_root(hashes)))
        while not task.done():
            seen.append(
                (p.progress(7), _gauge(p, "sheaf_tree_proving_level"), _gauge(p, "sheaf_tree_worker_level"))
            )
            await asyncio.sleep(0.02)
        run = task.result()
        assert (run.level, run.count, run.root) == (1, 3, merkle_root(hashes)) and len(run.proof) == 384
        assert [(j["level"], j["count"], j["top"]) for j in run.jobs] == [
            (0, 2, False),
            (0, 1, False),
            (1, 3, True),
        ]
        # progress as users see it, in order: the leaf level's jobs, then the merge level
        texts = [s[0] for s in seen if s[0]]
        order = [t for i, t in enumerate(texts) if i == 0 or texts[i - 1] != t]
        assert order[0] == "level 0 of 1, 0 of 2 jobs done" and order[-1] == "level 1 of 1, 0 of 1 jobs done"
        assert "level 0 of 1, 1 of 2 jobs done" in order
        assert {s[1] for s in seen} >= {0.0, 1.0} and p.progress(7) is None
        # one worker at a time: the level-0 worker exited before the level-1 one proved
        assert [w["level"] for w in p.workers] == [0] and all(s[2] == s[1] for s in seen if s[1] >= 0)
        m = p.metrics
        assert m.counter_value("sheaf_tree_jobs_total", level="0", outcome="proved") == 2
        assert m.counter_value("sheaf_tree_jobs_total", level="1", outcome="proved") == 1
        assert m.gauges["sheaf_tree_job_peak_rss_bytes"]() == {
            (("level", "0"),): 20 << 20,
            (("level", "1"),): 21 << 20,
        }
        # the next batch fits one leaf job: the level-0 worker comes back and proves it for Solidity
        two = await p.prove_tree(leaves[:2], hashes[:2])
        assert (two.level, two.count, len(two.proof), two.top["top"]) == (0, 2, 384, True)
        assert [w["level"] for w in p.workers] == [0, 1] and p.restarts == 0
    finally:
        await p.close()
    assert p.worker_pid is None and [w["level"] for w in p.workers] == [0, 1, 0]


async def test_worker_killed_mid_job_is_restarted_and_the_job_resent(
    standin: Standin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEAF_TREE_STANDIN_PROVE_S", "0.25")
    leaves = fixture_leaves()
    p = standin.prover()
    try:
        task = asyncio.create_task(p.prove_tree(leaves, batch_id=3))
        deadline = time.monotonic() + 20
        while _gauge(p, "sheaf_tree_proving_level") != 1:  # the merge job is with its worker
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.01)
        first = p.worker_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        run = await asyncio.wait_for(task, 20)
        assert (run.level, run.count) == (1, 3) and p.restarts == 1
        assert p.worker_pid not in (None, first)
        m = p.metrics
        assert m.counter_value("sheaf_tree_jobs_total", level="1", outcome="crashed") == 1
        assert m.counter_value("sheaf_tree_jobs_total", level="1", outcome="proved") == 1
        assert m.counter_value("sheaf_recursive_failures_total", code=PROVER_CRASHED) == 1
        assert m.counter_value("sheaf_recursive_worker_restarts_total") == 1
    finally:
        await p.close()


async def test_attempts_are_bounded(standin: Standin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEAF_TREE_STANDIN_EXIT_ON", "merge")  # every merge worker dies on its job
    p = standin.prover(max_attempts=2)
    try:
        with pytest.raises(ProvingFailed) as e:
            await p.prove_tree(fixture_leaves())
        assert e.value.code == PROVER_CRASHED and "gave up after 2 attempts" in e.value.message
        assert p.metrics.counter_value("sheaf_tree_jobs_total", level="1", outcome="crashed") == 2
        assert p.metrics.counter_value("sheaf_tree_jobs_total", level="0", outcome="proved") == 2
        assert not p.disabled  # the next batch is tried again
    finally:
        await p.close()


async def test_answers_must_name_the_batch(standin: Standin, monkeypatch: pytest.MonkeyPatch) -> None:
    leaves = fixture_leaves()
    hashes = [leaf_statement_hash(x) for x in leaves]
    p = standin.prover()
    try:
        # refused before any worker runs: a root the leaves do not give, a leaf job over two vks
        with pytest.raises(ProvingFailed) as e:
            await p.prove_tree(leaves, hashes, root=merkle_root(hashes[:2]))
        assert e.value.code == PROVER_LEAF_MISMATCH
        with pytest.raises(ProvingFailed) as e:
            await p.prove_tree([leaves[0], leaves[2], leaves[1]])
        assert e.value.code == PROVER_REJECTED and "not one vk" in e.value.message
        with pytest.raises(ProvingFailed) as e:
            await p.prove_tree(leaves * 2)  # 6 > capacity 4
        assert e.value.code == PROVER_REJECTED
        assert p.worker_pid is None and not p.workers
        # a worker whose node is not Merkle.root of the job's leaves
        monkeypatch.setenv("SHEAF_TREE_STANDIN_BAD_ROOT", "1")
        with pytest.raises(ProvingFailed) as e:
            await p.prove_tree(leaves, hashes)
        assert e.value.code == PROVER_LEAF_MISMATCH and "level 0" in e.value.message
        assert p.metrics.counter_value("sheaf_tree_jobs_total", level="0", outcome="mismatch") == 1
    finally:
        await p.close()


async def test_keys_are_pinned_by_the_manifest(
    standin: Standin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaves = fixture_leaves()
    # no keys for the deployed circuits: refused before a worker starts, recursion off
    p = standin.prover(circuit_hashes=["c" * 64, "d" * 64])
    try:
        with pytest.raises(ProvingFailed) as e:
            await p.wait_ready(30)
        assert e.value.code == KEYS_MISSING and p.worker_pid is None
        assert not p.accepts("groth16", 1)
        with pytest.raises(ProvingFailed) as e:
            await p.prove_tree(leaves)
        assert e.value.code == KEYS_MISSING
    finally:
        await p.close()
    # the binary compiles other circuits (another version): it finds no keys for them and exits
    monkeypatch.setenv("SHEAF_TREE_STANDIN_SALT", "-v2")
    p = standin.prover()
    try:
        with pytest.raises(ProvingFailed) as e:
            await p.prove_tree(leaves)
        assert e.value.code == CIRCUIT_MISMATCH and "rebuild" in e.value.message and p.disabled
    finally:
        await p.close()
    # ... and with keys of its own circuits cached too, its ready line names them: refused as well
    make_keys(standin.cache, PLAN)
    assert circuit_hashes(PLAN) != standin.hashes
    p = standin.prover()
    try:
        with pytest.raises(ProvingFailed) as e:
            await p.wait_ready(30)
        assert e.value.code == CIRCUIT_MISMATCH and p.worker_pid is None
    finally:
        await p.close()


def _snarkjs_items() -> list[ProofInput]:
    d = REPO_ROOT / "tests" / "fixtures" / "snarkjs" / "mul1_groth16"
    vk = (d / "verification_key.json").read_bytes()
    return [
        ProofInput(
            "groth16",
            "snarkjs",
            (d / f"proof{i}.json").read_bytes(),
            vk,
            (d / f"public{i}.json").read_bytes(),
        )
        for i in (0, 1)
    ]


async def test_batch_prover_interface(standin: Standin) -> None:
    items = _snarkjs_items()
    hashes = [leaf_statement_hash(snarkjs_leaf(it.vk, it.proof, it.public or b"")) for it in items]
    p = standin.prover()
    try:
        assert p.max_leaves == 4 and p.shape == PLAN.name and p.max_inflight == 1
        assert p.accepts("groth16", 1) and not p.accepts("groth16", 2) and not p.accepts("plonk", 1)
        proof = await p.prove(ProveJob(5, 1, None, hashes, items, merkle_root(hashes)))
        assert len(proof) == 384
        with pytest.raises(ProvingFailed) as e:  # a leaf that is not the batch's statement
            await p.prove(ProveJob(6, 1, None, [hashes[0], b"\x01" * 32], items))
        assert e.value.code == PROVER_LEAF_MISMATCH and e.value.bad_leaves == (1,)
    finally:
        await p.close()


async def test_service_batches_proves_and_resumes_with_the_tree(
    standin: Standin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batcher groups the queued proofs for the tree (one vk per leaf job); the aggregator stops
    while the merge job proves (the batch stays PENDING, its leaf jobs' outputs kept in the store);
    the next process resumes the tree from them (proves only the merge) and stores the top proof:
    SIGNED, ready to post, leaves in tree order, no tree node left behind."""
    monkeypatch.setenv("SHEAF_TREE_STANDIN_PROVE_S", "0.2")
    inputs = {i.name: i for i in fixture_inputs()}
    names = TREE_BATCH
    async with tree_services(tmp_path / "agg.db") as ts:
        p1, p2 = standin.prover(normalizer=ts.normalizer), standin.prover(normalizer=ts.normalizer)
        first = ts.service(p1)
        ids = {}
        for name in names:  # the gnark proof is the oldest
            i = inputs[name]
            r = await first.ingest.submit(
                Submission(i.scheme, i.format, i.proof, i.vk, None, i.public, i.settings)
            )
            ids[name] = r.proof_id
        deadline = time.monotonic() + 30
        while not (pending := await first.db.run(first.db.store.batches_in, BatchState.PENDING)):
            assert time.monotonic() < deadline, "no batch"
            await asyncio.sleep(0.02)
        [b] = pending
        while first.proving.progress(b.batch_id) != "level 1 of 1, 0 of 1 jobs done":
            assert time.monotonic() < deadline, first.proving.progress(b.batch_id)
            await asyncio.sleep(0.01)
        assert first.proving.in_progress() == {b.batch_id: "level 1 of 1, 0 of 1 jobs done"}  # /readyz
        # the explorer's overview: the batch in proving with its progress
        ov = await explorer.ListApi(first.reads, ChainInfo(31337, ZERO))._compute_overview()
        assert [(x["batch_id"], x["stage"], x["progress"]) for x in ov["in_flight"]] == [
            (b.batch_id, "proving", "level 1 of 1, 0 of 1 jobs done")
        ]
        await ts.stop(first)  # mid-merge: the batch stays PENDING

        second = ts.service(p2)
        store = second.db.store
        while not (signed := await second.db.run(store.batches_in, BatchState.SIGNED)):
            assert time.monotonic() < deadline, "the resumed batch was not proved"
            await asyncio.sleep(0.05)
        assert [x.batch_id for x in signed] == [b.batch_id]
        rows = await second.db.run(store.batch_proofs, b.batch_id)
        assert b.kind == KIND_RECURSIVE and b.leaf_count == 3
        # tree order: the two proofs of one vk fill the first leaf job, the partial one goes last
        assert [r.proof_id for r in rows] == [ids[names[1]], ids[names[2]], ids[names[0]]]
        proof = await second.db.run(store.get_agg_proof, b.batch_id)
        assert proof is not None and len(proof) == 384
        assert b.root == merkle_root([r.statement_hash for r in rows])
        assert second.metrics.counter_value("sheaf_recursive_batches_total", result="proved") == 1
        m2 = p2.metrics
        assert m2.counter_value("sheaf_tree_jobs_total", level="0", outcome="restored") == 2
        assert m2.counter_value("sheaf_tree_jobs_total", level="0", outcome="proved") == 0
        assert m2.counter_value("sheaf_tree_jobs_total", level="1", outcome="proved") == 1
        assert await second.db.run(store.tree_nodes, b.batch_id) == []
        assert second.proving.progress(b.batch_id) is None


# -- opt-in: real tree proving on anvil --------------------------------------------------------------


@dataclass
class TreeEnv:
    chain: ChainEnv
    out: Path  # the deployments directory (manifest with the tree's `recursive` section)
    export_s: float


@pytest.fixture(scope="module")
def tree_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TreeEnv]:
    """anvil + SheafRegistry (domain 1 posted by the aggregator's key) + the tree's per-level verifiers
    exported now from the cached keys and deployed behind TreeAggregationAdapter (deploy/tree.py)."""
    gen = REPO_ROOT / "build" / "recursion" / f"test-agg-{os.getpid()}" / PLAN.name
    with Anvil(block_time=0.5) as node:
        out = tmp_path_factory.mktemp("deployments")
        reg, ops = deploy_for_recursion(node.rpc_url, out)
        try:
            t0 = time.monotonic()
            ex = export_tree_verifiers(PLAN, out=gen, log=print)  # compiles every level, vks from the cache
            deploy_tree_verifier(node.rpc_url, OWNER_KEY, exported=ex, out_dir=out, log=print)
            yield TreeEnv(ChainEnv(node, str(reg.address), ops), out, time.monotonic() - t0)
        finally:
            shutil.rmtree(gen.parent, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("SHEAF_TREE_PROVE"),
    reason="set SHEAF_TREE_PROVE=1 (real tree proving: cached K=2/F=2 tree keys, ~5-6 GB per job, minutes)",
)
async def test_real_tree_batch_on_chain(tree_env: TreeEnv, tmp_path: Path) -> None:
    """`aggregator run` (the App, auto mode) reads the tree deployment from the manifest, proves ONE
    batch of 3 real proofs (2 snarkjs of one vk + 1 gnark: leaf jobs [2] + [1], then the top merge)
    with `sheaf-gnark tree serve` workers and posts ONE recursive aggregation, which the registry
    verifies through TreeAggregationAdapter; every leaf's inclusion is RECURSIVE on chain."""
    env = tree_env.chain
    man = load_manifest(31337, tree_env.out).recursive
    assert man["kind"] == "tree"
    inputs = {i.name: i for i in fixture_inputs()}
    names = ["gnark/groth16_n1", "snarkjs/mul1_groth16/0", "snarkjs/mul1_groth16/1"]
    cfg = make_config(
        env,
        tmp_path / "agg.db",
        deployments_dir=str(tree_env.out),
        max_wait_ms=500,
        recursion=RecursionConfig(max_wait_ms=3_000),
    )
    app = App(cfg, submitter_key=SUBMITTER_KEY)
    t0 = time.monotonic()
    await app.start()
    p = app.prover
    assert isinstance(p, TreeProver) and p.circuit_hashes == tuple(man["circuit_hashes"])
    chain = Chain(env.node.rpc_url, env.registry)
    reg = registry(connect(env.node.rpc_url), load_manifest(31337, tree_env.out))
    progress: list[str] = []
    try:
        info = await p.wait_ready(1800)  # the level-0 worker, started by App.start
        t_ready = time.monotonic() - t0
        async with AsyncClient(f"127.0.0.1:{app.grpc.port}") as c:
            subs = []
            for name in names:  # the gnark proof is the oldest
                i = inputs[name]
                subs.append(await c.submit(i.scheme, i.format, i.proof, vk=i.vk, public=i.public))
            t1 = time.monotonic()

            async def watch() -> None:  # what /readyz shows while the batch proves
                url = f"http://127.0.0.1:{app.http.port}/readyz"
                async with aiohttp.ClientSession() as http:
                    while True:
                        async with http.get(url) as r:
                            s = next(iter((await r.json()).get("proving", {}).values()), None)
                        if s and (not progress or progress[-1] != s):
                            progress.append(s)
                        await asyncio.sleep(0.5)

            w = asyncio.create_task(watch())
            try:
                fin = await asyncio.gather(*(c.wait_finalized(s.proof_id, 3000) for s in subs))
            finally:
                w.cancel()
            t_fin = time.monotonic() - t1
            assert [f.status for f in fin] == [pb.FINALIZED] * 3
            incs = [await c.inclusion(s.proof_id) for s in subs]
            assert len({inc.aggregation_id for inc in incs}) == 1  # ONE aggregation for the three
            assert [inc.index for inc in incs] == [2, 0, 1]  # tree order: the snarkjs pair, then gnark
            for s, inc in zip(subs, incs, strict=True):
                assert inc.kind == pb.RECURSIVE and inc.leaf_count == 3 and inc.leaf == s.statement_hash
                path = list(inc.merkle_path)
                assert await chain.verify_inclusion(1, inc.aggregation_id, inc.leaf, path, 3, inc.index)
                kind = reg.functions.verifyProofAggregationKind(
                    1, inc.aggregation_id, inc.leaf, path, 3, inc.index
                )
                assert tuple(kind.call()) == (True, 1)  # RECURSIVE
        logs = reg.events.AggregationSubmitted().get_logs(from_block=0)
        assert [x.args.kind for x in logs] == [1]  # posted exactly once
        gas = int(connect(env.node.rpc_url).eth.get_transaction_receipt(logs[0].transactionHash)["gasUsed"])
        m = app.metrics
        assert m.counter_value("sheaf_tree_jobs_total", level="0", outcome="proved") == 2
        assert m.counter_value("sheaf_tree_jobs_total", level="1", outcome="proved") == 1
        assert m.counter_value("sheaf_recursive_batches_total", result="proved") == 1
        assert "level 1 of 1, 0 of 1 jobs done" in progress, progress
        peaks = {k[0][1]: round(v / 2**30, 2) for k, v in m.gauges["sheaf_tree_job_peak_rss_bytes"]().items()}
        prove_s = m.hists["sheaf_recursive_prove_seconds"][(("shape", PLAN.name),)].total
        workers = list(p.workers)
    finally:
        await chain.close()
        await app.stop()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss >> 10
    print(
        f"\n[tree] export+deploy {tree_env.export_s:.1f}s; level-0 worker ready {t_ready:.1f}s "
        "after App.start "
        f"({info['levels'][0]['nb_constraints']} R1CS); 3 proofs FINALIZED {t_fin:.1f}s after submission "
        f"(tree proving {prove_s:.1f}s); job peaks (GiB by level) {peaks}; tree workers' peak "
        f"{p.peak_rss_bytes / 2**30:.2f} GiB; largest child RSS {kids} MiB; workers {workers}; "
        f"submitRecursiveAggregation {gas} gas; progress seen {progress}",
        file=sys.stderr,
    )
