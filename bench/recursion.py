"""Recursive aggregation benchmark: outer Groth16 proof over N inner proofs (gnark/aggregation).

For each batch size (env SHEAF_RECURSION_BATCHES, default "1,2"; add 4 where memory allows): start
one long-lived `sheaf-gnark aggregate serve --batch N --npub 1` (compile + INSECURE dev setup, cached in
$SHEAF_CACHE/recursion/<circuit hash>), prove a full batch and a one-leaf partial batch from the
committed fixture (real gnark inner proofs of two different circuits), and record R1CS count,
compile/setup/prove times and the peak RSS of the worker. Then deploy the exported outer verifier +
contracts/src/Groth16AggregationAdapter.sol on anvil and measure verifyAggregation gas from the
receipt (a wrong root must revert). Writes bench/results/recursion.json.

PLONK leaves: `aggregate compile` of the one-PLONK-slot circuit gives r1cs_per_plonk_leaf. The mixed
circuit (SHEAF_RECURSION_MIXED, default "3:1": 3 slots, the last PLONK) is proved over a gnark
Groth16, a second Groth16 and a gnark PLONK leaf (tests/fixtures/gnark/plonk_n1_recursion) when
its keys are in the cache, or always with SHEAF_RECURSION_MIXED_SETUP=1 (a ~40 min, ~19 GB dev
setup on 2 cores); otherwise only its R1CS count is reported.

A first run with an empty cache runs the dev setup: minutes and several GB per batch size.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from web3 import Web3

from aggregator.merkle import merkle_path
from bench.gas import _registry, direct_gnark_groth16
from bench.table import show
from deploy.anvil import ANVIL_DEV_KEYS, Anvil
from deploy.api import configure_registry
from deploy.chain import _send, call_tx_gas, connect, deploy_contract, exec_gas, load_account, transact
from deploy.compile import compile_contracts, compile_files
from sheaf.gnark_process import GnarkProcess
from sheaf.paths import REPO_ROOT as REPO
from sheaf.paths import BinaryNotFound, gnark_binary

FIXTURE = REPO / "gnark" / "aggregation" / "testdata" / "batch_p1.json"
RESULTS = REPO / "bench" / "results"


def _binary() -> Path:
    """sheaf.paths' sheaf-gnark ($SHEAF_GNARK_BIN, build/bin, PATH), else one built for this run."""
    try:
        return gnark_binary()
    except BinaryNotFound:
        pass
    out = Path(tempfile.mkdtemp(prefix="sheaf-gnark-")) / "sheaf-gnark"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/sheaf-gnark"], cwd=REPO / "gnark", check=True)
    return out


def compile_only(binary: Path, batch: int, plonk: int) -> dict[str, Any]:
    """`aggregate compile`: R1CS count, circuit hash and whether its keys are cached (no setup)."""
    r = subprocess.run(
        [str(binary), "aggregate", "compile", "--batch", str(batch), "--npub", "1", "--plonk", str(plonk)],
        capture_output=True,
        text=True,
        check=True,
    )
    info: dict[str, Any] = json.loads(r.stdout)
    return info


def plonk_leaf() -> dict[str, Any]:
    """The committed gnark PLONK proof made with the recursion transcript, as a worker leaf."""
    d = REPO / "tests" / "fixtures" / "gnark" / "plonk_n1_recursion"
    return {
        "scheme": "plonk",
        "vk": "0x" + (d / "vk.bin").read_bytes().hex(),
        "proof": "0x" + (d / "proof.bin").read_bytes().hex(),
        "public_inputs": json.loads((d / "public.json").read_text()),
    }


def run_batch(binary: Path, batch: int, leaves: list[dict[str, Any]], plonk: int = 0) -> dict[str, Any]:
    return asyncio.run(_run_batch(binary, batch, leaves, plonk))


