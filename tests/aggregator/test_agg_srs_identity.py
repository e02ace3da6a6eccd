"""The KZG SRS identity across parties (issue 13, failure 8a), with real processes.

An operator whose SRS is not the aggregator's would accept nothing made with the aggregator's SRS:
before, it refused every Halo2 batch later with "operator refused" and no cause. Now the operator
sends its SRS id (sheaf.srs_id) with FetchBatch and stops at startup with SRS_MISMATCH naming both
ids and what to do; a k=1 cut of the aggregator's SRS (`python -m provers.srs cut`) has the same id
and attests; a refusal that does happen names its cause.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from agg_helpers import (
    OPERATOR_KEYS,
    ROOT,
    SRS,
    SUBMITTER_KEY,
    ChainEnv,
    fixture_inputs,
    make_config,
    stop_process,
    submit_all,
    wait_all_finalized,
)

from aggregator.admission import ProofVerifier
from aggregator.app import App
from aggregator.operator import check_task
from normalizers.api import Normalizer, ProofInput
from sheaf.srs_id import srs_id
from sheaf.v1 import aggregator_pb2 as pb


def _other_srs(path: Path) -> Path:
    """A real KZG SRS with other toxic waste than the committed one (ezkl.gen_srs, k=1: fast)."""
    import ezkl

    assert ezkl.gen_srs(str(path), 1) is not False
    assert srs_id(path) != srs_id(SRS)
    return path


def _operator(target: str, key: str, srs: Path, log: Path, registry: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, SHEAF_OPERATOR_KEY=key)
    env.pop("SHEAF_SRS", None)
    cmd = [sys.executable, "-m", "aggregator.cli", "operator", "--target", target, "--srs", str(srs)]
    cmd += ["--groth16-backend", "groth16py", "--registry", registry]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "wb"), start_new_session=True
    )


async def _wait_exit(p: subprocess.Popen[bytes], timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            return p.returncode
        await asyncio.sleep(0.2)
    return None


async def test_operator_with_another_srs_stops_at_startup_naming_both_ids(
    chain_env: ChainEnv, tmp_path: Path
) -> None:
    other = _other_srs(tmp_path / "other.srs")
    app = App(make_config(chain_env, tmp_path / "agg.db"), submitter_key=SUBMITTER_KEY)  # srs_path = SRS
    await app.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        target = f"127.0.0.1:{app.grpc.port}"
        log = tmp_path / "op.log"
        procs.append(_operator(target, OPERATOR_KEYS[0], other, log, chain_env.registry))
        rc = await _wait_exit(procs[0], 60)
        err = log.read_text()
        assert rc == 2, f"operator with another SRS did not stop (rc={rc}):\n{err[-2000:]}"
        assert "SRS_MISMATCH" in err, err
        assert srs_id(other) in err and srs_id(SRS) in err, err  # both ids named
        assert "python -m provers.srs cut" in err, err  # and what to do
        assert "Traceback" not in err, err
    finally:
        for p in procs:
            stop_process(p)
        await app.stop()


async def test_operators_with_a_cut_of_the_aggregator_srs_attest(chain_env: ChainEnv, tmp_path: Path) -> None:
    # the aggregator uses a full SRS (k=2 here, fast), the operators a k=1 cut made by the documented
    # command: same SRS id, so they run and sign
    import ezkl

    full = tmp_path / "full-k2.srs"
    assert ezkl.gen_srs(str(full), 2) is not False
    cut = tmp_path / "cut-k1.srs"
    r = subprocess.run(
        [sys.executable, "-m", "provers.srs", "cut", str(full), str(cut)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert srs_id(cut) == srs_id(full) and srs_id(full) in r.stdout
    app = App(make_config(chain_env, tmp_path / "agg.db", srs_path=str(full)), submitter_key=SUBMITTER_KEY)
    await app.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        target = f"127.0.0.1:{app.grpc.port}"
        for i, key in enumerate(OPERATOR_KEYS[:2]):
            procs.append(_operator(target, key, cut, tmp_path / f"op{i}.log", chain_env.registry))
        g16 = [i for i in fixture_inputs() if i.scheme == "groth16"][:1]
        ids = await submit_all(target, g16, 1)
        st = await wait_all_finalized(target, list(ids), 120)
        assert len(st) == 1 and all(s.status == pb.FINALIZED for s in st.values()), st
        for i, p in enumerate(procs):
            assert p.poll() is None, (tmp_path / f"op{i}.log").read_text()
            assert srs_id(full) in (tmp_path / f"op{i}.log").read_text()  # logged at startup
    finally:
        for p in procs:
            stop_process(p)
        await app.stop()


async def test_a_refusal_names_its_cause(tmp_path: Path) -> None:
    # an operator verifying a Halo2 proof with another SRS (an aggregator that does not check ids)
    other = _other_srs(tmp_path / "other.srs")
    item = next(i for i in fixture_inputs() if i.scheme == "halo2")
    with Normalizer(srs=SRS, groth16_backend="groth16py") as good:
        st = good.normalize(
            ProofInput(item.scheme, item.format, item.proof, item.vk, item.public, item.settings)
        ).statement_hash
    task: Any = pb.AttestationTask(
        has_batch=True,
        batch_id=1,
        domain_id=1,
        aggregation_id=1,
        root=b"\x00" * 32,
        leaf_count=1,
        chain_id=31337,
        registry="0x" + "11" * 20,
        deadline=int(time.time()) + 600,  # operators refuse a deadline already past (issue 13)
        items=[
            pb.BatchItem(
                scheme=item.scheme,
                format=item.format,
                proof=item.proof,
                vk=item.vk,
                settings=item.settings or b"",
                statement_hash=st,
            )
        ],
    )
    v = ProofVerifier(Normalizer(srs=other, groth16_backend="groth16py"))
    try:
        d = await check_task(task, v, OPERATOR_KEYS[0], srs_id=srs_id(other))
    finally:
        await v.close()
    assert d.refusal_code == "VERIFICATION_FAILED"
    assert "VERIFICATION_FAILED" in d.refusal_message and "0x" + st.hex() in d.refusal_message
    assert srs_id(other) in d.refusal_message, d.refusal_message  # the likely cause, named


@pytest.mark.parametrize("bad", ["missing", "short"])
def test_unreadable_operator_srs_is_a_coded_startup_error(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "x.srs"
    if bad == "short":
        path.write_bytes(b"\x01\x00")
    env = dict(os.environ, SHEAF_OPERATOR_KEY=OPERATOR_KEYS[0])
    r = subprocess.run(
        [sys.executable, "-m", "aggregator.cli", "operator", "--target", "127.0.0.1:1", "--srs", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("SRS_") and "Traceback" not in r.stderr, r.stderr
