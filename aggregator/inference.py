"""Whole inferences (issue 17, docs/inference.md): model registration, SubmitInference (every slice of
one inference admitted as one unit, one id, one status) and GetInferenceReceipt (every inclusion
path, exactly SheafInference.verifyInference's `proofs` argument).

The spec is `sheaf.inference` (model id, registration checks, the receipt check): this module never
re-implements it. A submission is refused, before anything is stored, when it does not fit the
registered model (codes below); otherwise its proven slices go through the same admission as
SubmitProof (auth, limits, native verification, routing) and one group commit, then the inference
record is written. Resubmitting is idempotent: the id is the on-chain inferenceHash scoped by domain.

Stable codes (InvalidInput unless noted): UNKNOWN_MODEL (NotFound), MALFORMED (bad model id / kind),
DOMAIN_MISMATCH, MISSING_SLICE, SLICE_SCHEME_MISMATCH, SLICE_VK_MISMATCH (a slice of another model),
SLICE_WRONG_KIND (required RECURSIVE and the slice would be attested, or a slice stored before with
another kind), and the contract's own refusals
as SNAKE_CASE of its custom error: SLICE_COUNT_MISMATCH, UNPROVEN_SLICE_HAS_PROOF,
PUBLIC_INPUT_COUNT_MISMATCH, BROKEN_LINK (reordered slices, a slice proven on another input), and
at registration NO_SLICES, INVALID_SCHEME, ZERO_VK_HASH, ... (every ISheafInference registration
error). Field: `slices[i]` (or `slices[i].<field>` for an admission error of that slice's proof).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from aggregator import crypto
from aggregator.ingest import Ingest
from aggregator.metrics import Metrics
from aggregator.reads import Reads
from aggregator.records import KIND_ATTESTED, KIND_RECURSIVE, Inclusion, ProofRow, Status, Submission
from aggregator.store import StoreThread
from sheaf import inference as spec
from sheaf.errors import Internal, InvalidInput, NotFound, SheafError
from sheaf.schemes import Scheme

# ISheafInference errors whose first argument is a slice index
_SLICE_ERRORS = frozenset(
    name
    for name, sig in spec.ERROR_SIGNATURES.items()
    if sig.startswith(name + "(uint256") and name not in ("TooManySlices", "SliceCountMismatch")
)
KIND_NUMBER = {KIND_RECURSIVE: spec.KIND_RECURSIVE, KIND_ATTESTED: spec.KIND_ATTESTED}


def error_code(name: str) -> str:
    """The stable code of a contract error name: BrokenLink -> BROKEN_LINK."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def refusal(e: spec.InferenceError) -> InvalidInput:
    field = f"slices[{e.args_[0]!s}]" if e.error in _SLICE_ERRORS else "slices"
    return InvalidInput(error_code(e.error), field, str(e))


def spec_to_json(slices: Sequence[spec.SliceSpec]) -> str:
    return json.dumps([s.to_json() for s in slices], separators=(",", ":"))


def spec_from_json(text: str) -> list[spec.SliceSpec]:
    return [spec.SliceSpec.from_json(d) for d in json.loads(text)]


@dataclass(frozen=True)
class InferenceAck:
    inference_id: str
    inference_hash: bytes
    duplicate: bool
    status: Status
    proof_ids: tuple[str, ...]  # per slice, "" for an unproven one


@dataclass(frozen=True)
class InferenceRecord:
    inference_id: str
    domain_id: int
    model_id: bytes
    inference_hash: bytes
    required_kind: int
    proof_ids: tuple[str, ...]
    public_inputs: tuple[tuple[int, ...], ...]  # per slice, () for an unproven one


@dataclass(frozen=True)
class InferenceView:
    record: InferenceRecord
    status: Status
    slices: tuple[ProofRow | None, ...]  # None for an unproven slice


@dataclass(frozen=True)
class Receipt:
    record: InferenceRecord
    model: tuple[spec.SliceSpec, ...]
    proofs: tuple[spec.SliceProof, ...]  # verifyInference's argument
    inclusions: tuple[Inclusion | None, ...]
    result: spec.InferenceResult


def inference_status(rows: Sequence[ProofRow]) -> Status:
    """One status for the unit: FAILED/REJECTED if any proven slice is, else the lowest."""
    for bad in (Status.FAILED, Status.REJECTED):
        if any(r.status == bad for r in rows):
            return bad
    return min(r.status for r in rows)


