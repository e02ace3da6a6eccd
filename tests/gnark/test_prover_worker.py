"""The aggregator's prover-worker supervision on the one process client, driven by a stand-in
worker (a script speaking the protocol; the real `aggregate serve` needs minutes of compile and
cached keys: tests/gnark/test_gnark_process.py and tests/aggregator/test_agg_recursive.py run it).
Checked: the ready handshake and its circuit checks, crash -> PROVER_CRASHED -> restarted worker
gets the job again, timeout -> worker killed -> PROVER_TIMEOUT -> retried, error codes mapped
(BAD_LEAF names the leaf, BAD_BATCH refused, INTERNAL retried up to max_attempts)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from aggregator.recursion import (
    CIRCUIT_MISMATCH,
    PROVER_BAD_LEAF,
    PROVER_CRASHED,
    PROVER_REJECTED,
    PROVER_TIMEOUT,
    PROVER_WORKER_ERROR,
    RecursiveProver,
)

# Each prove request takes the next action from the script file (shared by restarted workers):
# ok | crash | hang | BAD_LEAF | BAD_BATCH | INTERNAL.
STAND_IN = """#!{python}
import json, os, sys, time
args = sys.argv[1:]
assert args[:2] == ["aggregate", "serve"], args
arg = lambda name: int(args[args.index(name) + 1])
shape = {{"batch": arg("--batch"), "npub": arg("--npub"), "plonk": 0}}
script = {script!r}
def out(m):
    sys.stdout.write(json.dumps(m) + "\\n"); sys.stdout.flush()
print("aggregate: loading keys", file=sys.stderr, flush=True)
out({{"id": None, "ok": True, "event": "ready", "result": {{"process": "prover", "protocol": 2,
    "max_line": 1 << 28, "workers": 1, "ops": ["info", "ping", "prove", "verify", "version"],
    "shape": shape, "circuit_hash": "c1rcu17", "nb_constraints": 7, "dir": "/x",
    "keys_created": False, "compile_ms": 1, "setup_ms": 1}}}})
for line in sys.stdin:
    req = json.loads(line)
    with open(script) as f:
        actions = f.read().split()
    action, rest = actions[0], actions[1:]
    with open(script, "w") as f:
        f.write(" ".join(rest or [action]))
    if action == "crash":
        os._exit(3)
    if action == "hang":
        time.sleep(3600)
    if action == "ok":
        hashes = [leaf["statement"] for leaf in req["leaves"]]
        res = {{"leaves": hashes, "count": len(hashes), "proof": "0x" + "ab" * 384, "prove_ms": 5}}
        out({{"id": req["id"], "ok": True, "result": res}})
    else:
        field = "leaves[1].proof" if action == "BAD_LEAF" else "leaves"
        err = {{"code": action, "field": field, "message": "stand-in"}}
        out({{"id": req["id"], "ok": False, "error": err}})
"""


def stand_in(tmp_path: Path, actions: str) -> tuple[str, Path]:
    script = tmp_path / "actions"
    script.write_text(actions)
    exe = tmp_path / "sheaf-gnark"
    exe.write_text(STAND_IN.format(python=sys.executable, script=str(script)))
    exe.chmod(0o755)
    return str(exe), script


def prover(tmp_path: Path, exe: str, **kw: Any) -> RecursiveProver:
    kw = {"max_attempts": 3, "prove_timeout_s": 30.0, "ready_timeout_s": 30.0, "restart_backoff_s": 0.01} | kw
    cache = str(tmp_path / "cache")
    return RecursiveProver(batch=2, npub=1, normalizer=None, binary=exe, cache_dir=cache, **kw)


LEAVES = [bytes([1]) * 32, bytes([2]) * 32]
JOB = SimpleNamespace(batch_id=7, leaves=LEAVES, items=[])
# the worker leaves; the stand-in echoes "statement" as the proved leaf hash
WIRE = [{"scheme": "groth16", "statement": "0x" + h.hex()} for h in LEAVES]


async def prove(p: RecursiveProver) -> bytes:
    return await p._prove_locked(JOB, WIRE)  # type: ignore[arg-type]


async def test_ready_then_crash_then_restarted_worker_proves(tmp_path: Path) -> None:
    exe, _ = stand_in(tmp_path, "crash ok")
    p = prover(tmp_path, exe)
    try:
        info = await p.wait_ready()
        assert info["circuit_hash"] == "c1rcu17" and info["process"] == "prover"
        first = p.worker_pid
        assert first is not None
        assert await prove(p) == bytes([0xAB]) * 384
        assert p.restarts == 1 and p.worker_pid not in (None, first)
        m = p.metrics
        assert m.counter_value("sheaf_recursive_failures_total", code=PROVER_CRASHED) == 1
        assert any("aggregate: loading keys" in line for line in p._stderr_tail)
    finally:
        await p.close()
    assert p.worker_pid is None


async def test_timeout_kills_the_worker_and_retries(tmp_path: Path) -> None:
    exe, _ = stand_in(tmp_path, "hang ok")
    p = prover(tmp_path, exe, prove_timeout_s=1.0)
    try:
        await p.wait_ready()
        first = p.worker_pid
        assert p.progress(7) is None
        task = asyncio.create_task(prove(p))
        await asyncio.sleep(0.3)  # the first attempt hangs until the 1 s timeout
        assert p.progress(7) == "attempt 1 of 3"  # what the explorer shows for batch 7
        assert await task == bytes([0xAB]) * 384
        assert p.progress(7) is None
        assert p.worker_pid != first
        assert p.metrics.counter_value("sheaf_recursive_failures_total", code=PROVER_TIMEOUT) == 1
    finally:
        await p.close()


@pytest.mark.parametrize(
    ("actions", "code", "bad"),
    [
        ("BAD_LEAF", PROVER_BAD_LEAF, [1]),
        ("BAD_BATCH", PROVER_REJECTED, []),
        ("MALFORMED", PROVER_REJECTED, []),
        ("INTERNAL", PROVER_WORKER_ERROR, []),  # retried max_attempts times, then given up
        ("crash", PROVER_CRASHED, []),
    ],
)
async def test_error_codes_map_to_prover_errors(
    tmp_path: Path, actions: str, code: str, bad: list[int]
) -> None:
    exe, _ = stand_in(tmp_path, actions)
    p = prover(tmp_path, exe, max_attempts=2)
    try:
        with pytest.raises(Exception) as ei:
            await prove(p)
        assert getattr(ei.value, "code", None) == code, ei.value
        assert list(getattr(ei.value, "bad_leaves", None) or []) == bad
        if code in (PROVER_WORKER_ERROR, PROVER_CRASHED):
            assert "gave up after 2 attempts" in str(ei.value)
    finally:
        await p.close()


async def test_wrong_circuit_disables_recursion(tmp_path: Path) -> None:
    exe, _ = stand_in(tmp_path, "ok")
    p = prover(tmp_path, exe, expected_circuit_hash="0xdeadbeef")
    try:
        with pytest.raises(Exception) as ei:
            await p.wait_ready()
        assert getattr(ei.value, "code", None) == CIRCUIT_MISMATCH and p.disabled
        assert p.worker_pid is None  # the mismatching worker was stopped
    finally:
        await p.close()
