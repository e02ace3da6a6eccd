"""A stand-in for `sheaf-gnark tree serve --level L`, for tests of the tree prover's orchestration.

A real tree job takes about a minute and 5-6 GB; what the aggregator does around it (one worker per
level, jobs in order, a worker killed mid-job, bounded retries, pinned keys, checking every answer)
does not depend on the proof. This process speaks the same protocol (sheaf.gnark_process: the ready
line with plan, capacity and per-level circuit hashes; ops info / leaf / merge), refuses what the real
worker refuses (missing keys before its ready line, a leaf job over two vks or more than K proofs, a
child of another circuit, a partial child that is not last, a job for another level) and computes the
real nodes: a leaf job's root is Merkle.root of its statement hashes (aggregator.merkle), a merge's is
Merkle.sol's fold of its children's roots, so a wrong composition in the prover is caught. The "proof"
is a deterministic digest of (circuit, node); a merge checks its children's.

Settings (environment): SHEAF_TREE_STANDIN_PROVE_S (seconds per job, default 0.05);
SHEAF_TREE_STANDIN_EXIT_ON (op name: the process exits when it receives one); SHEAF_TREE_STANDIN_BAD_ROOT
(=1: leaf jobs answer a wrong root); SHEAF_TREE_STANDIN_SALT (another salt: another compiled circuit).

    python -m bench.standins.tree tree serve --k 2 --npub 1 --fanin 2 --levels 1 --level 0 [--cache DIR]
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
from aggregator.merkle import merkle_root
from bench.standins import write_key_entry
from normalizers.statement import keccak256
from sheaf.recursion_tree import TreePlan

# gnark/tree's Output (units.go): a merge child is one, and nothing else
OUTPUT_FIELDS = frozenset(
    {
        "level",
        "circuit_hash",
        "node",
        "proof",
        "top",
        "public_inputs",
        "prove_ms",
        "base_rss_mib",
        "peak_rss_mib",
    }
)


def circuit_hashes(plan: TreePlan) -> list[str]:
    """The stand-in's circuit hash of every level (level L's depends on the levels below, as gnark/tree's)."""
    salt = os.environ.get("SHEAF_TREE_STANDIN_SALT", "")
    out: list[str] = []
    for lv in range(plan.levels + 1):
        out.append(hashlib.sha256(f"sheaf-tree-standin{salt}-{plan.name}-l{lv}-{out}".encode()).hexdigest())
    return out


def make_keys(cache: Path, plan: TreePlan) -> list[str]:
    """Fake key cache entries of every level (meta.json, vk.bin, pk.dump); their circuit hashes."""
    hashes = circuit_hashes(plan)
    for lv, h in enumerate(hashes):
        write_key_entry(cache, h, {"level": lv, "circuit_hash": h, "nb_constraints": 7})
    return hashes


def proof_of(chash: str, root: bytes, count: int, top: bool) -> str:
    seed = hashlib.sha256(bytes.fromhex(chash) + root + count.to_bytes(8, "big") + bytes([top])).digest()
    n = 12 if top else 8  # a top proof is Solidity calldata (384 bytes), a child gnark's raw proof
    return "0x" + b"".join(hashlib.sha256(seed + bytes([i])).digest() for i in range(n)).hex()


def fold(roots: list[bytes]) -> bytes:
    """Merkle.sol over nodes that are already roots: pairs keccak(l || r), an odd last one promoted."""
    while len(roots) > 1:
        roots = [
            keccak256(roots[i] + roots[i + 1]) if i + 1 < len(roots) else roots[i]
            for i in range(0, len(roots), 2)
        ]
    return roots[0]


class JobError(Exception):
    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(message)
        self.code, self.field, self.message = code, field, message


