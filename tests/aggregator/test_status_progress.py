"""`aggregator status <proof id>` shows how far the recursion tree is with the proof's batch (issue 14).

A Service on a real SQLite store whose Proving runs the tree prover against the stand-in `tree serve`
worker (bench/standins/tree.py: the real protocol and pipes, a fake proof), served over real gRPC
and HTTP on loopback (no chain needed): while the batch proves, the CLI's JSON (and GET
/v1/proofs/{id}) carry the batch id, "stage": "proving" and the prover's progress text; once the batch
is proved, the batch id and no progress.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from agg_helpers import SRS, fixture_inputs

from aggregator import cli
from aggregator.admission import ProofVerifier
from aggregator.config import Config, RecursionConfig
from aggregator.http import HttpApi
from aggregator.metrics import Metrics
from aggregator.records import BatchState, ChainInfo, Submission
from aggregator.server import GrpcServer
from aggregator.service import Service
from aggregator.store import SqliteStore
from aggregator.tree_prover import TreeProver
from bench.standins import tree as tree_standin
from bench.standins import write_binary
from normalizers.api import Normalizer
from sheaf.recursion_tree import TreePlan

PLAN = TreePlan(k=2, npub=1, fanin=2, levels=1)
NAMES = ["gnark/groth16_n1", "snarkjs/mul1_groth16/0", "snarkjs/mul1_groth16/1"]
TREE_PROGRESS = re.compile(r"level [01] of 1, [0-2] of [12] jobs done")


def _status(capsys: pytest.CaptureFixture[str], target: str, proof_id: str) -> dict[str, Any]:
    code = cli.main(["status", proof_id, "--target", target])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err, err
    doc: dict[str, Any] = json.loads(out)
    return doc


def _http_proof(base: str, proof_id: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/v1/proofs/{proof_id}", timeout=10) as r:
        doc: dict[str, Any] = json.loads(r.read())
        return doc


async def test_status_shows_the_tree_progress_while_the_batch_proves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for v in ("EXIT_ON", "BAD_ROOT", "SALT"):
        monkeypatch.delenv(f"SHEAF_TREE_STANDIN_{v}", raising=False)
    monkeypatch.setenv("SHEAF_TREE_STANDIN_PROVE_S", "0.7")  # 3 jobs: ~2 s in proving
    cache = tmp_path / "tree"
    n = Normalizer(srs=SRS, groth16_backend="groth16py")
    prover = TreeProver(
        PLAN,
        binary=write_binary(tmp_path / "tree-standin", tree_standin),
        cache_dir=cache,
        circuit_hashes=tree_standin.make_keys(cache, PLAN),
        restart_backoff_s=0.01,
        metrics=Metrics(),
        normalizer=n,
    )
    cfg = Config(
        db_path=str(tmp_path / "agg.db"),
        grpc_listen="127.0.0.1:0",
        max_wait_ms=3_600_000,
        recursion=RecursionConfig(max_wait_ms=200),
        groth16_backend="groth16py",
        srs_path=str(SRS),
    )
    svc = Service(
        cfg, SqliteStore(cfg.db_path), ProofVerifier(n), ChainInfo(31337, "0x" + "00" * 20), Metrics(), prover
    )
    svc.start()
    srv = GrpcServer(svc, cfg.grpc_listen)
    await srv.start()
    http = HttpApi(
        svc.ingest, svc.reads, svc.chain, svc.metrics, lambda: {}, max_message_bytes=cfg.max_message_bytes
    )
    await http.start("127.0.0.1:0")
    target, base = f"127.0.0.1:{srv.port}", f"http://127.0.0.1:{http.port}"
    try:
        inputs = {i.name: i for i in fixture_inputs()}
        ids = []
        for name in NAMES:
            i = inputs[name]
            r = await svc.ingest.submit(
                Submission(i.scheme, i.format, i.proof, i.vk, None, i.public, i.settings)
            )
            ids.append(r.proof_id)
        deadline = time.monotonic() + 30
        while not (pending := await svc.db.run(svc.db.store.batches_in, BatchState.PENDING)):
            assert time.monotonic() < deadline, "no batch"
            await asyncio.sleep(0.02)
        [b] = pending
        # while it proves: the CLI (and the HTTP API) say which batch, its stage and the tree's progress
        seen: list[dict[str, Any]] = []
        while svc.proving.progress(b.batch_id) is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        while svc.proving.progress(b.batch_id) is not None and not seen:
            st = await asyncio.to_thread(_status, capsys, target, ids[0])
            if "progress" in st:
                seen.append(st)
                seen.append(await asyncio.to_thread(_http_proof, base, ids[1]))
        assert seen, "the batch was proved before `aggregator status` answered"
        st, doc = seen
        assert (st["status"], st["batch_id"], st["stage"]) == ("AGGREGATING", b.batch_id, "proving")
        assert TREE_PROGRESS.fullmatch(st["progress"]), st["progress"]
        assert doc["batch_id"] == b.batch_id and doc["progress"] is not None
        assert TREE_PROGRESS.fullmatch(doc["progress"]), doc["progress"]
        # once proved (SIGNED, ready to post): the batch id, and no stage or progress
        while not await svc.db.run(svc.db.store.batches_in, BatchState.SIGNED):
            assert time.monotonic() < deadline, "the batch was not proved"
            await asyncio.sleep(0.05)
        for pid in ids:
            st = await asyncio.to_thread(_status, capsys, target, pid)
            assert st["batch_id"] == b.batch_id and "progress" not in st and "stage" not in st, st
            doc = await asyncio.to_thread(_http_proof, base, pid)
            assert (doc["batch_id"], doc["progress"]) == (b.batch_id, None)
    finally:
        await srv.stop(1.0)
        await http.stop()
        await svc.stop()
        await prover.close()
        n.close()