async def _run_batch(binary: Path, batch: int, leaves: list[dict[str, Any]], plonk: int) -> dict[str, Any]:
    """One `aggregate serve` through the one process client (sheaf.gnark_process): ready (compile +
    key load or dev setup), a full proof, a one-leaf partial proof, a verify, its peak RSS."""
    start = time.monotonic()
    argv = [str(binary), "aggregate", "serve", "--batch", str(batch), "--npub", "1", "--plonk", str(plonk)]
    proc = await GnarkProcess.start(argv, ready_timeout=None, name="aggregate serve")
    try:
        info = proc.ready
        ready_s = time.monotonic() - start
        if plonk:
            full = leaves[:batch]  # Groth16 leaves first, then PLONK: the caller's order
        else:
            full = leaves[:batch] if len(leaves) >= batch else (leaves * batch)[:batch]
        proofs = {"full": await proc.request("prove", leaves=full)}
        if batch > 1 and not plonk:
            proofs["partial_1"] = await proc.request("prove", leaves=leaves[:1])
        p = proofs["full"]
        ok = await proc.request("verify", leaves=p["leaves"], proof=p["proof"])
        if ok.get("valid") is not True:
            raise RuntimeError("worker rejected its own proof")
        peak_rss = proc.peak_rss_bytes()  # VmHWM, read while the process still exists
        await proc.close(grace=30)
        if proc.returncode != 0:
            raise RuntimeError(f"aggregate serve exited {proc.returncode}")
    finally:
        await proc.kill()
    return {
        "batch": batch,
        "npub": 1,
        "plonk": plonk,
        "r1cs": info["nb_constraints"],
        "r1cs_per_slot": info["nb_constraints"] // batch,
        "circuit_hash": info["circuit_hash"],
        "keys_dir": info["dir"],
        "keys_created": info["keys_created"],
        "compile_s": round(info["compile_ms"] / 1000, 1),
        "setup_or_load_s": round(info["setup_ms"] / 1000, 1),
        "ready_s": round(ready_s, 1),
        "prove_s": {k: round(v["prove_ms"] / 1000, 1) for k, v in proofs.items()},
        "peak_rss_mib": round(peak_rss / (1 << 20)),
        "proof_bytes": (len(p["proof"]) - 2) // 2,
        "sample": {
            k: {
                "leaves": v["leaves"],
                "root": v["root"],
                "count": v["count"],
                "public_inputs": v["public_inputs"],
                "proof": v["proof"],
            }
            for k, v in proofs.items()
        },
    }