def _out(m: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(m, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _output(
    plan: TreePlan, hashes: list[str], level: int, root: bytes, count: int, top: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "level": level,
        "circuit_hash": hashes[level],
        "node": {"root": "0x" + root.hex(), "count": count},
        "proof": proof_of(hashes[level], root, count, top),
        "top": top,
        "prove_ms": 1,
        "base_rss_mib": 10,
        "peak_rss_mib": 20 + level,
    }
    if top:
        r = int.from_bytes(root, "big")
        out["public_inputs"] = [
            "0x" + x.to_bytes(32, "big").hex() for x in (r >> 128, r & (2**128 - 1), count)
        ]
    return out


def leaf_job(plan: TreePlan, hashes: list[str], req: dict[str, Any]) -> dict[str, Any]:
    leaves = req.get("leaves") or []
    if not 1 <= len(leaves) <= plan.k:
        raise JobError("BAD_BATCH", "leaves", f"need 1..{plan.k} leaves, got {len(leaves)}")
    for i, x in enumerate(leaves):
        if str(x["vk"]).lower() != str(leaves[0]["vk"]).lower():
            raise JobError("BAD_BATCH", f"leaves[{i}].vk", "every proof of a leaf job must have the same vk")
        if len(x["public_inputs"]) != plan.npub:
            raise JobError("BAD_BATCH", f"leaves[{i}].public_inputs", f"takes exactly {plan.npub}")
    try:
        root = merkle_root([leaf_statement_hash(x) for x in leaves])
    except Exception as e:
        raise JobError("BAD_LEAF", "leaves[0]", str(e)) from None
    if os.environ.get("SHEAF_TREE_STANDIN_BAD_ROOT"):
        root = keccak256(root)
    return _output(plan, hashes, 0, root, len(leaves), bool(req.get("top")))


def merge_job(plan: TreePlan, hashes: list[str], level: int, req: dict[str, Any]) -> dict[str, Any]:
    kids = req.get("children") or []
    cap = plan.k * plan.fanin ** (level - 1)
    if not 1 <= len(kids) <= plan.fanin:
        raise JobError("BAD_BATCH", "children", f"need 1..{plan.fanin} children")
    roots, count = [], 0
    for i, o in enumerate(kids):
        f = f"children[{i}]"
        extra = sorted(set(o) - OUTPUT_FIELDS)
        if extra:  # the real worker decodes requests with DisallowUnknownFields
            raise JobError("MALFORMED", f"{f}.{extra[0]}", "unknown field")
        if o.get("circuit_hash") != hashes[level - 1] or o.get("top"):
            raise JobError(
                "WRONG_CIRCUIT", f, f"made by circuit {o.get('circuit_hash')} (top={o.get('top')})"
            )
        root, n = bytes.fromhex(str(o["node"]["root"])[2:]), int(o["node"]["count"])
        if o.get("proof") != proof_of(hashes[level - 1], root, n, False):
            raise JobError("BAD_CHILD", f + ".proof", "does not verify for its node")
        if i < len(kids) - 1 and n != cap:
            raise JobError("BAD_BATCH", f, f"a child before the last must be full ({cap}), has {n}")
        roots.append(root)
        count += n
    return _output(plan, hashes, level, fold(roots), count, bool(req.get("top")))


def main(argv: list[str]) -> int:
    if argv[:2] != ["tree", "serve"]:
        print(f"tree stand-in: only `tree serve`, not {argv[:2]}", file=sys.stderr)
        return 2
    args = argv[2:]

    def opt(name: str, default: str) -> str:
        return args[args.index(name) + 1] if name in args else default

    plan = TreePlan(
        int(opt("--k", "2")), int(opt("--npub", "1")), int(opt("--fanin", "4")), int(opt("--levels", "1"))
    )
    level = int(opt("--level", "-1"))
    default_cache = Path(os.environ.get("SHEAF_CACHE") or Path.home() / ".cache" / "sheaf") / "tree"
    cache = Path(opt("--cache", str(default_cache)))
    hashes = circuit_hashes(plan)
    if not 0 <= level <= plan.levels:
        print(f"sheaf-gnark tree: BAD_SHAPE at level: level must be in [0, {plan.levels}]", file=sys.stderr)
        return 1
    levels = []
    for lv in range(level + 1):
        d = cache / hashes[lv][:32]
        print(f"tree: level {lv} r1cs=7 compiled in 1ms, keys in {d}", file=sys.stderr, flush=True)
        need = ["meta.json", "vk.bin"] + (["pk.dump"] if lv == level else [])
        if not all((d / f).is_file() for f in need):
            print(
                f"sheaf-gnark tree: KEYS_MISSING at keys: level {lv} (circuit {hashes[lv]}): no keys in {d}; "
                "run `sheaf-gnark tree setup` with the same plan first",
                file=sys.stderr,
            )
            return 1
        levels.append(
            {
                "level": lv,
                "circuit_hash": hashes[lv],
                "nb_constraints": 7,
                "dir": str(d),
                "proves": lv == level,
            }
        )
    info = {
        "plan": {"leaf": {"k": plan.k, "npub": plan.npub}, "fan_in": plan.fanin, "levels": plan.levels},
        "capacity": plan.capacity,
        "levels": levels,
        "insecure_setup": True,
    }
    ready = {"process": "tree-prover", "protocol": 2, "max_line": 1 << 28, "workers": 1}
    _out(
        {
            "id": None,
            "ok": True,
            "event": "ready",
            "result": {**ready, "ops": ["info", "leaf", "merge"], **info},
        }
    )
    delay = float(os.environ.get("SHEAF_TREE_STANDIN_PROVE_S", "0.05"))
    exit_on = os.environ.get("SHEAF_TREE_STANDIN_EXIT_ON", "")
    for line in sys.stdin:
        req = json.loads(line)
        rid, op = req.get("id"), req.get("op")
        if op == exit_on:
            os._exit(3)  # a crash mid-job, as an OOM kill would look
        try:
            if op == "info":
                _out({"id": rid, "ok": True, "result": info})
                continue
            job_level = 0 if op == "leaf" else int(req.get("level", -1))
            if op not in ("leaf", "merge"):
                raise JobError("MALFORMED", "op", f"unknown op {op!r}")
            if job_level != level:
                raise JobError("WRONG_LEVEL", "level", f"this worker does not prove level {job_level}")
            time.sleep(delay)
            res = leaf_job(plan, hashes, req) if op == "leaf" else merge_job(plan, hashes, level, req)
            _out({"id": rid, "ok": True, "result": res})
        except JobError as e:
            _out({"id": rid, "ok": False, "error": {"code": e.code, "field": e.field, "message": e.message}})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