class Inferences:
    def __init__(self, db: StoreThread, ingest: Ingest, reads: Reads, metrics: Metrics) -> None:
        self.db = db
        self.ingest = ingest
        self.reads = reads
        self.metrics = metrics
        metrics.describe("sheaf_inferences_total", "Whole-inference submissions by result")

    # -- models --

    async def register_model(self, slices: Sequence[spec.SliceSpec]) -> tuple[bytes, bool]:
        """Validate (the contract's checks and order) and store; returns (model id, already there)."""
        try:
            spec.validate_model(slices)
            mid = spec.model_id(slices)
        except spec.InferenceError as e:
            raise refusal(e) from e
        except (TypeError, ValueError) as e:  # out of the ABI types' range
            raise InvalidInput("MALFORMED", "slices", str(e)) from e
        new = await self.db.run(self.db.store.put_model, mid, spec_to_json(slices))
        return mid, not new

    async def model(self, model_id: bytes) -> list[spec.SliceSpec]:
        if len(model_id) != 32:
            raise InvalidInput("MALFORMED", "model_id", f"model_id must be 32 bytes, got {len(model_id)}")
        text = await self.db.run(self.db.store.get_model, model_id)
        if text is None:
            raise NotFound("UNKNOWN_MODEL", "model_id", f"no model 0x{model_id.hex()} registered here")
        return spec_from_json(text)

    # -- submission --

    async def submit(
        self,
        model_id: bytes,
        domain_id: int,
        required_kind: int,
        slices: Sequence[Submission | None],
    ) -> InferenceAck:
        try:
            ack = await self._submit(model_id, domain_id, required_kind, slices)
        except SheafError as e:
            self.metrics.inc("sheaf_inferences_total", result="rejected", code=str(e.code))
            raise
        self.metrics.inc("sheaf_inferences_total", result="duplicate" if ack.duplicate else "accepted")
        return ack

    def _fits(
        self, model: Sequence[spec.SliceSpec], slices: Sequence[Submission | None], domain: int
    ) -> None:
        """The cheap checks against the model, before any verification."""
        if len(slices) != len(model):
            raise refusal(spec.InferenceError("SliceCountMismatch", len(model), len(slices)))
        for i, (m, s) in enumerate(zip(model, slices, strict=True)):
            if not m.proven:
                if s is not None:
                    raise refusal(spec.InferenceError("UnprovenSliceHasProof", i))
                continue
            if s is None:
                raise InvalidInput(
                    "MISSING_SLICE", f"slices[{i}]", f"slice {i} is proven in the model: give its proof"
                )
            if s.domain_id not in (0, domain):
                raise InvalidInput(
                    "DOMAIN_MISMATCH",
                    f"slices[{i}].domain_id",
                    f"slice {i} names domain {s.domain_id}, not {domain}",
                )
            want = Scheme(m.scheme).label
            if s.scheme != want:
                raise InvalidInput(
                    "SLICE_SCHEME_MISMATCH",
                    f"slices[{i}].scheme",
                    f"slice {i} is {want} in the model, not {s.scheme!r}",
                )
            if s.vk_hash is not None and s.vk_hash != m.vk_hash:
                raise InvalidInput(
                    "SLICE_VK_MISMATCH",
                    f"slices[{i}].vk_hash",
                    f"slice {i}'s key is 0x{m.vk_hash.hex()} in the model",
                )

    async def _submit(
        self, model_id: bytes, domain_id: int, required_kind: int, slices: Sequence[Submission | None]
    ) -> InferenceAck:
        if not spec.KIND_ANY <= required_kind <= spec.KIND_ATTESTED:
            raise InvalidInput(
                "MALFORMED", "required_kind", f"required_kind must be 0, 1 or 2, not {required_kind}"
            )
        model = await self.model(model_id)
        domain = domain_id or self.reads.default_domain
        self._fits(model, slices, domain)
        proven = [i for i, m in enumerate(model) if m.proven]
        subs = [s for s in slices if s is not None]  # the proven slices' (checked by _fits)
        got = await asyncio.gather(
            *(self.ingest.admit(dataclasses.replace(s, domain_id=domain)) for s in subs),
            return_exceptions=True,
        )
        news = []
        pubs: list[tuple[int, ...]] = [() for _ in model]
        for i, r in zip(proven, got, strict=True):
            if isinstance(r, SheafError):
                raise type(r)(
                    r.code, f"slices[{i}].{r.field}" if r.field else f"slices[{i}]", r.message
                ) from r
            if isinstance(r, BaseException):
                raise r
            new, verdict = r
            if verdict.vk_hash != model[i].vk_hash:
                raise InvalidInput(
                    "SLICE_VK_MISMATCH",
                    f"slices[{i}].vk",
                    f"slice {i} was proven with key 0x{verdict.vk_hash.hex()}, "
                    f"the model's is 0x{model[i].vk_hash.hex()}",
                )
            if required_kind == spec.KIND_RECURSIVE and new.kind != KIND_RECURSIVE:
                raise InvalidInput(
                    "SLICE_WRONG_KIND",
                    f"slices[{i}]",
                    f"slice {i} cannot be aggregated RECURSIVE here (it would be attested)",
                )
            if required_kind == spec.KIND_ATTESTED:
                new = dataclasses.replace(new, kind=KIND_ATTESTED)
            if required_kind != spec.KIND_ANY:  # a slice stored before keeps the kind it was routed to
                old = await self.db.run(self.db.store.get_proof, new.proof_id)
                if old is not None and old.status != Status.FAILED and KIND_NUMBER[old.kind] != required_kind:
                    raise InvalidInput(
                        "SLICE_WRONG_KIND",
                        f"slices[{i}]",
                        f"slice {i} is already aggregated {old.kind}, not of the required kind",
                    )
            news.append(new)
            pubs[i] = tuple(int.from_bytes(p, "big") for p in verdict.public_inputs)
        # The receipt check itself (links, counts, output positions) with inclusion taken as given:
        # what verifyInference will refuse is refused now, with the contract's error name.
        proofs = [spec.SliceProof(public_inputs=p) for p in pubs]
        try:
            res = spec.verify_inference(model, proofs, spec.KIND_ANY, lambda *_: spec.KIND_ATTESTED)
        except spec.InferenceError as e:
            raise refusal(e) from e
        stmts = iter(n.statement_hash for n in news)
        for i in proven:  # the spec's statement hash is the verifier's (same vk hash and inputs)
            if spec.statement_hash(model[i].scheme, model[i].vk_hash, pubs[i]) != next(stmts):
                raise Internal("INTERNAL", f"slices[{i}]", "statement hash differs from the verifier's")
        results = await self.ingest.commit(news)
        ids = [""] * len(model)
        for i, done in zip(proven, results, strict=True):
            ids[i] = done.proof_id
        inf_id = f"{domain}-{res.inference_hash.hex()}"
        body = json.dumps({"proof_ids": ids, "public_inputs": [[hex(v) for v in p] for p in pubs]})
        new_rec = await self.db.run(
            self.db.store.put_inference, inf_id, domain, model_id, res.inference_hash, required_kind, body
        )
        status = inference_status([await self.reads.proof(ids[i]) for i in proven])
        return InferenceAck(inf_id, res.inference_hash, not new_rec, status, tuple(ids))

    # -- reads --

    async def record(self, inference_id: str) -> InferenceRecord:
        r = await self.db.run(self.db.store.get_inference, inference_id)
        if r is None:
            raise NotFound("UNKNOWN_INFERENCE", "inference_id", f"no inference {inference_id!r}")
        domain, mid, ih, kind, body = r
        d = json.loads(body)
        pubs = tuple(tuple(int(v, 16) for v in p) for p in d["public_inputs"])
        return InferenceRecord(inference_id, domain, mid, ih, kind, tuple(d["proof_ids"]), pubs)

    async def status(self, inference_id: str) -> InferenceView:
        rec = await self.record(inference_id)
        rows = [await self.reads.proof(p) if p else None for p in rec.proof_ids]
        return InferenceView(rec, inference_status([r for r in rows if r is not None]), tuple(rows))

    async def receipt(self, inference_id: str) -> Receipt:
        """Every proven slice's inclusion (NOT_FINALIZED until all are FINALIZED), checked with the
        spec's receipt check against the aggregations' roots before it is handed out."""
        view = await self.status(inference_id)
        rec = view.record
        if view.status != Status.FINALIZED:
            raise NotFound("NOT_FINALIZED", "inference_id", f"inference {inference_id} is {view.status.name}")
        model = await self.model(rec.model_id)
        incs = [await self.reads.inclusion(p) if p else None for p in rec.proof_ids]
        proofs = tuple(
            spec.SliceProof()
            if inc is None
            else spec.SliceProof(
                rec.public_inputs[i], inc.aggregation_id, tuple(inc.path), inc.leaf_count, inc.index
            )
            for i, inc in enumerate(incs)
        )
        roots = {(inc.aggregation_id, inc.leaf): inc for inc in incs if inc is not None}

        def included(agg: int, leaf: bytes, path: Sequence[bytes], n: int, index: int) -> int:
            inc = roots.get((agg, leaf))
            if inc is None or not crypto.verify_path(inc.root, leaf, path, n, index):
                return 0
            return KIND_NUMBER[inc.kind]

        try:
            res = spec.verify_inference(model, proofs, rec.required_kind, included)
        except spec.InferenceError as e:  # a slice was re-aggregated under another kind, or a bug
            raise Internal("RECEIPT_CHECK_FAILED", "inference_id", f"the receipt does not verify: {e}") from e
        return Receipt(rec, tuple(model), proofs, tuple(incs), res)


__all__ = [
    "InferenceAck",
    "InferenceRecord",
    "InferenceView",
    "Inferences",
    "Receipt",
    "error_code",
    "inference_status",
    "spec_from_json",
    "spec_to_json",
]