def gas(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """From anvil receipts, per batch size: the adapter's verifyAggregation, a real registry submission
    (submitRecursiveAggregationRoot through the exported outer verifier + adapter) and the inclusion
    check of its last leaf; plus direct verification of one inner proof (gnark Groth16, 1 public input)
    in the same run, the peer this route replaces."""
    arts = compile_contracts()
    out: dict[str, Any] = {}
    with Anvil() as node:
        w3 = connect(node.rpc_url)
        acct = load_account(ANVIL_DEV_KEYS[0])
        selector = bytes(w3.keccak(text="verifyAggregation(bytes32,uint256,bytes)")[:4])
        reg, _, _ = _registry(w3, acct, arts)
        # direct: the inner proofs' own kind of verifier, one transaction per proof
        g1 = REPO / "tests" / "fixtures" / "gnark" / "groth16_n1"
        da = compile_files({"fixtures/gnark/groth16_n1/Verifier.sol": g1 / "Verifier.sol"})["Verifier"]
        out["direct_gnark_groth16_1pub_tx_gas"] = direct_gnark_groth16(w3, acct, da, g1)[0]
        for domain, row in enumerate(rows, start=10):
            sol = Path(row["keys_dir"]) / "Verifier.sol"
            varts = compile_files({f"recursion/b{row['batch']}k{row.get('plonk', 0)}/Verifier.sol": sol})
            v = deploy_contract(w3, acct, varts["Verifier"])
            v_addr = Web3.to_checksum_address(str(v.contract_address))
            ad = deploy_contract(w3, acct, arts["Groth16AggregationAdapter"], [v_addr])
            adapter = w3.eth.contract(
                address=Web3.to_checksum_address(str(ad.contract_address)),
                abi=arts["Groth16AggregationAdapter"].abi,
            )
            configure_registry(
                w3, acct, reg, domains=[(domain, acct.address)], verifier=str(ad.contract_address)
            )
            res: dict[str, Any] = {"verifier_deploy_gas": v.gas_used}
            for agg_id, (name, s) in enumerate(row["sample"].items(), start=1):
                root = bytes.fromhex(s["root"][2:])
                proof = bytes.fromhex(s["proof"][2:])
                fn = adapter.functions.verifyAggregation(root, s["count"], proof)
                if bytes(fn.call()) != selector:
                    raise RuntimeError("adapter did not return the verifyAggregation selector")
                bad = bytes([root[0] ^ 1]) + root[1:]
                try:
                    adapter.functions.verifyAggregation(bad, s["count"], proof).call()
                except Exception:  # a revert is the expected outcome
                    pass
                else:
                    raise RuntimeError("adapter accepted a wrong root")
                tx = dict(fn.build_transaction({"from": acct.address, "gas": 2_000_000}))
                sent = _send(w3, acct, tx, f"verifyAggregation b{row['batch']} {name}")
                sub = transact(
                    w3,
                    acct,
                    reg.functions.submitRecursiveAggregationRoot(domain, agg_id, root, s["count"], proof),
                    f"submit b{row['batch']} k{row.get('plonk', 0)} {name}",
                    gas=3_000_000,
                )
                leaves = [bytes.fromhex(x[2:]) for x in s["leaves"]][: s["count"]]
                i = len(leaves) - 1
                incl = reg.functions.verifyProofAggregationKind(
                    domain, agg_id, leaves[i], list(merkle_path(leaves, i).path), len(leaves), i
                )
                if tuple(incl.call()) != (True, 1):
                    raise RuntimeError("leaf of the recursive aggregation is not included as RECURSIVE")
                idata = bytes.fromhex(incl._encode_transaction_data()[2:])
                incl_exec = exec_gas(call_tx_gas(w3, acct, reg.address, idata, "inclusion"), idata)
                res[name] = {
                    "adapter_verify_tx_gas": sent.gas_used,
                    "registry_submission_gas": sub.gas_used,
                    "inclusion_exec_gas": incl_exec,
                    "count": s["count"],
                }
            out[_key(row)] = res
    return out


def _key(row: dict[str, Any]) -> str:
    return str(row["batch"]) + (f"_k{row['plonk']}" if row.get("plonk") else "")


# Extrapolation horizon named in the issue: the outer proof's gas does not grow with N (3 public inputs),
# only the inclusion path does: one more keccak node per Merkle level (bench/gas.py's attested inclusion
# checks: 6,928 / 7,744 / 8,560 execution gas at 8 / 32 / 128 leaves, i.e. 408 per level).
EXTRAPOLATE_TO = 64
INCLUSION_GAS_PER_LEVEL = 408


def summary(
    rows: list[dict[str, Any]], g: dict[str, Any], plonk_r1cs: int | None = None
) -> list[dict[str, Any]]:
    """The issue's per-batch-size figures, plus the gas extrapolation to EXTRAPOLATE_TO leaves.
    plonk_r1cs: R1CS of the one-PLONK-slot circuit (the PLONK analogue of N=1)."""
    direct = g["direct_gnark_groth16_1pub_tx_gas"]
    out: list[dict[str, Any]] = []
    g16_rows = [r for r in rows if not r.get("plonk")]
    for r in rows:
        n = r["batch"]
        full = g[_key(r)]["full"]
        per_proof = full["registry_submission_gas"] / n + full["inclusion_exec_gas"]
        k = r.get("plonk", 0)
        g16_slot = g16_rows[0]["r1cs"] / g16_rows[0]["batch"] if g16_rows else None
        out.append(
            {
                "batch": n,
                "plonk_slots": k,
                "r1cs": r["r1cs"],
                "r1cs_per_groth16_leaf": round(r["r1cs"] / n) if not k else round(g16_slot or 0),
                # PLONK: the one-slot circuit; in a mixed row, what the slots add beyond the Groth16 ones
                "r1cs_per_plonk_leaf": (
                    plonk_r1cs if not k or g16_slot is None else round((r["r1cs"] - (n - k) * g16_slot) / k)
                ),
                "prove_s_per_leaf": round(r["prove_s"]["full"] / n, 1),
                "peak_rss_gb": round(r["peak_rss_mib"] / 1024, 2),
                "gas_per_aggregation": full["registry_submission_gas"],
                "gas_per_proof": round(per_proof),
                "direct_gas_per_proof": direct,
                "direct_over_aggregated": round(direct / per_proof, 2),
            }
        )
    g16_out = [t for t in out if not t["plonk_slots"]]
    if g16_out:
        last = g16_out[-1]
        levels = max(0, (EXTRAPOLATE_TO - 1).bit_length() - (last["batch"] - 1).bit_length())
        incl = g[str(last["batch"])]["full"]["inclusion_exec_gas"] + levels * INCLUSION_GAS_PER_LEVEL
        est = last["gas_per_aggregation"] / EXTRAPOLATE_TO + incl
        out.append(
            {
                "batch": EXTRAPOLATE_TO,
                "extrapolated_from": last["batch"],
                "gas_per_aggregation": last["gas_per_aggregation"],
                "gas_per_proof": round(est),
                "direct_gas_per_proof": direct,
                "direct_over_aggregated": round(direct / est, 2),
            }
        )
    return out


def _print_table(rows: list[dict[str, Any]], table: list[dict[str, Any]]) -> None:
    out = []
    for r, t in zip(rows, table, strict=False):
        out.append(
            [
                str(r["batch"]) + (f"+{r['plonk']}P" if r.get("plonk") else ""),
                r["r1cs"],
                t["r1cs_per_groth16_leaf"],
                r["compile_s"],
                f"{r['setup_or_load_s']}{'*' if r['keys_created'] else ''}",
                r["prove_s"]["full"],
                t["prove_s_per_leaf"],
                t["peak_rss_gb"],
                t["gas_per_aggregation"],
                t["gas_per_proof"],
                t["direct_gas_per_proof"],
                t["direct_over_aggregated"],
            ]
        )
    cols = ["batch", "r1cs", "r1cs/leaf", "compile s", "setup s", "prove s", "s/leaf", "RSS GB", "agg gas"]
    show("recursive aggregation, one outer proof per batch", [*cols, "gas/proof", "direct", "ratio"], out)


def main() -> dict[str, Any]:
    batches = [int(x) for x in os.environ.get("SHEAF_RECURSION_BATCHES", "1,2").split(",") if x.strip()]
    leaves = json.loads(FIXTURE.read_text())["leaves"]
    binary = _binary()
    rows = [run_batch(binary, n, leaves) for n in batches]
    plonk1 = compile_only(binary, 1, 1)
    mixed_spec = os.environ.get("SHEAF_RECURSION_MIXED", "3:1")
    mixed: dict[str, Any] = {"plonk_only_n1": {k: plonk1[k] for k in ("nb_constraints", "compile_ms")}}
    if mixed_spec:
        mb, mk = (int(x) for x in mixed_spec.split(":"))
        info = compile_only(binary, mb, mk)
        mixed["shape"] = {
            "batch": mb,
            "plonk": mk,
            "r1cs": info["nb_constraints"],
            "keys_cached": info["keys_cached"],
        }
        if info["keys_cached"] or os.environ.get("SHEAF_RECURSION_MIXED_SETUP"):
            mleaves = (leaves * mb)[: mb - mk] + [plonk_leaf()] * mk
            rows.append(run_batch(binary, mb, mleaves, plonk=mk))
    g = gas(rows)
    table = summary(rows, g, plonk1["nb_constraints"])
    _print_table(rows, table)
    e = table[-1]
    if "extrapolated_from" in e:
        print(
            f"{e['batch']:>7} (extrapolated from N={e['extrapolated_from']}, Groth16: same outer proof gas, "
            f"{(EXTRAPOLATE_TO - 1).bit_length()}-level inclusion path) gas/proof {e['gas_per_proof']}, "
            f"direct/aggregated {e['direct_over_aggregated']}"
        )
    print("  * keys generated in this run (INSECURE dev setup); otherwise loaded from the cache")
    print(
        f"  r1cs_per_plonk_leaf: {plonk1['nb_constraints']} (one-PLONK-slot circuit, compile only)"
        + (
            f"; mixed {mixed['shape']['batch']}-slot circuit with {mixed['shape']['plonk']} PLONK: "
            f"{mixed['shape']['r1cs']} R1CS"
            + ("" if any(r.get("plonk") for r in rows) else " (keys not cached: not proved in this run)")
            if "shape" in mixed
            else ""
        )
    )
    for r in rows:
        r.pop("sample", None)
    result = {"summary": table, "batches": rows, "gas": g, "plonk": mixed}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "recursion.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
