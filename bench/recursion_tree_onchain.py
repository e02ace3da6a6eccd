"""The recursion tree on chain and per job: gas from anvil RECEIPTS and per-job memory.

    python -m bench.recursion_tree_onchain            # the committed fixture's real top proofs (~15 s)
    python -m bench.recursion_tree_onchain --prove    # export + prove now through the workers (keys cached)

Plan K=2, F=2, one merge level (tests/fixtures/tree/tree_k2_p1_f2_d1; its proofs.json also carries each
job's memory, measured when the fixture was made). On a fresh anvil: deploy_all, the per-level
verifiers + TreeAggregationAdapter (deploy/tree.py), then per real top proof (level 0: 2 proofs,
level 1: 3 proofs):
  * the gnark verifier alone (a tx to verifyProof), the adapter (verifyAggregation) and the registry
    submission (submitRecursiveAggregationRoot), all receipts;
  * the inclusion check (verifyProofAggregation) of every leaf as execution gas (receipt - 21000 -
    calldata: what an app pays inside its own tx), per Merkle path length;
  * per proof at the measured counts = submission / n + inclusion; at 64 and 128 leaves COMPUTED from
    the measured figures: the top level of the chosen plan (K=4, F=4: level 2 at 64, 3 at 128) costs
    the measured level-1 submission plus the measured per-level adapter increment, the inclusion check
    the measured 1-level cost plus the measured per-level increment (6 / 7 path levels).
Memory: each job's peak RSS in its own `tree serve --level L` worker (high-water mark reset before the
job, keys resident) and each worker process's peak (wait4, includes compiling the levels below);
K=4 / F=4 extrapolated from the measured MiB per million R1CS (leaf K=4 6,061,884, merge F=4 4,930,923
R1CS, bench/results/recursion_tree_compile.json). Writes bench/results/recursion_tree_onchain.json.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

from aggregator.leaves import leaf_statement_hash
from aggregator.merkle import merkle_path, merkle_root
from aggregator.tree_prover import SyncTreeProver
from deploy.anvil import ANVIL_DEV_KEYS, Anvil
from deploy.api import configure_registry, deploy_all, load_manifest, registry
from deploy.chain import call_tx_gas, connect, exec_gas, transact
from deploy.compile import compile_contracts
from deploy.tree import (
    ExportedTree,
    TreeLevel,
    deploy_tree_verifier,
    export_tree_verifiers,
)
from sheaf.paths import REPO_ROOT
from sheaf.recursion_tree import TreePlan

PLAN = TreePlan(k=2, npub=1, fanin=2, levels=1)
CHOSEN = TreePlan(k=4, npub=1, fanin=4, levels=3)  # the design's plan (docs/recursion.md), 256 leaves
FIX = REPO_ROOT / "tests" / "fixtures" / "tree" / PLAN.name
RESULTS = REPO_ROOT / "bench" / "results"
R1CS_K4_LEAF, R1CS_F4_MERGE = 6_061_884, 4_930_923
TARGETS = {64: 15_000, 128: 12_000}
RSS_TARGET_MIB = 12 * 1024


def _fixture() -> tuple[ExportedTree, dict[str, Any]]:
    doc: dict[str, Any] = json.loads((FIX / "proofs.json").read_text())
    rel = FIX.relative_to(REPO_ROOT)
    ex = ExportedTree(
        plan=PLAN,
        levels=[
            TreeLevel(
                int(x["level"]), str(x["circuit_hash"]), int(x["nb_constraints"]), str(rel / x["verifier"])
            )
            for x in doc["levels"]
        ],
    )
    return ex, doc


def _prove_now(doc: dict[str, Any], gen: Path) -> tuple[ExportedTree, dict[str, Any]]:
    ex = export_tree_verifiers(PLAN, out=gen, log=print)
    tops, jobs = [], []
    with SyncTreeProver(PLAN, log=print) as prover:
        for leaves in (doc["leaves"][:2], doc["leaves"]):
            run = prover.prove(leaves)
            jobs += run.jobs
            tops.append(
                {
                    "level": run.level,
                    "count": run.count,
                    "root": run.top["node"]["root"],
                    "proof": run.top["proof"],
                    "public_inputs": run.top["public_inputs"],
                    "jobs": run.jobs,
                }
            )
    new = {**doc, "tops": tops, "workers": prover.workers, "generated": "now (--prove)"}
    new["levels"] = [
        {"level": lv.level, "circuit_hash": lv.circuit_hash, "nb_constraints": lv.nb_constraints}
        for lv in ex.levels
    ]
    return ex, new


def memory(doc: dict[str, Any]) -> dict[str, Any]:
    r1cs = {int(x["level"]): int(x["nb_constraints"]) for x in doc["levels"]}
    jobs = [j for t in doc["tops"] for j in t["jobs"]]
    out: dict[str, Any] = {"jobs": jobs, "workers": doc.get("workers", [])}
    for level, name, target_r1cs in ((0, "leaf_k4", R1CS_K4_LEAF), (1, "merge_f4", R1CS_F4_MERGE)):
        peaks = [int(j["peak_rss_mib"]) for j in jobs if int(j["level"]) == level and j.get("peak_rss_mib")]
        if not peaks:
            continue
        per_m = max(peaks) / (r1cs[level] / 1e6)
        est = round(per_m * target_r1cs / 1e6)
        out[name] = {
            "measured_job_peak_mib": max(peaks),
            "measured_r1cs": r1cs[level],
            "mib_per_million_r1cs": round(per_m),
            "estimated_job_peak_mib": est,
            "under_12gb": est <= RSS_TARGET_MIB,
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    ex, doc = _fixture()
    gen = Path(tempfile.mkdtemp(prefix="tree-", dir=REPO_ROOT / "build"))
    try:
        if "--prove" in argv:
            ex, doc = _prove_now(doc, gen / PLAN.name)
        res = onchain(ex, doc)
    finally:
        shutil.rmtree(gen, ignore_errors=True)
    res["memory"] = memory(doc)
    res["source"] = "fixture " + str(FIX.relative_to(REPO_ROOT)) if "--prove" not in argv else "proved now"
    res["generated"] = doc.get("generated")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "recursion_tree_onchain.json").write_text(json.dumps(res, indent=1) + "\n")
    for n, row in res["per_proof"].items():
        print(f"{n:>4} leaves: {row}")
    print(json.dumps(res["memory"], indent=1)[:2000])
    return res


def onchain(ex: ExportedTree, doc: dict[str, Any]) -> dict[str, Any]:
    acct = Account.from_key(ANVIL_DEV_KEYS[0])
    hashes = [leaf_statement_hash(x) for x in doc["leaves"]]
    out: dict[str, Any] = {"plan": PLAN.name, "tops": []}
    with Anvil() as node, tempfile.TemporaryDirectory() as tmp:
        outdir = Path(tmp)
        deploy_all(node.rpc_url, ANVIL_DEV_KEYS[0], out_dir=outdir)
        w3 = connect(node.rpc_url)
        reg = registry(w3, load_manifest(31337, outdir))
        configure_registry(w3, acct, reg, domains=[(1, acct.address)])
        d = deploy_tree_verifier(node.rpc_url, ANVIL_DEV_KEYS[0], exported=ex, out_dir=outdir)
        out["deploy_gas"] = d.deploy_gas
        arts = compile_contracts()
        adapter = w3.eth.contract(
            address=Web3.to_checksum_address(d.adapter), abi=arts["TreeAggregationAdapter"].abi
        )
        vabi = [
            {
                "type": "function",
                "name": "verifyProof",
                "stateMutability": "view",
                "inputs": [{"name": "proof", "type": "bytes"}, {"name": "input", "type": "uint256[3]"}],
                "outputs": [],
            }
        ]
        incl: dict[int, int] = {}  # path length -> execution gas
        for agg_id, t in enumerate(sorted(doc["tops"], key=lambda t: int(t["level"])), start=1):
            level, count = int(t["level"]), int(t["count"])
            proof, root = bytes.fromhex(t["proof"][2:]), bytes.fromhex(t["root"][2:])
            if root != merkle_root(hashes[:count]):
                raise RuntimeError(f"level-{level} top: root is not the flat batch's")
            pubs = [int(x, 16) for x in t["public_inputs"]]
            v = w3.eth.contract(address=Web3.to_checksum_address(d.verifiers[level]), abi=vabi)
            vdata = bytes.fromhex(v.encode_abi("verifyProof", [proof, pubs])[2:])
            v_gas = call_tx_gas(w3, acct, v.address, vdata, f"level-{level} verifier")
            adata = bytes.fromhex(adapter.encode_abi("verifyAggregation", [root, count, proof])[2:])
            afn = adapter.functions.verifyAggregation(root, count, proof)
            if bytes(afn.call()) != bytes.fromhex(adata[:4].hex()):  # the magic value (a bytes4, not a bool)
                raise RuntimeError(f"level-{level} top: the adapter did not return its selector")
            a_gas = transact(w3, acct, afn, "adapter", gas=2_000_000).gas_used
            sent = transact(
                w3,
                acct,
                reg.functions.submitRecursiveAggregationRoot(1, agg_id, root, count, proof),
                "submit",
                gas=2_000_000,
            )
            leaves_gas = []
            for i, h in enumerate(hashes[:count]):
                mp = merkle_path(hashes[:count], i)
                fn = reg.functions.verifyProofAggregation(1, agg_id, h, list(mp.path), count, i)
                if not fn.call():
                    raise RuntimeError(f"leaf {i} of the level-{level} top not included")
                data = bytes.fromhex(fn._encode_transaction_data()[2:])
                g = exec_gas(call_tx_gas(w3, acct, reg.address, data, "inclusion"), data)
                incl[len(mp.path)] = max(incl.get(len(mp.path), 0), g)
                leaves_gas.append({"index": i, "path_len": len(mp.path), "inclusion_exec_gas": g})
            row = {
                "level": level,
                "count": count,
                "verifier_tx_gas": v_gas,
                "verifier_exec_gas": exec_gas(v_gas, vdata),
                "adapter_tx_gas": a_gas,
                "adapter_exec_gas": exec_gas(a_gas, adata),
                "submission_root_variant_gas": sent.gas_used,
                "inclusion": leaves_gas,
                "gas_per_proof": round(
                    sent.gas_used / count + max(x["inclusion_exec_gas"] for x in leaves_gas)
                ),
            }
            out["tops"].append(row)
            print(f"level {level} top, {count} proofs: {row}")
    subs = {r["level"]: r["submission_root_variant_gas"] for r in out["tops"]}
    per_level_adapter = max(0, subs[1] - subs[0])  # the adapter's level loop (+ calldata noise)
    per_level_incl = incl[2] - incl[1]
    out["per_level"] = {
        "submission_increment_gas": per_level_adapter,
        "inclusion_exec_1_level": incl[1],
        "inclusion_increment_gas": per_level_incl,
    }
    per_proof: dict[str, Any] = {}
    for row in out["tops"]:
        per_proof[str(row["count"])] = {
            "measured": True,
            "level": row["level"],
            "gas_per_proof": row["gas_per_proof"],
        }
    for n, target in TARGETS.items():
        top = CHOSEN.level_of(n)
        sub = subs[1] + (top - 1) * per_level_adapter
        depth = math.ceil(math.log2(n))
        inc = incl[1] + (depth - 1) * per_level_incl
        g = round(sub / n + inc)
        per_proof[str(n)] = {
            "measured": False,
            "plan": CHOSEN.name,
            "top_level": top,
            "submission_gas": sub,
            "inclusion_exec_gas": inc,
            "gas_per_proof": g,
            "target": target,
            "met": g <= target,
        }
    out["per_proof"] = per_proof
    return out


if __name__ == "__main__":
    main()
