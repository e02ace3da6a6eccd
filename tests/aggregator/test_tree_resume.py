"""A restarted aggregator resumes a recursive batch's tree from the job outputs kept in its store
(issue 14; aggregator/tree_prover.py "kept nodes", Store.put_tree_node / tree_nodes, schema v5).

The tree worker is the stand-in `tree serve` (bench/standins/tree.py: the real protocol and pipes,
real Merkle nodes, a deterministic fake proof) behind a wrapper that logs every job request the
worker process receives, so each test asserts what was sent again, not what the prover says it did.
Stores are real: SQLite files, and PostgreSQL (the session's server, aggregator/pg_local.py) for the
store-level tests.

- an aggregator stopped after its first leaf job finished: the next one sends ONLY the other leaf
  job and the merge, its progress counts the restored job, and the batch gets the same top proof an
  uninterrupted run gives (same root, SIGNED once, no node left behind);
- a kept node made on another circuit, from other inputs, or whose output no longer passes the
  answer check is not reused: that job alone is proved again;
- the store keeps nodes only for a PENDING batch, replaces one per (level, job), deletes them when the
  batch is proved or fails (cascade included), and a schema-v4 database migrates and takes them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agg_helpers import TREE_BATCH, fixture_inputs, tree_services
from test_agg_store import BACKENDS

from aggregator import store as store_mod
from aggregator import store_pg as store_pg_mod
from aggregator.leaves import leaf_statement_hash
from aggregator.merkle import merkle_root
from aggregator.metrics import Metrics
from aggregator.records import KIND_RECURSIVE, BatchState, NewProof, Submission
from aggregator.store import MIGRATIONS, SqliteStore, Store, StoreThread, TreeNode
from aggregator.store_pg import PG_MIGRATIONS
from aggregator.tree_prover import TreeProver
from bench.standins.tree import make_keys, proof_of
from sheaf.hashing import keccak256
from sheaf.paths import REPO_ROOT
from sheaf.recursion_tree import TreePlan

PLAN = TreePlan(k=2, npub=1, fanin=2, levels=1)
FIX = REPO_ROOT / "tests" / "fixtures" / "tree" / PLAN.name
ZERO = "0x" + "00" * 20

# the stand-in, with every job request it receives appended to a log first: [op, level, inputs] with
# the leaves' statement hashes (leaf) or the children's roots (merge)
_WRAPPER = """
import json, sys
sys.path.insert(0, {root!r})
from aggregator.leaves import leaf_statement_hash
from bench.standins import tree

def requests(stdin):
    for line in stdin:
        req = json.loads(line)
        op = req.get("op")
        if op in ("leaf", "merge"):
            if op == "leaf":
                what = [leaf_statement_hash(x).hex() for x in req["leaves"]]
            else:
                what = [c["node"]["root"][2:] for c in req["children"]]
            with open({log!r}, "a") as f:
                f.write(json.dumps([op, req.get("level", 0), what]) + "\\n")
        yield line

