"""A stand-in for `sheaf-gnark aggregate serve`, for tests and benchmarks of the job machinery.

The real outer proof takes about a minute and gigabytes of keys; the queue mechanics (enqueue,
a worker taking the job, heartbeats, a worker killed mid-job, retries, results) do not depend on
what the prover computes. This process speaks the same protocol (sheaf.gnark_process: the ready line
with shape and circuit hash, ops prove / verify / info), takes the same leaves, hashes each leaf
the way the circuit does (aggregator.leaves.leaf_statement_hash) and answers a deterministic
"proof" (a digest of circuit hash and leaves, 256 bytes), so results are comparable byte for byte.
Its key cache entry (`<cache>/<hash[:32]>/meta.json`, pk.dump, vk.bin) is faked by `make_keys`;
without one it announces a dev setup on stderr first, as the real binary would.

Everything above the process is the production path: `aggregator worker`, RecursiveProver.run_unit,
the queue. Settings (environment): SHEAF_STANDIN_PROVE_S (seconds per proof, default 0.5),
SHEAF_STANDIN_ERROR (answer this error code to every prove, e.g. INTERNAL), SHEAF_STANDIN_CIRCUIT
(the circuit hash; default derived from the shape).

    python -m bench.standins.jobs aggregate serve --batch 2 --npub 1 [--plonk K] [--cache DIR]
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from aggregator.leaves import leaf_statement_hash
from bench.standins import write_key_entry


def circuit_hash(batch: int, npub: int, plonk: int = 0) -> str:
    env = os.environ.get("SHEAF_STANDIN_CIRCUIT", "")
    return env or hashlib.sha256(f"sheaf-standin-b{batch}-p{npub}-k{plonk}".encode()).hexdigest()


def proof_of(chash: str, leaves: list[bytes]) -> bytes:
    """The stand-in's deterministic 'outer proof' of these leaves on this circuit."""
    seed = hashlib.sha256(bytes.fromhex(chash) + b"".join(leaves)).digest()
    return b"".join(hashlib.sha256(seed + bytes([i])).digest() for i in range(8))


def make_keys(cache: Path, batch: int, npub: int, plonk: int = 0) -> str:
    """A fake key cache entry for the stand-in's circuit; returns its hash."""
    h = circuit_hash(batch, npub, plonk)
    meta = {"shape": {"batch": batch, "npub": npub, "plonk": plonk}, "circuit_hash": h, "nb_constraints": 7}
    write_key_entry(cache, h, meta)
    return h


def _out(m: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(m, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    if argv[:2] != ["aggregate", "serve"]:
        print(f"stand-in: only `aggregate serve`, not {argv[:2]}", file=sys.stderr)
        return 2
    args = argv[2:]

    def opt(name: str, default: str) -> str:
        return args[args.index(name) + 1] if name in args else default

    batch, npub, plonk = int(opt("--batch", "0")), int(opt("--npub", "1")), int(opt("--plonk", "0"))
    cache = Path(opt("--cache", os.environ.get("SHEAF_CACHE", "") + "/recursion"))
    h = circuit_hash(batch, npub, plonk)
    d = cache / h[:32]
    print(
        f"aggregate: batch={batch} npub={npub} plonk={plonk} r1cs=7 compiled in 1ms, keys in {d}",
        file=sys.stderr,
        flush=True,
    )
    created = False
    if not (d / "meta.json").exists():
        print("aggregate: running INSECURE dev setup (stand-in)", file=sys.stderr, flush=True)
        time.sleep(1.0)
        make_keys(cache, batch, npub, plonk)
        created = True
    shape = {"batch": batch, "npub": npub, "plonk": plonk}
    info = {
        "shape": shape,
        "circuit_hash": h,
        "nb_constraints": 7,
        "dir": str(d),
        "keys_created": created,
        "compile_ms": 1,
        "setup_ms": 1,
        "insecure_setup": True,
    }
    _out(
        {
            "id": None,
            "ok": True,
            "event": "ready",
            "result": {
                "process": "prover",
                "protocol": 2,
                "max_line": 1 << 28,
                "workers": 1,
                "ops": ["info", "prove", "verify", "version"],
                **info,
            },
        }
    )
    delay = float(os.environ.get("SHEAF_STANDIN_PROVE_S", "0.5"))
    error = os.environ.get("SHEAF_STANDIN_ERROR", "")
    for line in sys.stdin:
        req = json.loads(line)
        rid, op = req.get("id"), req.get("op")
        try:
            if op == "info":
                _out({"id": rid, "ok": True, "result": info})
            elif op == "prove":
                if error:
                    _out(
                        {"id": rid, "ok": False, "error": {"code": error, "field": "", "message": "stand-in"}}
                    )
                    continue
                leaves = [leaf_statement_hash(x) for x in req["leaves"]]
                if not 1 <= len(leaves) <= batch:
                    _out(
                        {
                            "id": rid,
                            "ok": False,
                            "error": {
                                "code": "BAD_BATCH",
                                "field": "leaves",
                                "message": f"{len(leaves)} leaves",
                            },
                        }
                    )
                    continue
                t0 = time.monotonic()
                time.sleep(delay)
                _out(
                    {
                        "id": rid,
                        "ok": True,
                        "result": {
                            "leaves": ["0x" + x.hex() for x in leaves],
                            "count": len(leaves),
                            "proof": "0x" + proof_of(h, leaves).hex(),
                            "prove_ms": int((time.monotonic() - t0) * 1000),
                        },
                    }
                )
            elif op == "verify":
                leaves = [bytes.fromhex(str(x)[2:]) for x in req["leaves"]]
                ok = bytes.fromhex(str(req["proof"])[2:]) == proof_of(h, leaves)
                if ok:
                    _out({"id": rid, "ok": True, "result": {"valid": True}})
                else:
                    _out(
                        {
                            "id": rid,
                            "ok": False,
                            "error": {"code": "INVALID_PROOF", "field": "proof", "message": "stand-in"},
                        }
                    )
            else:
                _out({"id": rid, "ok": True, "result": {"version": "stand-in"}})
        except Exception as e:  # a malformed leaf: the real worker answers BAD_LEAF
            _out(
                {
                    "id": rid,
                    "ok": False,
                    "error": {"code": "BAD_LEAF", "field": "leaves[0]", "message": str(e)},
                }
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
