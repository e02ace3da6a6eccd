"""Normalize+verify throughput per scheme and producer, next to each producer's own verifier on the
same proofs in the same run (2 cores, everything real):

    groth16/snarkjs  Normalizer.normalize_many (sidecar batch verify)  vs  snarkjs groth16.verify (node)
    groth16/gnark    Normalizer.normalize_many                         vs  gnark groth16.Verify (bench-verify)
    plonk/snarkjs    Normalizer.normalize_many                         vs  snarkjs plonk.verify (node)
    plonk/gnark      Normalizer.normalize_many                         vs  gnark plonk.Verify (bench-verify)
    halo2/ezkl       Normalizer.normalize (memfd, strict parse)        vs  raw ezkl.verify on files

Run: `python -m bench normalize` (or `python -m bench.normalize`). Writes bench/results/normalize.json.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.table import show
from normalizers.api import Normalizer, ProofInput
from normalizers.errors import NormalizeError
from sheaf.paths import REPO_ROOT as ROOT
from sheaf.paths import gnark_binary

FIX = ROOT / "tests" / "fixtures"
RESULTS = ROOT / "bench" / "results"
BUDGET_S = float(os.environ.get("SHEAF_BENCH_SECONDS", "3"))
TARGETS = {"groth16": 1000.0, "plonk": 300.0}
HALO2_MAX_OVERHEAD = 0.10

NODE_LOOP = r"""
const path = require('path');
const snarkjs = require(path.join(process.argv[2], 'node_modules', 'snarkjs'));
const fs = require('fs');
(async () => {
  const [proto, vkP, proofP, pubP, seconds] = process.argv.slice(3);
  const vk = JSON.parse(fs.readFileSync(vkP)), proof = JSON.parse(fs.readFileSync(proofP));
  const pub = JSON.parse(fs.readFileSync(pubP));
  if (!(await snarkjs[proto].verify(vk, pub, proof))) throw new Error('fixture does not verify');
  let n = 0; const t0 = process.hrtime.bigint();
  let dt = 0;
  while (dt < Number(seconds)) {
    if (!(await snarkjs[proto].verify(vk, pub, proof))) throw new Error('verify failed');
    n++; dt = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  console.log(JSON.stringify({proofs: n, seconds: dt}));
  process.exit(0);  // ffjavascript keeps worker threads alive
})().catch((e) => { console.error(e); process.exit(1); });
"""


def _rate(fn: Callable[[], int], budget: float = BUDGET_S) -> tuple[float, int]:
    """Run fn (returns #proofs) repeatedly for ~budget seconds; (proofs/s, proofs)."""
    fn()  # warm-up: caches, sidecar start, imports
    n = 0
    t0 = time.perf_counter()
    while True:
        n += fn()
        dt = time.perf_counter() - t0
        if dt >= budget:
            return n / dt, n


def _snarkjs(proto: str) -> list[ProofInput]:
    out = []
    for c in ("mul1", "multi5", "sq1"):
        d = FIX / "snarkjs" / f"{c}_{proto}"
        for p in sorted(d.glob("proof*.json")):
            i = p.stem.removeprefix("proof")
            vk = (d / "verification_key.json").read_bytes()
            out.append(
                ProofInput(proto, "snarkjs", p.read_bytes(), vk, public=(d / f"public{i}.json").read_bytes())
            )
    return out


def _gnark(scheme: str, proof_kind: str = "proof") -> list[ProofInput]:
    m = json.loads((FIX / "gnark" / "manifest.json").read_text())
    out = []
    for f in m["fixtures"]:
        if f["scheme"] != scheme or f.get("producer", "gnark") != "gnark" or f.get("commitments", 0):
            continue
        if f.get("transcript", "solidity") != "solidity":  # recursion-transcript proofs: 2 verifications
            continue
        fl = f["files"]
        out.append(ProofInput(scheme, "gnark", (FIX / "gnark" / fl[proof_kind]).read_bytes(),
                              (FIX / "gnark" / fl["vk"]).read_bytes(),
                              public=(FIX / "gnark" / fl["public_witness"]).read_bytes()))  # fmt: skip
    return out


def _many(n: Normalizer, inputs: list[ProofInput], batch: int) -> Callable[[], int]:
    work = (inputs * (batch // len(inputs) + 1))[:batch]

    def run() -> int:
        out = n.normalize_many(work)
        bad = [e for e in out if isinstance(e, NormalizeError)]
        if bad:
            raise RuntimeError(f"benchmark input rejected: {bad[0]}")
        return len(work)

    return run


def _node_rate(proto: str, circuit: str) -> float:
    d = FIX / "snarkjs" / f"{circuit}_{proto}"
    with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as f:
        f.write(NODE_LOOP)
    try:
        r = subprocess.run(
            ["node", f.name, str(ROOT), proto, str(d / "verification_key.json"), str(d / "proof0.json"),
             str(d / "public0.json"), str(BUDGET_S)],
            capture_output=True, text=True, check=True, timeout=300,
        )  # fmt: skip
    finally:
        os.unlink(f.name)
    v = json.loads(r.stdout.strip().splitlines()[-1])
    return float(v["proofs"]) / float(v["seconds"])


def _gnark_native() -> dict[str, float]:
    """gnark's own verifiers, one proof at a time, from `sheaf-gnark bench-verify`."""
    r = subprocess.run(
        [str(gnark_binary()), "bench-verify", "--proofs", "32", "--fixtures", str(FIX / "gnark")],
        capture_output=True, text=True, check=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    out: dict[str, float] = {}
    for sec in json.loads(r.stdout)["sections"]:
        for rate in sec["rates"]:
            if rate["name"].startswith("gnark ") and rate["batch_size"] == 1:
                out[sec["scheme"]] = float(rate["proofs_per_s"])
    return out


def _halo2(n: Normalizer) -> dict[str, Any]:
    import ezkl  # lazy: heavy optional dependency, only for the Halo2 rows

    srs = str(FIX / "ezkl" / "verifier-k1.srs")
    rows = {}
    for d in sorted(p for p in (FIX / "ezkl").iterdir() if (p / "proof0.json").exists()):
        inp = ProofInput("halo2", "ezkl", (d / "proof0.json").read_bytes(), (d / "vk.key").read_bytes(),
                         settings=(d / "settings.json").read_bytes())  # fmt: skip
        args = (str(d / "proof0.json"), str(d / "settings.json"), str(d / "vk.key"), srs, False)

        def raw(args: tuple[str, str, str, str, bool] = args) -> int:
            assert ezkl.verify(*args)
            return 1

        def norm(inp: ProofInput = inp) -> int:
            n.normalize(inp)
            return 1

        # strictly alternate raw and normalize calls and compare medians: a shared, busy machine
        # drifts too much for two separate throughput windows to be comparable
        raw()
        norm()
        t_raw: list[float] = []
        t_norm: list[float] = []
        t_end = time.perf_counter() + BUDGET_S
        while time.perf_counter() < t_end or len(t_raw) < 5:
            t0 = time.perf_counter()
            raw()
            t1 = time.perf_counter()
            norm()
            t2 = time.perf_counter()
            t_raw.append(t1 - t0)
            t_norm.append(t2 - t1)
        raw_rate, norm_rate = 1.0 / statistics.median(t_raw), 1.0 / statistics.median(t_norm)
        rows[d.name] = {
            "normalize_proofs_per_s": norm_rate,
            "ezkl_verify_proofs_per_s": raw_rate,
            "overhead": raw_rate / norm_rate - 1.0,
            "pairs": len(t_raw),
        }
    return rows


def main() -> dict[str, Any]:
    results: dict[str, Any] = {"cores": os.cpu_count(), "budget_seconds_per_measure": BUDGET_S, "rows": []}
    rows: list[dict[str, Any]] = results["rows"]
    native = _gnark_native()
    with Normalizer(srs=FIX / "ezkl" / "verifier-k1.srs") as n, \
            Normalizer(groth16_backend="groth16py") as npy:  # fmt: skip
        g16_sj = _snarkjs("groth16")
        rate, count = _rate(_many(n, g16_sj, 512))
        rate_py, _ = _rate(_many(npy, g16_sj, 128))
        peer = _node_rate("groth16", "multi5")
        rows.append({"scheme": "groth16", "producer": "snarkjs", "sheaf_proofs_per_s": rate, "proofs": count,
                     "peer": "snarkjs groth16.verify (node, in-process loop)", "peer_proofs_per_s": peer,
                     "alt_in_process_groth16py_proofs_per_s": rate_py})  # fmt: skip
        for kind, label in (("proof_raw", "raw"), ("proof", "compressed")):
            rate, count = _rate(_many(n, _gnark("groth16", kind), 512))
            rows.append({"scheme": "groth16", "producer": "gnark", "encoding": label,
                         "sheaf_proofs_per_s": rate, "proofs": count,
                         "peer": "gnark groth16.Verify (sheaf-gnark bench-verify)",
                         "peer_proofs_per_s": native.get("groth16")})  # fmt: skip
        rate, count = _rate(_many(n, _snarkjs("plonk"), 256))
        rows.append({"scheme": "plonk", "producer": "snarkjs", "sheaf_proofs_per_s": rate, "proofs": count,
                     "peer": "snarkjs plonk.verify (node, in-process loop)",
                     "peer_proofs_per_s": _node_rate("plonk", "multi5")})  # fmt: skip
        rate, count = _rate(_many(n, _gnark("plonk"), 256))
        rows.append({"scheme": "plonk", "producer": "gnark", "sheaf_proofs_per_s": rate, "proofs": count,
                     "peer": "gnark plonk.Verify (sheaf-gnark bench-verify)",
                     "peer_proofs_per_s": native.get("plonk-gnark")})  # fmt: skip
        for name, h in _halo2(n).items():
            rows.append({"scheme": "halo2", "producer": "ezkl", "slice": name,
                         "sheaf_proofs_per_s": h["normalize_proofs_per_s"], "peer": "raw ezkl.verify (files)",
                         "peer_proofs_per_s": h["ezkl_verify_proofs_per_s"],
                         "overhead": h["overhead"]})  # fmt: skip
    for r in rows:
        peer_rate = r.get("peer_proofs_per_s")
        r["ratio_vs_peer"] = r["sheaf_proofs_per_s"] / peer_rate if peer_rate else None
        if r["scheme"] in TARGETS:
            r["target_proofs_per_s"] = TARGETS[r["scheme"]]
            r["meets_target"] = r["sheaf_proofs_per_s"] >= TARGETS[r["scheme"]]
        else:
            r["target_max_overhead"] = HALO2_MAX_OVERHEAD
            r["meets_target"] = r["overhead"] <= HALO2_MAX_OVERHEAD
    load = os.getloadavg()[0]
    results["loadavg_1m_at_end"] = load
    _print(rows, load)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "normalize.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def _print(rows: list[dict[str, Any]], load: float) -> None:
    out: list[list[object]] = []
    for r in rows:
        name = f"{r['scheme']}/{r['producer']}" + (f" {r['slice']}" if "slice" in r else "")
        name += f" {r['encoding']}" if "encoding" in r else ""
        peer = r.get("peer_proofs_per_s")
        ratio = r.get("ratio_vs_peer")
        tgt = (f">={r['target_proofs_per_s']:.0f}" if "target_proofs_per_s" in r
               else f"ovh {100 * r['overhead']:.1f}%<=10%")  # fmt: skip
        out.append(
            [
                name,
                f"{r['sheaf_proofs_per_s']:.1f}",
                f"{peer or 0:.1f}",
                f"{ratio or 0:.2f}",
                tgt,
                "ok" if r["meets_target"] else "MISS",
                r["peer"],
            ]
        )
        if "alt_in_process_groth16py_proofs_per_s" in r:
            out.append(["  (groth16py backend)", f"{r['alt_in_process_groth16py_proofs_per_s']:.1f}"])
    show(
        "normalize + verify, proofs/s (Sheaf vs the producer's own verifier)",
        ["scheme/producer", "sheaf p/s", "peer p/s", "ratio", "target", "", "peer"],
        out,
        left={"scheme/producer", "", "peer"},
        notes=[f"(1-minute load average at the end: {load:.1f} on {os.cpu_count()} cores)"],
    )


if __name__ == "__main__":
    main()
