"""`prover submit` end to end: real gnark slice proofs -> aggregator (gRPC) -> 2-of-3 operators ->
anvil registry -> inclusion checked on-chain by the prover CLI itself; then `prover submit-inference`
on the same run (one whole inference, its receipt checked with the SDK against the registry)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from eth_account import Account
from prover_helpers import write_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "aggregator"))
from agg_helpers import FIX, OPERATOR_KEYS, ROOT, SUBMITTER_KEY, deploy_registry  # type: ignore[import-not-found]

from aggregator.app import App
from aggregator.config import Config
from deploy.anvil import Anvil
from provers.pipeline import load_run_manifest, run_model
from sheaf.inference import SliceSpec, model_id

pytestmark = pytest.mark.slow
GG = [
    ("layer0", "x", "a0", "gnark-groth16"),
    ("layer1", "a0", "a1", "gnark-plonk"),
    ("head", "a1", "y", "gnark-groth16"),
]


@pytest.fixture(scope="module")
def chain() -> Iterator[tuple[str, str, list[str]]]:
    with Anvil(block_time=0.5) as node:
        ops = [Account.from_key(k).address for k in OPERATOR_KEYS]
        yield node.rpc_url, deploy_registry(node.rpc_url, ops, 2, domains=(1,)), ops


@pytest.fixture
async def app(chain: tuple[str, str, list[str]], tmp_path: Path) -> AsyncIterator[App]:
    rpc, registry, ops = chain
    cfg = Config(
        db_path=str(tmp_path / "agg.db"),
        grpc_listen="127.0.0.1:0",
        http_listen="127.0.0.1:0",
        rpc_url=rpc,
        registry=registry,
        operators=ops,
        threshold=2,
        max_leaves=8,
        max_wait_ms=300,
        confirmations=2,
        poll_ms=200,
        srs_path=str(FIX / "ezkl" / "verifier-k1.srs"),
        groth16_backend="groth16py",
        rpc_retries=2,
    )
    a = App(cfg, submitter_key=SUBMITTER_KEY)
    await a.start()
    yield a
    await a.stop()


def _operator(target: str, key: str, registry: str, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, SHEAF_OPERATOR_KEY=key)
    cmd = [
        sys.executable,
        "-m",
        "aggregator.cli",
        "operator",
        "--target",
        target,
        "--srs",
        str(FIX / "ezkl" / "verifier-k1.srs"),
        "--groth16-backend",
        "groth16py",
        "--registry",
        registry,
    ]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "wb"), start_new_session=True
    )


async def test_prover_submit_finalizes_and_checks_inclusion_on_chain(
    app: App, chain: tuple[str, str, list[str]], model_path: Path, tmp_path: Path
) -> None:
    rpc, registry, _ = chain
    out = tmp_path / "proofs"
    # proving runs in a worker thread: the aggregator shares this event loop
    await asyncio.to_thread(run_model, model_path, write_config(tmp_path, GG), out)
    assert len(load_run_manifest(out / "proofs.json")) == 3
    target = f"127.0.0.1:{app.grpc.port}"
    ops = [_operator(target, k, registry, tmp_path / f"op{i}.log") for i, k in enumerate(OPERATOR_KEYS[:2])]
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "provers.cli",
            "submit",
            "--proofs",
            str(out / "proofs.json"),
            "--aggregator",
            target,
            "--rpc",
            rpc,
            "--domain",
            "1",
            "--timeout",
            "180",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 400)
    finally:
        for p in ops:
            p.terminate()
            p.wait(10)
    text, err = stdout.decode(), stderr.decode()
    assert proc.returncode == 0, err + text
    rows = [line.split() for line in text.splitlines()[1:]]
    assert [r[0] for r in rows] == ["layer0", "layer1", "head"]
    for r in rows:
        # slice backend prove_s proof_B statement agg_id kind tx gas on_chain
        assert r[6] == "ATTESTED" and r[9] == "yes" and int(r[8]) > 21000 and r[5].isdigit()
    assert "on-chain inclusion OK" in err
    assert json.loads((out / "proofs.json").read_text())["chain"][0]["linked"] is True

    # the same run as one whole inference (`prover submit-inference`): its slices are FINALIZED already,
    # so the inference is at once; the model spec and the receipt land next to proofs.json
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "provers.cli",
        "submit-inference",
        "--proofs",
        str(out / "proofs.json"),
        "--aggregator",
        target,
        "--rpc",
        rpc,
        "--domain",
        "1",
        "--timeout",
        "60",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    text, err = stdout.decode(), stderr.decode()
    assert proc.returncode == 0, err + text
    assert "verified with the SDK (inclusion: on-chain registry); fully proven: True" in text
    model = [SliceSpec.from_json(d) for d in json.loads((out / "model.json").read_text())["slices"]]
    assert [(s.in_commit_index, s.out_commit_index, s.public_input_count) for s in model] == [(0, 1, 2)] * 3
    assert f"model      0x{model_id(model).hex()}" in text
    receipt = json.loads((out / "receipt.json").read_text())
    assert receipt["model_id"] == "0x" + model_id(model).hex() and len(receipt["proofs"]) == 3
    head = load_run_manifest(out / "proofs.json")[2]
    assert receipt["output"] == [hex(int.from_bytes(head.out_commit or b"", "big"))]
