"""A proving job: the self-contained, serializable unit of recursive proving.

    unit = ProofJob.for_batch(batch_id=7, domain_id=1, batch=2, npub=1, plonk=0,
                              circuit_hash="3950ea...", leaves=wire_leaves, statement_hashes=hashes)
    result = await prover.run_unit(unit)    # the local pool (aggregator.recursion.RecursiveProver)
    result = await queue.run(unit, ...)     # or any `aggregator worker` (aggregator.jobs_pg)

A unit carries everything a prover process needs and nothing of the aggregator: the outer circuit's
shape and hash (a worker proves only with the keys pinned by that hash), the leaves exactly as the
local path sends them to `sheaf-gnark aggregate serve` (canonical vk / proof / public inputs, hex;
gnark PLONK leaves with their canonical vk), the statement hashes the proof must name (the batch's
leaves, in order) and the bound on one attempt. Its id is derived from the batch (domain, batch id,
leaves) and the circuit, so enqueueing the same batch again names the same job. Its result is the
outer proof and the leaves the prover says it proved; `check_result` holds them to the unit.

The failure codes are the ones the aggregator already reports for its local worker
(sheaf_recursive_failures_total{code}, a failed batch's reason code); `RETRYABLE` are those another
attempt (another process, another worker) may cure. docs/operations.md lists them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aggregator.proving import ProvingFailed

# Stable failure codes (sheaf_recursive_failures_total{code}, batch/proof reason codes).
PROVER_UNAVAILABLE = (
    "PROVER_UNAVAILABLE"  # worker binary missing, cannot start / get ready; no worker took the job
)
PROVER_CRASHED = "PROVER_CRASHED"  # the prover process exited while proving
PROVER_TIMEOUT = "PROVER_TIMEOUT"  # no answer within prove_timeout_s (the process is killed)
PROVER_WORKER_ERROR = "PROVER_WORKER_ERROR"  # the process answered INTERNAL (or another code)
PROVER_BAD_LEAF = "PROVER_BAD_LEAF"  # a leaf the circuit cannot take (conversion or worker BAD_LEAF)
PROVER_LEAF_MISMATCH = "PROVER_LEAF_MISMATCH"  # recomputed statement hash / result leaves differ
PROVER_REJECTED = "PROVER_REJECTED"  # worker BAD_BATCH / BAD_SHAPE / MALFORMED / TOO_LARGE
CIRCUIT_MISMATCH = "CIRCUIT_MISMATCH"  # the prover's circuit is not the one the job (the chain) needs
# queue workers (aggregator worker):
KEYS_MISSING = "KEYS_MISSING"  # this worker has no keys pinned for the job's circuit hash
PROVER_LOST = "PROVER_LOST"  # the worker running the job stopped heartbeating (killed, lost host)
JOB_MALFORMED = "JOB_MALFORMED"  # the stored job cannot be read (another version wrote it?)

# another attempt, on another process or worker, may succeed
RETRYABLE = frozenset(
    {
        PROVER_UNAVAILABLE,
        PROVER_CRASHED,
        PROVER_TIMEOUT,
        PROVER_WORKER_ERROR,
        CIRCUIT_MISMATCH,
        KEYS_MISSING,
        PROVER_LOST,
    }
)

KIND_OUTER = "outer"  # the recursive outer proof (sheaf-gnark aggregate serve, op prove)
KIND_TREE = "tree"  # one recursion-tree job (sheaf-gnark tree serve --level L, op leaf or merge)
UNIT_VERSION = 1


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def _unhex(s: Any) -> bytes:
    return bytes.fromhex(str(s).removeprefix("0x"))


def shape_name(batch: int, npub: int, plonk: int = 0) -> str:
    return f"b{batch}_p{npub}" + (f"_k{plonk}" if plonk else "")


@dataclass(frozen=True)
class ProofJob:
    """One outer proof to compute (see the module docstring)."""

    job_id: str
    batch: int
    npub: int
    plonk: int
    circuit_hash: str  # full hex, no 0x; "" only on the local pool without a pinned circuit
    leaves: list[dict[str, Any]]  # worker leaves, as sent to `aggregate serve` (op prove)
    statement_hashes: list[bytes]  # what the proof must name, in order
    batch_id: int = 0
    domain_id: int = 0
    prove_timeout_s: float = 3600.0
    kind: str = KIND_OUTER

    @staticmethod
    def derive_id(
        *,
        kind: str,
        batch: int,
        npub: int,
        plonk: int,
        circuit_hash: str,
        domain_id: int,
        batch_id: int,
        statement_hashes: Sequence[bytes],
    ) -> str:
        """The job id of a batch: the same batch (domain, id, leaves) for the same circuit always
        names the same job, so a re-enqueue (a restarted or new leader) finds it."""
        h = hashlib.sha256()
        h.update(
            json.dumps(
                [kind, batch, npub, plonk, circuit_hash.lower(), domain_id, batch_id],
                separators=(",", ":"),
            ).encode()
        )
        for s in statement_hashes:
            h.update(bytes(s))
        return f"{kind}-{domain_id}-{batch_id}-{h.hexdigest()[:24]}"

    @classmethod
    def for_batch(
        cls,
        *,
        batch_id: int,
        domain_id: int,
        batch: int,
        npub: int,
        plonk: int,
        circuit_hash: str,
        leaves: Sequence[dict[str, Any]],
        statement_hashes: Sequence[bytes],
        prove_timeout_s: float = 3600.0,
    ) -> ProofJob:
        ch = circuit_hash.lower().removeprefix("0x")
        hashes = [bytes(s) for s in statement_hashes]
        jid = cls.derive_id(
            kind=KIND_OUTER,
            batch=batch,
            npub=npub,
            plonk=plonk,
            circuit_hash=ch,
            domain_id=domain_id,
            batch_id=batch_id,
            statement_hashes=hashes,
        )
        return cls(
            jid,
            batch,
            npub,
            plonk,
            ch,
            [dict(x) for x in leaves],
            hashes,
            batch_id,
            domain_id,
            prove_timeout_s,
        )

    @property
    def shape(self) -> str:
        return shape_name(self.batch, self.npub, self.plonk)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": UNIT_VERSION,
            "kind": self.kind,
            "job_id": self.job_id,
            "shape": {"batch": self.batch, "npub": self.npub, "plonk": self.plonk},
            "circuit_hash": self.circuit_hash,
            "leaves": self.leaves,
            "statement_hashes": [_hex(s) for s in self.statement_hashes],
            "batch_id": self.batch_id,
            "domain_id": self.domain_id,
            "prove_timeout_s": self.prove_timeout_s,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ProofJob:
        """The unit back from to_json(); ProvingFailed(JOB_MALFORMED) if it is not one."""
        try:
            if d.get("v") != UNIT_VERSION or d.get("kind") != KIND_OUTER:
                raise ValueError(f"unit version {d.get('v')!r} kind {d.get('kind')!r}")
            s = d["shape"]
            leaves = d["leaves"]
            if not isinstance(leaves, list) or not all(isinstance(x, dict) for x in leaves):
                raise ValueError("leaves must be a list of objects")
            return cls(
                str(d["job_id"]),
                int(s["batch"]),
                int(s["npub"]),
                int(s.get("plonk", 0)),
                str(d["circuit_hash"]).lower().removeprefix("0x"),
                leaves,
                [_unhex(h) for h in d["statement_hashes"]],
                int(d.get("batch_id", 0)),
                int(d.get("domain_id", 0)),
                float(d.get("prove_timeout_s", 3600.0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ProvingFailed(JOB_MALFORMED, f"not a proving job: {e}") from None


@dataclass(frozen=True)
class TreeJob:
    """One recursion-tree job (aggregator.tree_prover): a leaf job over K proofs of one vk or a merge
        over F children's outputs, at one level of a deployed plan. It carries what a `tree serve --level L`
        process needs (the plan, the request fields) and the circuit hashes of levels 0..L that pin the
        keys a worker may prove it with (level L's proving key, the vks below that its circuit embeds; the
    deployment's hashes of every level are carried, as TreeProver takes them).
        Its id is derived from the batch, the level's circuit and the job's inputs (digest of the
        statement hashes / children's nodes), so the same job enqueued again (a resumed or second leader)
        names the same row. Its result is the worker's Output, in JobResult.extra["output"]."""

    job_id: str
    plan: dict[str, int]  # k, npub, fanin, levels (sheaf.recursion_tree.TreePlan)
    level: int
    op: str  # "leaf" or "merge"
    fields: dict[str, Any]  # the request: {"leaves": [...]} or {"level": L, "children": [...]}, "top"
    circuit_hashes: list[str]  # every level's (index L: level L's), full hex, no 0x
    batch_id: int = 0
    domain_id: int = 0
    index: int = 0  # the job's index in its level
    prove_timeout_s: float = 3600.0
    kind: str = KIND_TREE

    @property
    def circuit_hash(self) -> str:
        """The circuit that proves this job: its level's (the job's queue, the keys it needs)."""
        return self.circuit_hashes[self.level]

    @property
    def shape(self) -> str:
        p = self.plan
        return f"tree_k{p['k']}_p{p['npub']}_f{p['fanin']}_d{p['levels']} level {self.level} {self.op}"

    @classmethod
    def for_node(
        cls,
        *,
        plan: dict[str, int],
        level: int,
        index: int,
        fields: dict[str, Any],
        circuit_hashes: Sequence[str],
        inputs: bytes,
        batch_id: int,
        domain_id: int,
        prove_timeout_s: float = 3600.0,
    ) -> TreeJob:
        hashes = [str(h).lower().removeprefix("0x") for h in circuit_hashes]
        h = hashlib.sha256(
            json.dumps(
                [KIND_TREE, plan, level, index, bool(fields.get("top")), hashes, domain_id, batch_id],
                sort_keys=True,
                separators=(",", ":"),
            ).encode()
            + bytes(inputs)
        )
        jid = f"{KIND_TREE}-{domain_id}-{batch_id}-l{level}-{index}-{h.hexdigest()[:24]}"
        op = "leaf" if level == 0 else "merge"
        return cls(
            jid, dict(plan), level, op, dict(fields), hashes, batch_id, domain_id, index, prove_timeout_s
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "v": UNIT_VERSION,
            "kind": self.kind,
            "job_id": self.job_id,
            "plan": self.plan,
            "level": self.level,
            "op": self.op,
            "fields": self.fields,
            "circuit_hashes": self.circuit_hashes,
            "batch_id": self.batch_id,
            "domain_id": self.domain_id,
            "index": self.index,
            "prove_timeout_s": self.prove_timeout_s,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TreeJob:
        """The job back from to_json(); ProvingFailed(JOB_MALFORMED) if it is not one."""
        try:
            if d.get("v") != UNIT_VERSION or d.get("kind") != KIND_TREE:
                raise ValueError(f"unit version {d.get('v')!r} kind {d.get('kind')!r}")
            plan = {k: int(d["plan"][k]) for k in ("k", "npub", "fanin", "levels")}
            level, op, fields = int(d["level"]), str(d["op"]), d["fields"]
            hashes = [str(h).lower().removeprefix("0x") for h in d["circuit_hashes"]]
            if op != ("leaf" if level == 0 else "merge") or not isinstance(fields, dict):
                raise ValueError(f"op {op!r} at level {level}")
            if len(hashes) != plan["levels"] + 1 or not 0 <= level <= plan["levels"]:
                raise ValueError(f"{len(hashes)} circuit hashes, level {level} of {plan['levels']}")
            return cls(
                str(d["job_id"]),
                plan,
                level,
                op,
                fields,
                hashes,
                int(d.get("batch_id", 0)),
                int(d.get("domain_id", 0)),
                int(d.get("index", 0)),
                float(d.get("prove_timeout_s", 3600.0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ProvingFailed(JOB_MALFORMED, f"not a tree job: {e}") from None


Unit = ProofJob | TreeJob  # what the job queue carries


def unit_from_json(d: dict[str, Any]) -> Unit:
    """A stored unit of either kind; ProvingFailed(JOB_MALFORMED) if it is neither."""
    if isinstance(d, dict) and d.get("kind") == KIND_TREE:
        return TreeJob.from_json(d)
    return ProofJob.from_json(d)


@dataclass(frozen=True)
class JobResult:
    """An outer proof for a unit: bytes for submitRecursiveAggregation, the leaves it names."""

    proof: bytes
    leaves: list[bytes]
    circuit_hash: str = ""
    prove_ms: int = 0
    worker: str = ""  # who computed it: "local" or the queue worker's name
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.leaves)

    def to_json(self) -> dict[str, Any]:
        return {
            "proof": _hex(self.proof),
            "leaves": [_hex(x) for x in self.leaves],
            "count": len(self.leaves),
            "circuit_hash": self.circuit_hash,
            "prove_ms": self.prove_ms,
            "worker": self.worker,
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> JobResult:
        try:
            return cls(
                _unhex(d["proof"]),
                [_unhex(x) for x in d["leaves"]],
                str(d.get("circuit_hash", "")),
                int(d.get("prove_ms", 0)),
                str(d.get("worker", "")),
                dict(d.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ProvingFailed(PROVER_WORKER_ERROR, f"unreadable job result: {e}") from None


def parse_prover_answer(
    unit: ProofJob, r: dict[str, Any], *, circuit_hash: str = "", worker: str = ""
) -> JobResult:
    """The `prove` op's answer ({leaves, count, proof, prove_ms}) as a JobResult, checked."""
    try:
        leaves = [_unhex(h) for h in r.get("leaves", [])]
        proof = _unhex(r.get("proof", ""))
    except (TypeError, ValueError):
        raise ProvingFailed(PROVER_WORKER_ERROR, "the prover answered unreadable hex") from None
    if int(r.get("count", -1)) != len(leaves):
        raise ProvingFailed(PROVER_LEAF_MISMATCH, "the prover's leaf count differs from its leaves")
    res = JobResult(proof, leaves, circuit_hash, int(r.get("prove_ms") or 0), worker)
    check_result(unit, res)
    return res


def check_result(unit: ProofJob, res: JobResult) -> None:
    """The result names exactly the unit's leaves (in order) and carries a proof; on the unit's
    circuit when both say which."""
    if res.leaves != list(unit.statement_hashes):
        raise ProvingFailed(PROVER_LEAF_MISMATCH, "the prover proved other leaves than the batch's")
    if not res.proof:
        raise ProvingFailed(PROVER_WORKER_ERROR, "the prover returned no proof")
    if unit.circuit_hash and res.circuit_hash and res.circuit_hash.lower() != unit.circuit_hash:
        raise ProvingFailed(
            CIRCUIT_MISMATCH,
            f"proved on circuit {res.circuit_hash[:16]}, the job needs {unit.circuit_hash[:16]}",
        )


def failure_json(e: ProvingFailed) -> dict[str, Any]:
    return {"code": str(e.code), "message": e.message, "bad_leaves": list(e.bad_leaves)}