sys.stdin = requests(sys.stdin)
sys.exit(tree.main(sys.argv[1:]))
"""

Request = tuple[str, int, list[str]]


@dataclass
class LoggedStandin:
    binary: str
    cache: Path
    hashes: list[str]
    log: Path

    def prover(self, **kw: Any) -> TreeProver:
        return TreeProver(
            PLAN,
            binary=self.binary,
            cache_dir=self.cache,
            circuit_hashes=self.hashes,
            restart_backoff_s=0.01,
            metrics=Metrics(),
            **kw,
        )

    def requests(self) -> list[Request]:
        if not self.log.exists():
            return []
        return [(str(a), int(b), list(c)) for a, b, c in map(json.loads, self.log.read_text().splitlines())]


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LoggedStandin:
    for v in ("PROVE_S", "EXIT_ON", "BAD_ROOT", "SALT"):
        monkeypatch.delenv(f"SHEAF_TREE_STANDIN_{v}", raising=False)
    log, script = tmp_path / "requests.jsonl", tmp_path / "standin.py"
    script.write_text(_WRAPPER.format(root=str(REPO_ROOT), log=str(log)))
    binary = tmp_path / "tree-standin"
    binary.write_text(f'#!/bin/sh\nexec {sys.executable} {script} "$@"\n')
    binary.chmod(0o755)
    cache = tmp_path / "tree"
    return LoggedStandin(str(binary), cache, make_keys(cache, PLAN), log)


def _leaf(hashes: list[bytes]) -> Request:
    return ("leaf", 0, [h.hex() for h in hashes])


def _merge(*children: list[bytes]) -> Request:
    return ("merge", 1, [merkle_root(c).hex() for c in children])


# -- an aggregator stopped mid-level, the next one resumes ------------------------------------------


async def test_a_restart_sends_only_the_unfinished_jobs(
    standin: LoggedStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHEAF_TREE_STANDIN_PROVE_S", "0.8")  # room to stop mid-level
    inputs = {i.name: i for i in fixture_inputs()}
    names = TREE_BATCH
    async with tree_services(tmp_path / "agg.db") as ts:
        p1, p2 = standin.prover(normalizer=ts.normalizer), standin.prover(normalizer=ts.normalizer)
        first = ts.service(p1)
        for name in names:
            i = inputs[name]
            await first.ingest.submit(
                Submission(i.scheme, i.format, i.proof, i.vk, None, i.public, i.settings)
            )
        deadline = time.monotonic() + 30
        store = first.db.store
        while not (pending := await first.db.run(store.batches_in, BatchState.PENDING)):
            assert time.monotonic() < deadline, "no batch"
            await asyncio.sleep(0.02)
        [b] = pending
        while not await first.db.run(store.tree_nodes, b.batch_id):  # the first leaf job is kept
            assert time.monotonic() < deadline, first.proving.progress(b.batch_id)
            await asyncio.sleep(0.01)
        assert first.proving.progress(b.batch_id) == "level 0 of 1, 1 of 2 jobs done"
        rows = [r.statement_hash for r in await first.db.run(store.batch_proofs, b.batch_id)]
        chunk0, chunk1 = rows[:2], rows[2:]
        await ts.stop(first)  # the second leaf job is with its worker: the batch stays PENDING
        assert standin.requests()[0] == _leaf(chunk0)
        sent_before = len(standin.requests())

        second = ts.service(p2)
        store = second.db.store
        seen: list[str] = []
        while not (signed := await second.db.run(store.batches_in, BatchState.SIGNED)):
            assert time.monotonic() < deadline, "the resumed batch was not proved"
            text = second.proving.progress(b.batch_id)
            if text and (not seen or seen[-1] != text):
                seen.append(text)
            await asyncio.sleep(0.01)
        # the new worker got only the unfinished leaf job and the merge over both leaf nodes
        assert standin.requests()[sent_before:] == [_leaf(chunk1), _merge(chunk0, chunk1)]
        # its progress counted the restored job from the start
        assert seen[0] == "level 0 of 1, 1 of 2 jobs done" and "level 1 of 1, 0 of 1 jobs done" in seen, seen
        assert "level 0 of 1, 0 of 2 jobs done" not in seen
        # one batch, the persisted root, the top proof an uninterrupted run gives, nothing kept after
        assert [x.batch_id for x in signed] == [b.batch_id] and signed[0].root == b.root == merkle_root(rows)
        proof = await second.db.run(store.get_agg_proof, b.batch_id)
        assert proof is not None and "0x" + proof.hex() == proof_of(standin.hashes[1], b.root, 3, True)
        assert await second.db.run(store.tree_nodes, b.batch_id) == []
        m = p2.metrics
        assert m.counter_value("sheaf_tree_jobs_total", level="0", outcome="restored") == 1
        assert m.counter_value("sheaf_tree_jobs_total", level="0", outcome="proved") == 1
        assert m.counter_value("sheaf_tree_jobs_total", level="1", outcome="proved") == 1
        assert second.metrics.counter_value("sheaf_recursive_batches_total", result="proved") == 1


# -- stale kept nodes are proved again ----------------------------------------------------------------


def _fixture_leaves() -> list[dict[str, Any]]:
    leaves: list[dict[str, Any]] = json.loads((FIX / "proofs.json").read_text())["leaves"]
    return leaves


def _new_proof(st: bytes, i: int) -> NewProof:
    return NewProof(
        1, st, b"\x11" * 32, KIND_RECURSIVE, "groth16", "gnark", b"p%d" % i, b"vk", b"[]", None, None
    )


async def test_stale_kept_nodes_are_proved_again(standin: LoggedStandin, tmp_path: Path) -> None:
    leaves = _fixture_leaves()
    hashes = [leaf_statement_hash(x) for x in leaves]
    chunk0, chunk1 = hashes[:2], hashes[2:]
    db = StoreThread(SqliteStore(tmp_path / "agg.db"))
    s = db.store
    await db.run(s.insert_proofs, [_new_proof(h, i) for i, h in enumerate(hashes)])
    ids = [r.proof_id for r in await db.run(s.take_queued, 1, KIND_RECURSIVE, 3)]
    b = await db.run(s.create_batch, 1, KIND_RECURSIVE, ids, merkle_root(hashes), defer_id=True)
    p = standin.prover()
    p.use_store(db)

    async def prove() -> tuple[list[Request], bytes]:
        before = len(standin.requests())
        run = await p.prove_tree(leaves, hashes, batch_id=b.batch_id, root=b.root)
        assert run.root == b.root
        return standin.requests()[before:], run.proof

    async def tamper(level: int, job: int, **change: Any) -> None:
        [node] = [x for x in await db.run(s.tree_nodes, b.batch_id) if (x.level, x.job_index) == (level, job)]
        assert await db.run(s.put_tree_node, dataclasses.replace(node, **change))

    try:
        sent, proof = await prove()
        assert sent == [_leaf(chunk0), _leaf(chunk1), _merge(chunk0, chunk1)]
        kept = await db.run(s.tree_nodes, b.batch_id)
        assert [(x.level, x.job_index, x.circuit_hash) for x in kept] == [
            (0, 0, standin.hashes[0]),
            (0, 1, standin.hashes[0]),
            (1, 0, standin.hashes[1]),
        ]
        assert await prove() == ([], proof)  # every node still holds: nothing is sent
        assert p.metrics.counter_value("sheaf_tree_jobs_total", level="1", outcome="restored") == 1

        await tamper(0, 0, circuit_hash="0" * 64)  # made on another circuit (another plan or keys)
        # the same leaf node comes out again, so the kept merge over it still holds
        assert await prove() == ([_leaf(chunk0)], proof)
        await tamper(0, 1, inputs=b"\x00" * 32)  # made from other leaves
        assert await prove() == ([_leaf(chunk1)], proof)
        top = json.loads(kept[2].output)
        top["node"]["root"] = "0x" + keccak256(b"another batch").hex()
        await tamper(1, 0, output=json.dumps(top))  # its answer no longer names the batch
        assert await prove() == ([_merge(chunk0, chunk1)], proof)
        assert p.metrics.counter_value("sheaf_tree_jobs_total", level="0", outcome="stale") == 2
        assert p.metrics.counter_value("sheaf_tree_jobs_total", level="1", outcome="stale") == 1
        # what was proved again replaced the stale node
        again = await db.run(s.tree_nodes, b.batch_id)
        assert [(x.circuit_hash, x.inputs, x.output) for x in again] == [
            (x.circuit_hash, x.inputs, x.output) for x in kept
        ]
    finally:
        await p.close()
        db.close()


# -- the store ------------------------------------------------------------------------------------


def _node(batch_id: int, level: int, job: int, output: str = "{}") -> TreeNode:
    return TreeNode(batch_id, level, job, "c" * 64, bytes([level, job]) * 16, output)


def _proofs(s: Store, n: int, tag: bytes) -> list[str]:
    s.insert_proofs([_new_proof(keccak256(tag + bytes([i])), i) for i in range(n)])
    return [r.proof_id for r in s.take_queued(1, KIND_RECURSIVE, 100)][-n:]


@pytest.fixture(params=sorted(BACKENDS))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    return BACKENDS[request.param](request, tmp_path)


def test_tree_nodes_live_while_the_batch_proves(open_store: Callable[[], Store]) -> None:
    s = open_store()
    try:
        b1 = s.create_batch(1, KIND_RECURSIVE, _proofs(s, 2, b"a"), b"\x01" * 32, defer_id=True)
        b2 = s.create_batch(1, KIND_RECURSIVE, _proofs(s, 2, b"b"), b"\x02" * 32, defer_id=True)
        for lv, j in ((1, 0), (0, 1), (0, 0)):
            assert s.put_tree_node(_node(b1.batch_id, lv, j))
        assert s.put_tree_node(_node(b1.batch_id, 0, 1, '{"again": 1}'))  # replaces its place's node
        assert s.put_tree_node(_node(b2.batch_id, 0, 0))
        assert not s.put_tree_node(_node(999_999, 0, 0))  # no such batch
    finally:
        s.close()
    s = open_store()  # durable: a new connection, as after a crash
    try:
        got = s.tree_nodes(b1.batch_id)
        assert [(x.level, x.job_index, x.output) for x in got] == [
            (0, 0, "{}"),
            (0, 1, '{"again": 1}'),
            (1, 0, "{}"),
        ]
        assert got[0] == dataclasses.replace(_node(b1.batch_id, 0, 0), created_ms=got[0].created_ms)
        assert got[0].created_ms > 0
        # proved: the top proof is stored and the nodes go in the same transaction; none kept after
        assert s.finish_proving(b1.batch_id, b"proof") is not None
        assert s.tree_nodes(b1.batch_id) == [] and not s.put_tree_node(_node(b1.batch_id, 0, 0))
        assert [x.batch_id for x in s.tree_nodes(b2.batch_id)] == [b2.batch_id]
        # failed: likewise
        assert s.fail_batch(b2.batch_id, "PROVER_CRASHED")
        assert s.tree_nodes(b2.batch_id) == [] and not s.put_tree_node(_node(b2.batch_id, 0, 0))
    finally:
        s.close()


def test_a_failed_batch_takes_the_nodes_of_its_cascade(open_store: Callable[[], Store]) -> None:
    # a batch that fails takes the domain's later unposted batches with it (their ids are released):
    # a PENDING one among them loses its kept nodes in the same transaction
    s = open_store()
    try:
        first = s.create_batch(1, KIND_RECURSIVE, _proofs(s, 1, b"c"), b"\x03" * 32, defer_id=True)
        assert s.finish_proving(first.batch_id, b"proof") is not None
        later = s.create_batch(1, KIND_RECURSIVE, _proofs(s, 1, b"d"), b"\x04" * 32)  # with an id
        assert s.put_tree_node(_node(later.batch_id, 0, 0))
        assert s.fail_batch(first.batch_id, "CHAIN_REVERTED", from_states=(BatchState.SIGNED,))
        assert s.get_batch(later.batch_id).state == BatchState.FAILED  # type: ignore[union-attr]
        assert s.tree_nodes(later.batch_id) == []
    finally:
        s.close()


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_a_v4_database_migrates_and_keeps_tree_nodes(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database of the previous release (schema v4, a recursive batch proving) opens with this
    release: v5 adds tree_nodes, the batch is there and takes nodes."""
    mod, attr, migrations = (
        (store_mod, "MIGRATIONS", MIGRATIONS)
        if backend == "sqlite"
        else (store_pg_mod, "PG_MIGRATIONS", PG_MIGRATIONS)
    )
    open_store = BACKENDS[backend](request, tmp_path)
    with monkeypatch.context() as m:
        m.setattr(mod, attr, migrations[:4])
        old = open_store()
        assert old.schema_version() == 4
        b = old.create_batch(1, KIND_RECURSIVE, _proofs(old, 2, b"old"), b"\x05" * 32, defer_id=True)
        old.close()
    s = open_store()
    try:
        assert s.schema_version() == len(migrations) == 5
        assert s.batches_in(BatchState.PENDING) == [b]
        assert s.tree_nodes(b.batch_id) == []
        assert s.put_tree_node(_node(b.batch_id, 0, 0))
        assert [x.job_index for x in s.tree_nodes(b.batch_id)] == [0]
    finally:
        s.close()
