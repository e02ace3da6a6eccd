"""A real 64-leaf recursion-tree batch, end to end on anvil, measured (issue 14).

    python -m bench.recursion_tree_64 [--leaves 64] [--setup]     # ~40 min with cached keys

Plan K=4, P=1, F=4, D=2 (the design's choice, docs/recursion.md): 16 leaf jobs of 4 proofs, 4 merges
of 4, one top merge. What runs is what a user runs: `aggregator run`'s App (local tree workers, one
`sheaf-gnark tree serve --level L` process at a time), proofs submitted over gRPC, the batch proven
and posted as ONE recursive aggregation, every leaf's inclusion checked on chain.

Leaves (distinct statements, one vk per leaf job): gnark Groth16 MulChain(1) proofs
(`sheaf-gnark fixtures --many`) and snarkjs Groth16 proofs of two circom circuits (mul1, sq1:
tests/fixtures/make_fixtures.py's sources, proved here with snarkjs fullProve). gnark PLONK leaves
are not in the tree yet (docs/recursion.md "Left").

Keys: `--setup` runs `sheaf-gnark tree setup --level L` for every level, one process per level
(INSECURE dev setup, ~40 + 2 x ~20 min cold here); without it the keys must be cached.

Gas from anvil receipts: what the App posts (`submitRecursiveAggregationRoot` by default;
`submitRecursiveAggregation`, leaves in calldata, with `recursion.publish_leaves`) and, for the same
real top proof, the other variant under the next id (the proof binds root and count only); the
inclusion check (`verifyProofAggregation`) of EVERY leaf as execution gas. Per proof = submission / n
+ the largest inclusion check, next to direct verification (measured here) and the attested route
(bench/results/gas.json). Writes bench/results/recursion_<plan>_n<leaves>[_split<N>].json.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from eth_account import Account

from aggregator.app import App
from aggregator.client import AsyncClient
from aggregator.config import Config, RecursionConfig
from aggregator.jobs_pg import PgJobQueue
from aggregator.merkle import merkle_root
from aggregator.pg_local import LocalPostgres
from aggregator.tree_prover import TreeProver
from bench.gas import direct_gnark_groth16
from deploy.anvil import ANVIL_DEV_KEYS, Anvil
from deploy.api import configure_registry, deploy_all, load_manifest, registry
from deploy.chain import call_tx_gas, connect, exec_gas, transact
from deploy.compile import compile_files
from deploy.tree import deploy_tree_verifier, export_tree_verifiers
from sheaf.paths import REPO_ROOT, gnark_binary
from sheaf.recursion_tree import TreePlan, tree_cache_root

PLAN = TreePlan(k=4, npub=1, fanin=4, levels=2)
RESULTS = REPO_ROOT / "bench" / "results"
TARGET_GAS_64 = 15_000
OWNER = ANVIL_DEV_KEYS[0]
SUBMITTER = ANVIL_DEV_KEYS[1]  # the aggregator's key: domain 1's submitter (recursive posts)
OPERATORS = ANVIL_DEV_KEYS[2:5]  # configured for the attested fallback; no operator runs here


@dataclass(frozen=True)
class Proof:
    name: str
    scheme: str
    format: str
    proof: bytes
    vk: bytes
    public: bytes


def setup_keys(binary: str) -> list[dict[str, Any]]:
    """`tree setup --level L` for every level, each in its own process (load, or INSECURE setup)."""
    rows = []
    for level in range(PLAN.levels + 1):
        t0 = time.monotonic()
        r = subprocess.run(
            [binary, "tree", "setup", "--k", str(PLAN.k), "--npub", str(PLAN.npub), "--fanin",
             str(PLAN.fanin), "--levels", str(PLAN.levels), "--level", str(level)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        top = json.loads(r.stdout)["levels"][-1]
        rows.append({**top, "wall_s": round(time.monotonic() - t0, 1)})
        print(
            f"level {level}: {top['nb_constraints']:,} R1CS, created={top['created']}, {rows[-1]['wall_s']} s"
        )
    return rows


def gnark_proofs(binary: str, tmp: Path, n: int) -> list[Proof]:
    out = tmp / "gnark"
    subprocess.run([binary, "fixtures", "--many", str(n), "--n-public", "1", "--out", str(out)], check=True)
    return [
        Proof(
            f"gnark/{i}",
            "groth16",
            "gnark",
            (out / str(i) / "proof.bin").read_bytes(),
            (out / str(i) / "vk.bin").read_bytes(),
            (out / str(i) / "public.bin").read_bytes(),
        )
        for i in range(n)
    ]


_FULLPROVE = """
const path = require('path'); const fs = require('fs');
const snarkjs = require(path.join(process.argv[2], 'node_modules', 'snarkjs'));
(async () => {
  const [wasm, zkey, out, n, seed] = process.argv.slice(3);
  for (let i = 0; i < Number(n); i++) {
    const {proof, publicSignals} = await snarkjs.groth16.fullProve(
      {a: String(Number(seed) + i), b: '11'}, wasm, zkey);
    fs.writeFileSync(path.join(out, `proof${i}.json`), JSON.stringify(proof));
    fs.writeFileSync(path.join(out, `public${i}.json`), JSON.stringify(publicSignals));
  }
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
"""


def snarkjs_proofs(tmp: Path, circuit: str, n: int, seed: int) -> list[Proof]:
    """n Groth16 proofs of one circom circuit (DEV-ONLY local powers of tau, as the fixtures)."""
    spec = importlib.util.spec_from_file_location(
        "make_fixtures", REPO_ROOT / "tests/fixtures/make_fixtures.py"
    )
    assert spec and spec.loader
    mf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mf)
    d = tmp / circuit
    d.mkdir()
    mf.snarkjs("powersoftau", "new", "bn128", "8", "pot0.ptau", cwd=d)
    mf.snarkjs("powersoftau", "contribute", "pot0.ptau", "pot1.ptau", "-e=sheaf-dev-only", cwd=d)
    mf.snarkjs("powersoftau", "prepare", "phase2", "pot1.ptau", "pot.ptau", cwd=d)
    (d / f"{circuit}.circom").write_text(mf.CIRCUITS[circuit][0])
    mf.run([str(mf.BIN / "circom"), f"{circuit}.circom", "--r1cs", "--wasm"], d)
    mf.snarkjs("groth16", "setup", f"{circuit}.r1cs", "pot.ptau", "c0.zkey", cwd=d)
    mf.snarkjs("zkey", "beacon", "c0.zkey", "c.zkey", "0" * 64, "10", cwd=d)
    mf.snarkjs("zkey", "export", "verificationkey", "c.zkey", "vk.json", cwd=d)
    (d / "fullprove.js").write_text(_FULLPROVE)
    subprocess.run(
        ["node", "fullprove.js", str(REPO_ROOT), f"{circuit}.wasm", "c.zkey", ".", str(n), str(seed)],
        cwd=d, check=True,
    )  # fmt: skip
    vk = (d / "vk.json").read_bytes()
    return [
        Proof(
            f"snarkjs/{circuit}/{i}",
            "groth16",
            "snarkjs",
            (d / f"proof{i}.json").read_bytes(),
            vk,
            (d / f"public{i}.json").read_bytes(),
        )
        for i in range(n)
    ]


def vk_groups(n: int, k: int) -> tuple[int, int, int]:
    """How many of n proofs come from each vk (gnark, snarkjs mul1, snarkjs sq1): multiples of K but
    the last, so every leaf job but the tree's last is full (28 / 20 / 16 of 64 at K=4)."""
    g = min(n, max(k, (n * 7 // 16) // k * k))
    m = max(0, ((n - g) * 5 // 9) // k * k)
    return g, m, n - g - m


def leaves(tmp: Path, binary: str, n: int) -> list[Proof]:
    """n proofs in three vk groups (vk_groups)."""
    g, m, s = vk_groups(n, PLAN.k)
    out = gnark_proofs(binary, tmp, g)
    if m:
        out += snarkjs_proofs(tmp, "mul1", m, 100)
    if s:
        out += snarkjs_proofs(tmp, "sq1", s, 500)
    return out


def start_workers(tmp: Path, binary: str, url: str, n: int) -> list[subprocess.Popen[bytes]]:
    """n `aggregator worker` processes serving the tree levels they have keys for (`--tree-cache`)."""
    out = []
    for i in range(n):
        cmd = [
            *(sys.executable, "-m", "aggregator.cli", "worker", "--db-url", url, "--schema", "sheaf_queue"),
            *("--name", f"w{i}", "--worker-bin", binary, "--tree-cache", str(tree_cache_root(None))),
            *("--cache", str(tmp / "no-flat-keys"), "--drain-s", "0"),
        ]
        log = open(tmp / f"w{i}.log", "wb")  # kept open for the process's life
        out.append(
            subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )
    return out


def stop_workers(ws: list[subprocess.Popen[bytes]]) -> None:
    for w in ws:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    for w in ws:
        try:
            w.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(w.pid, signal.SIGKILL)
            w.wait(10)


async def queue_runs(url: str) -> list[dict[str, Any]]:
    """Every job run on the queue: job id, worker, outcome, seconds (sheaf_job_runs)."""
    q = PgJobQueue(url, schema="sheaf_queue", name="bench-reader")
    await q.open()
    try:
        rs = await q.connector.execute_query_all_async(
            "SELECT job_id, worker, outcome, EXTRACT(EPOCH FROM finished_at - started_at) AS s "
            "FROM sheaf_job_runs ORDER BY started_at"
        )
        return [
            {
                "job": r["job_id"],
                "worker": r["worker"],
                "outcome": r["outcome"],
                "s": round(float(r["s"] or 0), 1),
            }
            for r in rs
        ]
    finally:
        await q.close()


async def run_batch(
    node: Anvil, reg_addr: str, deployments: Path, db: Path, proofs: list[Proof], queue_url: str = ""
) -> dict[str, Any]:
    queue: dict[str, Any] = {}
    if queue_url:  # the split: jobs on the PostgreSQL queue; a job waits until a worker is free
        queue = dict(queue="postgres", queue_url=queue_url, queue_pickup_timeout_s=7200, queue_max_inflight=1)
    cfg = Config(
        db_path=str(db),
        grpc_listen="127.0.0.1:0",
        http_listen="127.0.0.1:0",
        rpc_url=node.rpc_url,
        registry=reg_addr,
        operators=[Account.from_key(k).address for k in OPERATORS],
        threshold=2,
        max_wait_ms=500,
        confirmations=2,
        poll_ms=200,
        deployments_dir=str(deployments),
        # the batch closes when all n are queued (full) or after this wait
        recursion=RecursionConfig(max_wait_ms=300_000, prove_timeout_s=3600, **queue),
    )
    app = App(cfg, submitter_key=SUBMITTER)
    t0 = time.monotonic()
    await app.start()
    p = app.prover
    assert isinstance(p, TreeProver), f"the App did not build the tree prover: {p!r}"
    progress: list[tuple[float, str]] = []
    try:
        info = await p.wait_ready(7200)
        t_ready = time.monotonic() - t0
        print(f"prover ready after {t_ready:.1f} s: {info}")
        async with AsyncClient(f"127.0.0.1:{app.grpc.port}", timeout=60) as c:
            t1 = time.monotonic()
            subs = await asyncio.gather(
                *(c.submit(x.scheme, x.format, x.proof, vk=x.vk, public=x.public) for x in proofs)
            )
            t_submitted = time.monotonic() - t1
            print(f"{len(subs)} proofs acked in {t_submitted:.1f} s")

            async def watch() -> None:  # what /readyz shows while the batch proves
                url = f"http://127.0.0.1:{app.http.port}/readyz"
                async with aiohttp.ClientSession() as http:
                    while True:
                        async with http.get(url) as r:
                            s = next(iter((await r.json()).get("proving", {}).values()), None)
                        if s and (not progress or progress[-1][1] != s):
                            progress.append((round(time.monotonic() - t1, 1), s))
                            print(f"  +{progress[-1][0]:7.1f} s  {s}", flush=True)
                        await asyncio.sleep(1.0)

            w = asyncio.create_task(watch())
            try:
                fin = await asyncio.gather(*(c.wait_finalized(s.proof_id, 7200) for s in subs))
            finally:
                w.cancel()
            t_fin = time.monotonic() - t1
            incs = [await c.inclusion(s.proof_id) for s in subs]
        assert all(f.status == fin[0].status for f in fin)
        aggs = {inc.aggregation_id for inc in incs}
        assert len(aggs) == 1, f"{len(aggs)} aggregations, expected ONE"
        m = app.metrics
        jobs = {
            lv: {
                "proved": m.counter_value("sheaf_tree_jobs_total", level=str(lv), outcome="proved"),
            }
            for lv in range(PLAN.levels + 1)
        }
        for labels, hist in m.hists.get("sheaf_tree_job_seconds", {}).items():
            lv = int(dict(labels)["level"])
            jobs.setdefault(lv, {}).update({"seconds_total": round(hist.total, 1), "count": hist.n})
        for key, v in m.gauges["sheaf_tree_job_peak_rss_bytes"]().items():
            jobs.setdefault(int(key[0][1]), {})["peak_rss_mib"] = round(v / 2**20)
        prove_s = sum(h.total for h in m.hists["sheaf_recursive_prove_seconds"].values())
        return {
            "worker_ready_s": round(t_ready, 1),
            "submitted_s": round(t_submitted, 1),
            "finalized_s": round(t_fin, 1),
            "tree_prove_s": round(prove_s, 1),
            "jobs_by_level": jobs,
            "workers": list(p.workers),
            "workers_peak_rss_mib": round(p.peak_rss_bytes / 2**20),
            "progress": progress,
            "aggregation_id": aggs.pop(),
            "inclusion": [
                (bytes(i.leaf), list(map(bytes, i.merkle_path)), int(i.index), int(i.kind)) for i in incs
            ],
        }
    finally:
        await app.stop()


def onchain_gas(node: Anvil, deployments: Path, run: dict[str, Any]) -> dict[str, Any]:
    """Receipts: the App's posting, the same proof via the root variant, every leaf's inclusion check."""
    w3 = connect(node.rpc_url)
    man = load_manifest(31337, deployments)
    reg = registry(w3, man)
    logs = reg.events.AggregationSubmitted().get_logs(from_block=0)
    assert [int(x.args.kind) for x in logs] == [1], (
        "expected exactly ONE recursive aggregation"
    )  # posted once
    tx = w3.eth.get_transaction(logs[0].transactionHash)
    posted = int(w3.eth.get_transaction_receipt(logs[0].transactionHash)["gasUsed"])
    fn, args = reg.decode_function_input(tx["input"])
    n = len(run["inclusion"])
    incl = []
    submitter = Account.from_key(SUBMITTER)
    for leaf, path, index, kind in run["inclusion"]:
        assert kind == 1, "a leaf's inclusion kind is not RECURSIVE"
        call = reg.functions.verifyProofAggregation(1, run["aggregation_id"], leaf, path, n, index)
        assert call.call(), f"leaf {index} not included"
        data = bytes.fromhex(call._encode_transaction_data()[2:])
        incl.append(exec_gas(call_tx_gas(w3, submitter, reg.address, data, "inclusion"), data))
    # the same real top proof through the root variant, under the next id (it binds root and count)
    in_tree_order = [x[0] for x in sorted(run["inclusion"], key=lambda x: x[2])]
    root = merkle_root(in_tree_order)
    if "leaves" in args:
        assert [bytes(x) for x in args["leaves"]] == in_tree_order, "posted leaves are not the batch's"
    else:
        assert (bytes(args["root"]), int(args["leafCount"])) == (root, n), (
            "posted root is not the flat batch's"
        )
    proof = bytes(args["proof"])
    # the same real top proof through the other variant, under the next id (it binds root and count)
    other = (
        reg.functions.submitRecursiveAggregationRoot(1, run["aggregation_id"] + 1, root, n, proof)
        if "leaves" in args
        else reg.functions.submitRecursiveAggregation(1, run["aggregation_id"] + 1, in_tree_order, proof)
    )
    alt = transact(w3, submitter, other, "the other variant", gas=3_000_000).gas_used
    rv, lv = (alt, posted) if "leaves" in args else (posted, alt)
    # the peer: verifying one such user proof directly (gnark's exported verifier, 1 public input), here
    fx = REPO_ROOT / "tests" / "fixtures" / "gnark" / "groth16_n1"
    art = compile_files({"fixtures/gnark/groth16_n1/Verifier.sol": fx / "Verifier.sol"})
    g16, _, _ = direct_gnark_groth16(
        w3, submitter, art["fixtures/gnark/groth16_n1/Verifier.sol:Verifier"], fx
    )
    gas_json = RESULTS / "gas.json"
    attested = (
        json.loads(gas_json.read_text())["per_proof"].get("128", {}).get("attested_per_proof_gas")
        if gas_json.exists()
        else None
    )
    per_posted = round(posted / n + max(incl))
    per_root = round(rv / n + max(incl))
    per_leaves = round(lv / n + max(incl))
    return {
        "posted_function": fn.fn_name,
        "posted_gas": posted,
        "root_variant_gas": rv,
        "leaves_variant_gas": lv,
        "inclusion_exec_gas": {"min": min(incl), "max": max(incl), "mean": round(sum(incl) / n)},
        "gas_per_proof_posted": per_posted,
        "gas_per_proof_root_variant": per_root,
        "gas_per_proof_leaves_variant": per_leaves,
        "target_per_proof": TARGET_GAS_64 if n == 64 else None,
        "met_posted": per_posted <= TARGET_GAS_64 if n == 64 else None,
        "met_root_variant": per_root <= TARGET_GAS_64 if n == 64 else None,
        "met_leaves_variant": per_leaves <= TARGET_GAS_64 if n == 64 else None,
        "direct_gnark_groth16_tx_gas": g16,
        "vs_direct_posted": round(g16 / per_posted, 2),
        "attested_per_proof_gas_at_128_from_gas_json": attested,  # bench/gas.py's run, not this one
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--leaves", type=int, default=0, help="proofs in the batch (default: the plan's capacity)"
    )
    ap.add_argument("--setup", action="store_true", help="set up (or load) every level's keys first")
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="0: the App's local workers (one process at a time); N >= 2: the same batch split across N "
        "`aggregator worker` processes on a PostgreSQL queue (started here by aggregator.pg_local)",
    )
    ap.add_argument("--plan", default="4:4:2", help="K:F:D (a smaller cached plan checks the driver quickly)")
    a = ap.parse_args(argv)
    global PLAN
    k, fanin, depth = (int(x) for x in a.plan.split(":"))
    PLAN = TreePlan(k=k, npub=1, fanin=fanin, levels=depth)
    a.leaves = a.leaves or PLAN.capacity
    if not PLAN.k <= a.leaves <= PLAN.capacity:
        ap.error(f"--leaves must be in [{PLAN.k}, {PLAN.capacity}]")
    binary = str(gnark_binary())  # built by `make setup` (make bench-tree64 runs it first)
    os.environ.setdefault("SHEAF_GNARK_BIN", binary)
    res: dict[str, Any] = {
        "plan": PLAN.name,
        "leaves": a.leaves,
        "workers": a.workers if a.workers >= 2 else "local (one tree worker process at a time)",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if a.setup:
        res["setup"] = setup_keys(binary)
    (REPO_ROOT / "build").mkdir(exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="tree64-", dir=REPO_ROOT / "build") as td,
        Anvil(block_time=0.5) as node,
    ):
        tmp = Path(td)
        t0 = time.monotonic()
        proofs = leaves(tmp, binary, a.leaves)
        res["leaf_sources"] = {
            k: sum(1 for p in proofs if p.name.startswith(k))
            for k in ("gnark", "snarkjs/mul1", "snarkjs/sq1")
        }
        res["proofs_made_s"] = round(time.monotonic() - t0, 1)
        out = tmp / "deployments"
        deploy_all(node.rpc_url, OWNER, out_dir=out)
        w3 = connect(node.rpc_url)
        reg = registry(w3, load_manifest(31337, out))
        configure_registry(
            w3,
            Account.from_key(OWNER),
            reg,
            domains=[(1, Account.from_key(SUBMITTER).address)],
            operators=[Account.from_key(k).address for k in OPERATORS],
            threshold=2,
        )
        t0 = time.monotonic()
        ex = export_tree_verifiers(PLAN, out=tmp / "verifiers", log=print)
        d = deploy_tree_verifier(node.rpc_url, OWNER, exported=ex, out_dir=out, log=print)
        res["export_deploy_s"] = round(time.monotonic() - t0, 1)
        res["r1cs_by_level"] = {lv.level: lv.nb_constraints for lv in ex.levels}
        res["verifier_deploy_gas"] = d.deploy_gas
        if a.workers >= 2:
            with LocalPostgres(tmp / "pg") as pg:
                ws = start_workers(tmp, binary, pg.url(), a.workers)
                try:
                    run = asyncio.run(
                        run_batch(node, str(reg.address), out, tmp / "agg.db", proofs, pg.url())
                    )
                    run["queue_runs"] = asyncio.run(queue_runs(pg.url()))
                finally:
                    stop_workers(ws)
        else:
            run = asyncio.run(run_batch(node, str(reg.address), out, tmp / "agg.db", proofs))
        res["gas"] = onchain_gas(node, out, run)
        run.pop("inclusion")
        res["run"] = run
    res["largest_child_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss >> 10
    r1cs = res["r1cs_by_level"]
    jobs = _jobs_per_level(a.leaves)
    res["jobs_per_level"] = jobs
    res["r1cs_per_leaf"] = round(sum(r1cs[lv] * n for lv, n in enumerate(jobs)) / a.leaves)
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"recursion_{PLAN.name}_n{a.leaves}" + (f"_split{a.workers}" if a.workers >= 2 else "")
    (RESULTS / f"{name}.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    _print(res)
    return res


def _jobs_per_level(n: int) -> list[int]:
    """Job counts of the shallowest tree over n proofs: ceil(n / K) leaf jobs, then ceil(/ F) per level."""
    jobs = [-(-n // PLAN.k)]
    for _ in range(PLAN.level_of(n)):
        jobs.append(-(-jobs[-1] // PLAN.fanin))
    return jobs


def _print(res: dict[str, Any]) -> None:
    g, r = res["gas"], res["run"]
    n = res["leaves"]

    def verdict(ok: bool) -> str:  # the targets are for 64 leaves
        return ("met" if ok else "MISSED") if n == 64 else "(target at 64)"

    print(
        f"\nRecursion tree {res['plan']}, {n} real leaves {res['leaf_sources']}, "
        f"workers: {res.get('workers')}"
    )
    print("| figure | Sheaf tree | peer / target | ratio / verdict |\n|---|---:|---:|---:|")
    print(
        f"| gas per proof, as posted ({g['posted_function']} / n + inclusion) | "
        f"{g['gas_per_proof_posted']:,} | "
        f"direct gnark Groth16 verify {g['direct_gnark_groth16_tx_gas']:,} (this run) | "
        f"{g['vs_direct_posted']}x cheaper |"
    )
    print(
        f"| gas per proof, as posted | {g['gas_per_proof_posted']:,} | target {TARGET_GAS_64:,} | "
        f"{verdict(g['gas_per_proof_posted'] <= TARGET_GAS_64)} |"
    )
    for v in ("root", "leaves"):
        per = g[f"gas_per_proof_{v}_variant"]
        print(
            f"| gas per proof, {v} variant (/ n + inclusion) | {per:,} | "
            f"target {TARGET_GAS_64:,} | {verdict(per <= TARGET_GAS_64)} |"
        )
    print(
        f"| R1CS per leaf, all levels | {res['r1cs_per_leaf']:,} | target 2,500,000 | "
        f"{verdict(res['r1cs_per_leaf'] <= 2_500_000)} |"
    )
    print(
        f"| wall time, submission to FINALIZED | {r['finalized_s']:,} s | "
        f"tree proving {r['tree_prove_s']:,} s | |"
    )
    for lv, j in sorted(r["jobs_by_level"].items()):
        peak = int(j.get("peak_rss_mib", 0))
        print(
            f"| level {lv}: {int(j.get('proved', 0))} jobs, {j.get('seconds_total', '?')} s, last job's peak "
            f"{peak:,} MiB | | target 12,288 MiB per job | {verdict(peak <= 12_288)} |"
        )
    print(f"| largest child process RSS | {res['largest_child_rss_mib']:,} MiB | | |")


if __name__ == "__main__":
    main()
