"""Gas from anvil RECEIPTS (never estimates): direct verification per scheme vs the registry.

Measured on a fresh anvil with the project's own compile (solc-js 0.8.30, optimizer 200, cancun):
  * direct verification: gnark Groth16 (3 pubs), gnark PLONK (3 pubs), ezkl Halo2 (gemm_relu), each a
    transaction to the exported verifier with the fixture proof (checked to verify first);
  * registry submissions: ATTESTED with 1, 8, 32, 128 leaves (2-of-3 operator signatures) and the
    RECURSIVE root variant through the real gnark Groth16 verifier + adapter;
  * an inclusion check: a transaction calling verifyProofAggregation (whole tx, and execution only =
    receipt gas - 21000 - calldata gas, which is what an app pays inside its own transaction, plus
    ~2600 for the cold registry account);
  * per-proof cost of the aggregated route = submission / leaves + one inclusion check, vs direct;
  * RECURSIVE with the real gnark/aggregation outer verifier, per batch size N (env
    SHEAF_GAS_RECURSIVE_BATCHES, default "1"; "" skips): verifier exported and deployed by
    deploy/recursive.py, a full batch of N real inner Groth16 proofs (snarkjs + gnark) proved by
    `sheaf-gnark aggregate prove` (the outer proof is cached in build/recursion/ per circuit hash and
    batch; a cold dev setup takes many minutes), submitted with both registry routes; gas_per_proof =
    submission / N + the inclusion check's execution gas.
Writes bench/results/gas.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from aggregator.attestation import Aggregation, sign_aggregation
from aggregator.leaves import snarkjs_leaf
from aggregator.merkle import merkle_path, merkle_root
from bench.table import show
from deploy.anvil import ANVIL_DEV_KEYS, Anvil
from deploy.api import configure_registry
from deploy.chain import call_tx_gas, deploy_contract, exec_gas, transact
from deploy.compile import Artifact, compile_contracts, compile_files
from deploy.recursive import (
    export_aggregation_verifier,
    load_outer,
    outer_cache_path,
    prove_outer,
    save_outer,
)
from provers.ezkl_backend import evm_calldata, evm_verifier
from sheaf.hashing import keccak256
from sheaf.paths import REPO_ROOT

FIX = REPO_ROOT / "tests" / "fixtures"
RESULTS = REPO_ROOT / "bench" / "results"
LEAF_COUNTS = (1, 8, 32, 128)


def _ezkl_verifier(out: Path) -> tuple[Path, bytes] | None:
    """Write ezkl's EVM verifier for the gemm_relu fixture (create_evm_verifier fails after writing
    the .sol when it tries to download solc: expected) and the proof's calldata."""
    d = FIX / "ezkl" / "gemm_relu"
    srs = FIX / "ezkl" / "verifier-k1.srs"
    if not (d / "vk.key").exists() or not (d / "proof0.json").exists() or not srs.exists():
        return None
    return evm_verifier(d / "vk.key", d / "settings.json", srs, out), evm_calldata(d / "proof0.json", out)


def direct_gnark_groth16(
    w3: Web3, acct: LocalAccount, verifier: Artifact, fixture: Path
) -> tuple[int, bytes, int]:
    """Deploy a gnark-exported Groth16 verifier and send one verifyProof tx with the fixture's
    calldata.json: (tx gas, calldata, deploy gas), all from receipts."""
    v = deploy_contract(w3, acct, verifier)
    c = w3.eth.contract(address=Web3.to_checksum_address(str(v.contract_address)), abi=verifier.abi)
    cd = json.loads((fixture / "calldata.json").read_text())
    data = bytes.fromhex(
        c.encode_abi(
            "verifyProof", [bytes.fromhex(cd["proof"][2:]), [int(x, 16) for x in cd["public_inputs"]]]
        )[2:]
    )
    return call_tx_gas(w3, acct, c.address, data, f"gnark groth16 {fixture.name}"), data, v.gas_used


