"""Recursive aggregation benchmark: outer Groth16 proof over N inner Groth16 proofs (gnark/aggregation).

For each batch size (env SHEAF_RECURSION_BATCHES, default "1"; "1,2" adds N=2): start one long-lived
`sheaf-gnark aggregate serve --batch N --npub 1` (compile + INSECURE dev setup, cached in
$SHEAF_CACHE/recursion/<circuit hash>), prove a full batch and a one-leaf partial batch from the
committed fixture (real gnark inner proofs of two different circuits), and record R1CS count,
compile/setup/prove times and the peak RSS of the worker. Then deploy the exported outer verifier +
contracts/src/Groth16AggregationAdapter.sol on anvil and measure verifyAggregation gas from the
receipt (a wrong root must revert). Writes bench/results/recursion.json.

A first run with an empty cache runs the dev setup: minutes and several GB per batch size.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any

from web3 import Web3

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "gnark" / "aggregation" / "testdata" / "batch_p1.json"
RESULTS = REPO / "bench" / "results"


def _binary() -> Path:
    env = os.environ.get("SHEAF_GNARK_BIN")
    if env and Path(env).exists():
        return Path(env)
    default = REPO / "build" / "bin" / "sheaf-gnark"
    if default.exists():
        return default
    out = Path(tempfile.mkdtemp(prefix="sheaf-gnark-")) / "sheaf-gnark"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/sheaf-gnark"], cwd=REPO / "gnark", check=True)
    return out


def _read_line(stream: IO[str], what: str) -> dict[str, Any]:
    line = stream.readline()
    if not line:
        raise RuntimeError(f"aggregate serve closed its output before {what}")
    msg: dict[str, Any] = json.loads(line)
    return msg


def _request(proc: subprocess.Popen[str], req: dict[str, Any]) -> dict[str, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(req) + "\n")
    proc.stdin.flush()
    resp = _read_line(proc.stdout, f"the answer to {req['op']}")
    if resp.get("id") != req["id"]:
        raise RuntimeError(f"out-of-order response {resp.get('id')} for {req['id']}")
    if not resp["ok"]:
        raise RuntimeError(f"aggregate serve {req['op']} failed: {resp['error']}")
    result: dict[str, Any] = resp["result"]
    return result


def run_batch(binary: Path, batch: int, leaves: list[dict[str, Any]]) -> dict[str, Any]:
    start = time.monotonic()
    proc = subprocess.Popen(
        [str(binary), "aggregate", "serve", "--batch", str(batch), "--npub", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        ready = _read_line(proc.stdout, "ready")
        if not ready.get("ok") or ready.get("id") != "ready":
            raise RuntimeError(f"unexpected first line {ready}")
        info = ready["result"]
        ready_s = time.monotonic() - start
        full = leaves[:batch] if len(leaves) >= batch else (leaves * batch)[:batch]
        proofs = {"full": _request(proc, {"id": 1, "op": "prove", "leaves": full})}
        if batch > 1:
            proofs["partial_1"] = _request(proc, {"id": 2, "op": "prove", "leaves": leaves[:1]})
        # the worker also verifies: the full proof must not verify for the reordered list
        p = proofs["full"]
        ok = _request(proc, {"id": 3, "op": "verify", "leaves": p["leaves"], "proof": p["proof"]})
        if ok.get("valid") is not True:
            raise RuntimeError("worker rejected its own proof")
        proc.stdin.close()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"aggregate serve exited {proc.returncode}")
    finally:
        if proc.poll() is None and proc.returncode is None:
            proc.kill()
            proc.wait()
    return {
        "batch": batch,
        "npub": 1,
        "r1cs": info["nb_constraints"],
        "r1cs_per_slot": info["nb_constraints"] // batch,
        "circuit_hash": info["circuit_hash"],
        "keys_dir": info["dir"],
        "keys_created": info["keys_created"],
        "compile_s": round(info["compile_ms"] / 1000, 1),
        "setup_or_load_s": round(info["setup_ms"] / 1000, 1),
        "ready_s": round(ready_s, 1),
        "prove_s": {k: round(v["prove_ms"] / 1000, 1) for k, v in proofs.items()},
        "peak_rss_mib": round(usage.ru_maxrss / 1024),  # ru_maxrss is KiB on Linux
        "proof_bytes": (len(p["proof"]) - 2) // 2,
        "sample": {
            k: {
                "root": v["root"],
                "count": v["count"],
                "public_inputs": v["public_inputs"],
                "proof": v["proof"],
            }
            for k, v in proofs.items()
        },
    }


def gas(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """verifyAggregation gas through the exported outer verifier + adapter, from anvil receipts."""
    from deploy.anvil import ANVIL_DEV_KEYS, Anvil
    from deploy.chain import _send, connect, deploy_contract, load_account
    from deploy.compile import compile_contracts, compile_files

    arts = compile_contracts()
    out: dict[str, Any] = {}
    with Anvil() as node:
        w3 = connect(node.rpc_url)
        acct = load_account(ANVIL_DEV_KEYS[0])
        selector = bytes(w3.keccak(text="verifyAggregation(bytes32,uint256,bytes)")[:4])
        for row in rows:
            sol = Path(row["keys_dir"]) / "Verifier.sol"
            varts = compile_files({f"recursion/b{row['batch']}/Verifier.sol": sol})
            v = deploy_contract(w3, acct, varts["Verifier"])
            v_addr = Web3.to_checksum_address(str(v.contract_address))
            ad = deploy_contract(w3, acct, arts["Groth16AggregationAdapter"], [v_addr])
            adapter = w3.eth.contract(
                address=Web3.to_checksum_address(str(ad.contract_address)),
                abi=arts["Groth16AggregationAdapter"].abi,
            )
            res: dict[str, Any] = {"verifier_deploy_gas": v.gas_used}
            for name, s in row["sample"].items():
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
                res[name] = {"tx_gas": sent.gas_used, "count": s["count"]}
            out[str(row["batch"])] = res
    return out


def main() -> dict[str, Any]:
    batches = [int(x) for x in os.environ.get("SHEAF_RECURSION_BATCHES", "1").split(",") if x.strip()]
    leaves = json.loads(FIXTURE.read_text())["leaves"]
    binary = _binary()
    rows = [run_batch(binary, n, leaves) for n in batches]
    g = gas(rows)
    print(
        f"{'batch':>5} {'r1cs':>10} {'r1cs/slot':>10} {'compile s':>9} {'setup s':>8} {'prove s':>8} "
        f"{'RSS MiB':>8} {'verify gas':>10}"
    )
    for r in rows:
        print(
            f"{r['batch']:>5} {r['r1cs']:>10} {r['r1cs_per_slot']:>10} {r['compile_s']:>9} "
            f"{r['setup_or_load_s']:>8}{'*' if r['keys_created'] else ' '} {r['prove_s']['full']:>7} "
            f"{r['peak_rss_mib']:>8} {g[str(r['batch'])]['full']['tx_gas']:>10}"
        )
    print("  * keys generated in this run (INSECURE dev setup); otherwise loaded from the cache")
    for r in rows:
        r.pop("sample", None)
    result = {"batches": rows, "gas": g}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "recursion.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
