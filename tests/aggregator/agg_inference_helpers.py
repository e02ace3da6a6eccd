"""Real chained slice proofs for the whole-inference tests (aggregator, SDK, e2e).

One tiny circom circuit `y = x * k` (x public input, k private, y output: public signals [y, x]), set
up twice with different beacons, so there are two real Groth16 keys A and B (snarkjs, INSECURE dev
setup with fixed entropy: test data only). The model has three proven slices A -> B -> A; slice i's
input commitment is its public input x (position 1) and its output commitment is y (position 0),
so consecutive slices link when y_i == x_{i+1}; the output is y of the last slice. Proofs are made
once in one node process and cached under $SHEAF_CACHE (~10 s cold, 0 warm).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from agg_helpers import BIN, ROOT, Input, _cache, _run

from normalizers.api import parse_vk
from sheaf.inference import SliceSpec

CIRCUIT = """
template Step() {
    signal input x;
    signal private input k;
    signal output y;
    y <== x * k;
}
component main = Step();
"""

NODE_PROVE = r"""
const snarkjs = require(process.argv[2]);
const fs = require("fs");
(async () => {
  const [dir, jobs, out] = process.argv.slice(3);
  const res = [];
  for (const [key, x, k] of JSON.parse(jobs)) {
    const { proof, publicSignals } = await snarkjs.groth16.fullProve(
      { x: String(x), k: String(k) }, dir + "/step.wasm", dir + "/step_" + key + ".zkey");
    res.push({ proof, public: publicSignals });
  }
  fs.writeFileSync(out, JSON.stringify(res));
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
"""

# name -> (key, x, k): the honest chain 3 -5-> 15 -2-> 30 -3-> 90, and the bad variants
JOBS: dict[str, tuple[str, int, int]] = {
    "s0": ("a", 3, 5),
    "s1": ("b", 15, 2),
    "s2": ("a", 30, 3),
    "s1_other_input": ("b", 16, 2),  # slice 1 genuinely proven on another input (breaks the link)
    "s1_other_model": ("a", 15, 2),  # slice 1's computation under another model's key (A, not B)
    "s0_other_input": ("a", 4, 5),  # the whole inference on another input: slice 0 only
}
OUTPUT = 90
INPUT = 3


@dataclass(frozen=True)
class Chain:
    proofs: dict[str, Input]
    vk_hash: dict[str, bytes]  # "a" / "b"
    model: list[SliceSpec]


def _slice(vk_hash: bytes, last: bool) -> SliceSpec:
    return SliceSpec(True, 1, vk_hash, 2, 1, 0, (0,) if last else ())


def chain() -> Chain:
    key = hashlib.sha256((CIRCUIT + NODE_PROVE + json.dumps(JOBS)).encode()).hexdigest()[:16]
    d = _cache() / "inference-chain" / key
    out = d / "proofs.json"
    if not out.exists():
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as td:
            tmp = Path(td)
            sj = str(BIN / "snarkjs")
            _run([sj, "powersoftau", "new", "bn128", "4", "pot0.ptau"], tmp)
            _run([sj, "powersoftau", "contribute", "pot0.ptau", "pot1.ptau", "-e=sheaf-dev-only"], tmp)
            _run([sj, "powersoftau", "prepare", "phase2", "pot1.ptau", "pot.ptau"], tmp)
            (tmp / "step.circom").write_text(CIRCUIT)
            _run([str(BIN / "circom"), "step.circom", "--r1cs", "--wasm"], tmp)
            _run([sj, "groth16", "setup", "step.r1cs", "pot.ptau", "step_0.zkey"], tmp)
            for k, beacon in (("a", "0" * 64), ("b", "1" * 64)):
                _run([sj, "zkey", "beacon", "step_0.zkey", f"step_{k}.zkey", beacon, "10"], tmp)
                _run([sj, "zkey", "export", "verificationkey", f"step_{k}.zkey", f"vk_{k}.json"], tmp)
            (tmp / "prove.js").write_text(NODE_PROVE)
            jobs = json.dumps(list(JOBS.values()))
            _run(["node", "prove.js", str(ROOT / "node_modules" / "snarkjs"), str(tmp), jobs, "p.json"], tmp)
            for f in ("vk_a.json", "vk_b.json"):
                shutil.copy(tmp / f, d / f)
            shutil.move(str(tmp / "p.json"), out)
    vks = {k: (d / f"vk_{k}.json").read_bytes() for k in ("a", "b")}
    items = json.loads(out.read_text())
    proofs = {
        name: Input(
            name,
            "groth16",
            "snarkjs",
            json.dumps(it["proof"]).encode(),
            vks[job[0]],
            json.dumps(it["public"]).encode(),
        )
        for (name, job), it in zip(JOBS.items(), items, strict=True)
    }
    vh = {k: parse_vk("groth16", "snarkjs", v)[1] for k, v in vks.items()}
    model = [_slice(vh["a"], False), _slice(vh["b"], False), _slice(vh["a"], True)]
    return Chain(proofs, vh, model)