def _direct(w3: Web3, acct: LocalAccount) -> dict[str, Any]:
    res: dict[str, Any] = {}
    g16 = FIX / "gnark" / "groth16_n3"
    plk = FIX / "gnark" / "plonk_n3"
    arts = compile_files(
        {
            "fixtures/gnark/groth16_n3/Verifier.sol": g16 / "Verifier.sol",
            "fixtures/gnark/plonk_n3/Verifier.sol": plk / "Verifier.sol",
        }
    )
    # gnark Groth16
    gas, data, deploy_gas = direct_gnark_groth16(
        w3, acct, arts["fixtures/gnark/groth16_n3/Verifier.sol:Verifier"], g16
    )
    res["gnark_groth16"] = {
        "tx_gas": gas,
        "exec_gas": exec_gas(gas, data),
        "calldata_bytes": len(data),
        "deploy_gas": deploy_gas,
        "public_inputs": 3,
    }
    # gnark PLONK
    a = arts["PlonkVerifier"]
    v = deploy_contract(w3, acct, a)
    c = w3.eth.contract(address=Web3.to_checksum_address(str(v.contract_address)), abi=a.abi)
    cd = json.loads((plk / "calldata.json").read_text())
    data = bytes.fromhex(
        c.encode_abi("Verify", [bytes.fromhex(cd["proof"][2:]), [int(x, 16) for x in cd["public_inputs"]]])[
            2:
        ]
    )
    gas = call_tx_gas(w3, acct, c.address, data, "gnark plonk")
    res["gnark_plonk"] = {
        "tx_gas": gas,
        "exec_gas": exec_gas(gas, data),
        "calldata_bytes": len(data),
        "deploy_gas": v.gas_used,
        "public_inputs": 3,
    }
    # ezkl Halo2
    ez = _ezkl_verifier(REPO_ROOT / "build" / "bench" / "ezkl")
    if ez is None:
        res["ezkl_halo2"] = {"skipped": "tests/fixtures/ezkl/gemm_relu fixtures not present"}
    else:
        sol, data = ez
        earts = compile_files({"build/bench/ezkl/Halo2Verifier.sol": sol})
        name = next(k for k, x in earts.items() if ":" not in k and x.bytecode)
        v = deploy_contract(w3, acct, earts[name])
        gas = call_tx_gas(w3, acct, str(v.contract_address), data, "ezkl halo2")
        res["ezkl_halo2"] = {
            "tx_gas": gas,
            "exec_gas": exec_gas(gas, data),
            "calldata_bytes": len(data),
            "deploy_gas": v.gas_used,
        }
    return res


def _registry(
    w3: Web3, acct: LocalAccount, arts: dict[str, Artifact]
) -> tuple[Contract, dict[str, Any], list[str]]:
    v = deploy_contract(w3, acct, arts["SheafRegistry"], [acct.address])
    reg = w3.eth.contract(
        address=Web3.to_checksum_address(str(v.contract_address)), abi=arts["SheafRegistry"].abi
    )
    keys = list(ANVIL_DEV_KEYS[1:4])
    configure_registry(
        w3, acct, reg, domains=[(1, "")], operators=[Account.from_key(k).address for k in keys], threshold=2
    )
    return reg, {"deploy_gas": v.gas_used}, keys


# Bench-only verifier that accepts everything: isolates the registry's own cost of the RECURSIVE
# leaves variant (calldata + on-chain root building + storage); never deployed outside this benchmark.
_ACCEPT_ALL = """// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;
contract BenchAcceptAllVerifier {
    function verifyAggregation(bytes32, uint256, bytes calldata) external pure returns (bytes4) {
        return 0x%s;
    }
}
"""


def _leaves_variant_overhead(w3: Web3, acct: LocalAccount, reg: Contract) -> dict[str, Any]:
    sel = keccak256(b"verifyAggregation(bytes32,uint256,bytes)")[:4].hex()
    src = REPO_ROOT / "build" / "bench" / "BenchAcceptAllVerifier.sol"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(_ACCEPT_ALL % sel)
    art = compile_files({"build/bench/BenchAcceptAllVerifier.sol": src})["BenchAcceptAllVerifier"]
    v = deploy_contract(w3, acct, art)
    configure_registry(w3, acct, reg, domains=[(3, acct.address)], verifier=str(v.contract_address))
    res: dict[str, Any] = {}
    for agg_id, n in enumerate(LEAF_COUNTS, start=1):
        leaves = [keccak256(b"rec" + i.to_bytes(4, "big") + n.to_bytes(4, "big")) for i in range(n)]
        s = transact(w3, acct, reg.functions.submitRecursiveAggregation(3, agg_id, leaves, b""), "leaves")
        res[str(n)] = {"tx_gas": s.gas_used}
    root = keccak256(b"rec-root")
    s = transact(
        w3, acct, reg.functions.submitRecursiveAggregationRoot(3, len(LEAF_COUNTS) + 1, root, 8, b""), "r"
    )
    res["root_variant"] = {"tx_gas": s.gas_used}
    return res


def _inner_leaves() -> list[dict[str, Any]]:
    """Real inner Groth16 proofs (1 public input): two snarkjs proofs, then three gnark ones."""
    sj = FIX / "snarkjs" / "mul1_groth16"
    leaves = [
        snarkjs_leaf(
            (sj / "verification_key.json").read_bytes(),
            (sj / f"proof{i}.json").read_bytes(),
            (sj / f"public{i}.json").read_bytes(),
        )
        for i in (0, 1)
    ]
    g = json.loads((REPO_ROOT / "gnark" / "aggregation" / "testdata" / "batch_p1.json").read_text())
    return leaves + list(g["leaves"])


def _outer_proof(batch: int, circuit_hash: str, leaves: list[dict[str, Any]]) -> dict[str, Any]:
    """A real outer proof of `leaves`: reused from build/recursion/ (same circuit and leaves) or proved."""
    path = outer_cache_path(batch, 1, circuit_hash, leaves)
    cached = path.exists()
    p = load_outer(path) if cached else prove_outer(batch, leaves)
    if not cached:
        save_outer(p, outer_cache_path(batch, 1, p.circuit_hash, leaves))
    return {
        "leaves": ["0x" + x.hex() for x in p.leaves],
        "root": "0x" + p.root.hex(),
        "proof": "0x" + p.proof.hex(),
        "circuit_hash": p.circuit_hash,
        "prove_s": p.prove_s,
        "prove_wall_s": p.wall_s,
        "prove_peak_rss_mib": p.peak_rss_mib,
        "cached": cached,
    }


def _recursive_real(
    w3: Web3, acct: LocalAccount, reg: Contract, arts: dict[str, Artifact], batches: list[int]
) -> dict[str, Any]:
    """Registry submissions through the real outer verifier, by batch size (full batches)."""
    inner = _inner_leaves()
    res: dict[str, Any] = {}
    for n in batches:
        if n > len(inner):
            res[str(n)] = {"skipped": f"only {len(inner)} inner fixture proofs"}
            continue
        ev = export_aggregation_verifier(n, 1, log=print)
        varts = compile_files({ev.source_path: ev.path})
        v = deploy_contract(w3, acct, varts["Verifier"])
        ad = deploy_contract(
            w3, acct, arts["Groth16AggregationAdapter"], [Web3.to_checksum_address(str(v.contract_address))]
        )
        leaves_d, root_d = 100 + 2 * n, 101 + 2 * n
        configure_registry(
            w3,
            acct,
            reg,
            domains=[(leaves_d, acct.address), (root_d, acct.address)],
            verifier=str(ad.contract_address),
        )
        op = _outer_proof(n, ev.circuit_hash, inner[:n])
        if op["circuit_hash"] != ev.circuit_hash:
            raise RuntimeError("outer proof and exported verifier come from different circuits")
        leaves = [bytes.fromhex(x[2:]) for x in op["leaves"]]
        root, proof = bytes.fromhex(op["root"][2:]), bytes.fromhex(op["proof"][2:])
        if merkle_root(leaves) != root:
            raise RuntimeError("outer proof root is not the Merkle root of its leaves")
        s_leaves = transact(
            w3,
            acct,
            reg.functions.submitRecursiveAggregation(leaves_d, 1, leaves, proof),
            "rec",
            gas=3_000_000,
        )
        s_root = transact(
            w3,
            acct,
            reg.functions.submitRecursiveAggregationRoot(root_d, 1, root, n, proof),
            "rec-root",
            gas=3_000_000,
        )
        i = n - 1
        path = list(merkle_path(leaves, i).path)
        fn = reg.functions.verifyProofAggregationKind(leaves_d, 1, leaves[i], path, n, i)
        if tuple(fn.call()) != (True, 1):
            raise RuntimeError("leaf of the recursive aggregation not included as RECURSIVE")
        data = bytes.fromhex(fn._encode_transaction_data()[2:])
        g = call_tx_gas(w3, acct, reg.address, data, "inclusion")
        incl_exec = exec_gas(g, data)
        res[str(n)] = {
            "circuit_hash": ev.circuit_hash,
            "r1cs": ev.nb_constraints,
            "verifier_deploy_gas": v.gas_used,
            "submission_leaves_variant_gas": s_leaves.gas_used,
            "submission_root_variant_gas": s_root.gas_used,
            "inclusion_exec_gas": incl_exec,
            "gas_per_proof_leaves_variant": round(s_leaves.gas_used / n + incl_exec),
            "gas_per_proof_root_variant": round(s_root.gas_used / n + incl_exec),
            "proof_bytes": len(proof),
            "setup": {"keys_created": ev.keys_created, "setup_s": ev.setup_s, "compile_s": ev.compile_s},
            "prove": {k: op.get(k) for k in ("prove_s", "prove_wall_s", "prove_peak_rss_mib", "cached")},
        }
    return res


def main() -> dict[str, Any]:
    arts = compile_contracts()
    out: dict[str, Any] = {"source": "anvil receipts (gasUsed), not estimates"}
    with Anvil() as node:
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        acct: LocalAccount = Account.from_key(ANVIL_DEV_KEYS[0])
        chain_id = int(w3.eth.chain_id)
        out["direct"] = _direct(w3, acct)
        reg, info, keys = _registry(w3, acct, arts)
        out["registry"] = info
        attested: dict[str, Any] = {}
        inclusion: dict[str, Any] = {}
        for agg_id, n in enumerate(LEAF_COUNTS, start=1):
            leaves = [keccak256(b"bench" + i.to_bytes(4, "big") + n.to_bytes(4, "big")) for i in range(n)]
            root = merkle_root(leaves)
            dl = int(w3.eth.get_block("latest")["timestamp"]) + 600
            sigs = sign_aggregation(Aggregation(1, agg_id, root, n, dl), chain_id, reg.address, keys[:2])
            s = transact(
                w3,
                acct,
                reg.functions.submitAttestedAggregation(1, agg_id, root, n, dl, [x.signature for x in sigs]),
                "attest",
            )
            attested[str(n)] = {"tx_gas": s.gas_used, "per_leaf": round(s.gas_used / n, 1), "signatures": 2}
            # inclusion check of the last leaf (longest path) as a transaction
            i = n - 1
            path = list(merkle_path(leaves, i).path)
            fn = reg.functions.verifyProofAggregation(1, agg_id, leaves[i], path, n, i)
            assert fn.call() is True
            data = bytes.fromhex(fn._encode_transaction_data()[2:])
            g = call_tx_gas(w3, acct, reg.address, data, "inclusion")
            inclusion[str(n)] = {"tx_gas": g, "exec_gas": exec_gas(g, data), "path_len": len(path)}
        out["attested_submission"] = attested
        out["inclusion_check"] = inclusion
        # RECURSIVE (root variant) through the real gnark Groth16 verifier + adapter
        g16 = FIX / "gnark" / "groth16_n3"
        garts = compile_files({"fixtures/gnark/groth16_n3/Verifier.sol": g16 / "Verifier.sol"})
        gv = deploy_contract(w3, acct, garts["Verifier"])
        ad = deploy_contract(
            w3, acct, arts["Groth16AggregationAdapter"], [Web3.to_checksum_address(str(gv.contract_address))]
        )
        configure_registry(w3, acct, reg, domains=[(2, acct.address)], verifier=str(ad.contract_address))
        cd = json.loads((g16 / "calldata.json").read_text())
        pubs = [int(x, 16) for x in cd["public_inputs"]]
        root = ((pubs[0] << 128) | pubs[1]).to_bytes(32, "big")
        s = transact(
            w3,
            acct,
            reg.functions.submitRecursiveAggregationRoot(2, 1, root, pubs[2], bytes.fromhex(cd["proof"][2:])),
            "recursive",
        )
        out["recursive_root_submission"] = {
            "tx_gas": s.gas_used,
            "verifier": "gnark Groth16, 3 public inputs (fixture)",
        }
        batches = [int(x) for x in os.environ.get("SHEAF_GAS_RECURSIVE_BATCHES", "1").split(",") if x.strip()]
        out["recursive_real"] = _recursive_real(w3, acct, reg, arts, batches)
        out["recursive_leaves_overhead"] = _leaves_variant_overhead(w3, acct, reg)
    # per-proof comparison: amortized submission + one inclusion check vs direct verification
    cmp: dict[str, Any] = {}
    for n in LEAF_COUNTS:
        per = attested[str(n)]["tx_gas"] / n + inclusion[str(n)]["exec_gas"]
        row: dict[str, Any] = {"attested_per_proof_gas": round(per)}
        for scheme, d in out["direct"].items():
            if "exec_gas" in d:
                row[f"vs_{scheme}"] = round(d["tx_gas"] / per, 2)
        cmp[str(n)] = row
    out["per_proof"] = cmp
    for r in out["recursive_real"].values():
        if "gas_per_proof_root_variant" in r:
            for scheme, d in out["direct"].items():
                if "tx_gas" in d:
                    r[f"vs_{scheme}"] = round(d["tx_gas"] / r["gas_per_proof_root_variant"], 2)
    _print(out)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gas.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def _print(out: dict[str, Any]) -> None:
    show(
        "direct verification (one tx per proof)",
        ["scheme", "tx gas", "exec gas", "calldata B"],
        [
            [k, d["tx_gas"], d["exec_gas"], d["calldata_bytes"]]
            if "tx_gas" in d
            else [k, f"skipped: {d['skipped']}"]
            for k, d in out["direct"].items()
        ],
    )
    rows = []
    for n in LEAF_COUNTS:
        a, i, c = out["attested_submission"][str(n)], out["inclusion_check"][str(n)], out["per_proof"][str(n)]
        rows.append(
            [n, a["tx_gas"], f"{a['per_leaf']:.1f}", i["tx_gas"], i["exec_gas"], c["attested_per_proof_gas"]]
        )
    show(
        "registry (attested, 2-of-3 signatures) and inclusion check (last leaf)",
        ["leaves", "submit gas", "per leaf", "incl tx", "incl exec", "per proof"],
        rows,
        notes=[
            "recursive root submission (real gnark Groth16 verifier): "
            f"{out['recursive_root_submission']['tx_gas']} gas"
        ],
    )
    rows = []
    for n, r in out["recursive_real"].items():
        if "skipped" in r:
            rows.append([n, f"skipped: {r['skipped']}"])
            continue
        rows.append(
            [
                n,
                r["submission_leaves_variant_gas"],
                r["submission_root_variant_gas"],
                r["inclusion_exec_gas"],
                f"{r['gas_per_proof_leaves_variant']} / {r['gas_per_proof_root_variant']}",
                r["verifier_deploy_gas"],
            ]
        )
    lo = out["recursive_leaves_overhead"]
    show(
        "RECURSIVE with the real gnark/aggregation outer verifier (full batches of real inner proofs)",
        ["batch", "leaves-var", "root-var", "incl exec", "per proof (leaves/root)", "verifier deploy"],
        rows,
        notes=[
            "registry-only cost of RECURSIVE submissions (accept-all verifier): root variant "
            f"{lo['root_variant']['tx_gas']}; leaves variant "
            + ", ".join(f"{n} leaves {lo[str(n)]['tx_gas']}" for n in LEAF_COUNTS)
        ],
    )
    show(
        "direct / aggregated gas per proof",
        ["leaves", *(k for k in out["per_proof"][str(LEAF_COUNTS[0])] if k.startswith("vs_"))],
        [[n, *(v for k, v in out["per_proof"][str(n)].items() if k.startswith("vs_"))] for n in LEAF_COUNTS],
    )


if __name__ == "__main__":
    main()
