"""grpc.aio front end: Aggregator and Operator services, plus standard health and reflection (v1 and
v1alpha).

Errors carry the stable code in trailing metadata `sheaf-error-code` and the offending field in
`sheaf-error-field`, and the same as standard rich error details (`grpc-status-details-bin`: a
google.rpc.Status with an ErrorInfo, reason = the code, domain "sheaf", metadata {"field": ...}, and
for INVALID_ARGUMENT a BadRequest naming the field); the gRPC status code says the class, from
sheaf.errors.status_of (the table the HTTP API uses too). A failing request never changes the
health status.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from aggregator.attesting import Attesting
from aggregator.inference import Inferences, InferenceView, Receipt
from aggregator.ingest import Ingest
from aggregator.reads import BATCH_STATES, MAX_CURSOR, Reads, next_cursor, page_args, submitter_filter
from aggregator.records import (
    KIND_ATTESTED,
    KIND_RECURSIVE,
    BatchRow,
    ChainInfo,
    Event,
    Inclusion,
    ProofRow,
    Status,
    Submission,
)
from aggregator.service import Service
from aggregator.store import ListedProof
from sheaf import inference as spec
from sheaf.errors import Internal, InvalidInput, SheafError, status_of
from sheaf.schemes import SCHEME_NAMES, Scheme
from sheaf.v1 import aggregator_pb2 as pb
from sheaf.v1 import aggregator_pb2_grpc as pbg

log = logging.getLogger("sheaf.grpc")
T = TypeVar("T")
SCHEME_ENUM = {s.label: int(s) for s in Scheme}  # proto SchemeKind numbers (sheaf.schemes checks them)
OPERATOR_LONG_POLL_MAX_S = 30.0  # FetchBatch never holds a request longer than this


ERROR_DOMAIN = "sheaf"  # google.rpc.ErrorInfo.domain of every Sheaf error


def rich_status(err: SheafError) -> grpc.Status:
    """The standard rich error model of `err`: a google.rpc.Status (the call's code and message) whose
    details are an ErrorInfo (reason = the stable code, domain "sheaf", metadata field) and, for a
    bad argument, a BadRequest field violation; grpcio-status packs it as `grpc-status-details-bin`."""
    code = grpc.StatusCode[status_of(err).grpc]
    st = status_pb2.Status(code=code.value[0], message=f"{err.code}: {err.field}: {err.message}")
    info = error_details_pb2.ErrorInfo(reason=str(err.code), domain=ERROR_DOMAIN)
    if err.field:
        info.metadata["field"] = err.field
    st.details.add().Pack(info)
    if code is grpc.StatusCode.INVALID_ARGUMENT and err.field:
        bad = error_details_pb2.BadRequest()
        bad.field_violations.add(field=err.field, description=err.message)
        st.details.add().Pack(bad)
    return rpc_status.to_status(st)


async def _abort(ctx: grpc.aio.ServicerContext[Any, Any], err: SheafError) -> None:
    """End the call with the status sheaf.errors.status_of gives `err` (the one table, shared with
    the HTTP API), its code and field in trailing metadata, beside the standard rich details."""
    rich = rich_status(err)
    ctx.set_trailing_metadata(
        (("sheaf-error-code", str(err.code)), ("sheaf-error-field", err.field), *rich.trailing_metadata)
    )
    await ctx.abort(rich.code, rich.details)


async def _guard(ctx: grpc.aio.ServicerContext[Any, Any], fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return await fn()
    except SheafError as e:
        await _abort(ctx, e)
    except grpc.aio.AbortError:
        raise
    except Exception:  # a bug: log it, answer a coded INTERNAL, never UNKNOWN with a traceback
        log.exception("unhandled error in a gRPC handler")
        await _abort(ctx, Internal("INTERNAL", "", "internal error; the aggregator's log has the details"))
    raise AssertionError("unreachable")  # abort raises


def _kind(k: str) -> pb.AggregationKind.ValueType:
    return pb.RECURSIVE if k == KIND_RECURSIVE else pb.ATTESTED


def _st(s: int) -> pb.ProofStatus.ValueType:
    return pb.ProofStatus.ValueType(int(s))


def _scheme(name: str) -> Any:
    return SCHEME_ENUM.get(name, 0)


def status_msg(row: ProofRow, batch: BatchRow | None, progress: str | None = None) -> pb.ProofStatusUpdate:
    """`progress`: Reads.batch_progress of the batch (GetProofStatus; unset when None)."""
    return pb.ProofStatusUpdate(
        proof_id=row.proof_id,
        status=_st(row.status),
        reason_code=row.reason_code,
        message=row.message,
        aggregation_id=(batch.aggregation_id or 0) if batch else 0,
        domain_id=row.domain_id,
        tx_hash=(batch.tx_hash or b"") if batch and row.status >= Status.SUBMITTED else b"",
        updated_unix_ms=row.updated_ms,
        scheme=_scheme(row.scheme),
        vk_hash=row.vk_hash,
        batch_id=batch.batch_id if batch else 0,
        progress=progress,
    )


def event_msg(e: Event, row: ProofRow) -> pb.ProofStatusUpdate:
    return pb.ProofStatusUpdate(
        proof_id=e.proof_id,
        status=_st(e.status),
        reason_code=e.reason_code,
        message=e.message,
        domain_id=row.domain_id,
        updated_unix_ms=e.ts_ms,
        scheme=_scheme(row.scheme),
        vk_hash=row.vk_hash,
    )


def inclusion_msg(inc: Inclusion, chain_id: int, registry: str) -> pb.InclusionProof:
    return pb.InclusionProof(
        proof_id=inc.proof_id,
        domain_id=inc.domain_id,
        aggregation_id=inc.aggregation_id,
        kind=_kind(inc.kind),
        root=inc.root,
        leaf=inc.leaf,
        merkle_path=inc.path,
        leaf_count=inc.leaf_count,
        index=inc.index,
        tx_hash=inc.tx_hash,
        block_number=inc.block_number,
        registry=registry,
        chain_id=chain_id,
    )


def slice_spec_msg(s: spec.SliceSpec) -> pb.SliceSpec:
    return pb.SliceSpec(
        proven=s.proven,
        scheme=s.scheme,  # type: ignore[arg-type]
        vk_hash=s.vk_hash if s.proven else b"",
        public_input_count=s.public_input_count,
        in_commit_index=s.in_commit_index,
        out_commit_index=s.out_commit_index,
        output_indices=list(s.output_indices),
    )


def slice_spec_from(m: Any) -> spec.SliceSpec:
    """An unproven slice's vk_hash may be sent empty (it is 32 zero bytes in the spec)."""
    return spec.SliceSpec(
        proven=bool(m.proven),
        scheme=int(m.scheme),
        vk_hash=bytes(m.vk_hash) or bytes(32),
        public_input_count=int(m.public_input_count),
        in_commit_index=int(m.in_commit_index),
        out_commit_index=int(m.out_commit_index),
        output_indices=tuple(int(x) for x in m.output_indices),
    )


def submission_from(request: Any, source: str = "") -> Submission:
    which = request.WhichOneof("key")
    return Submission(
        scheme=request.scheme,
        format=request.format,
        proof=request.proof,
        vk=request.vk if which == "vk" else None,
        vk_hash=request.vk_hash if which == "vk_hash" else None,
        public=request.public or None,
        settings=request.settings or None,
        domain_id=request.domain_id,
        prover=request.auth.prover,
        signature=request.auth.signature,
        nonce=request.auth.nonce,
        source=source,
    )


def peer_host(context: Any) -> str:
    """The client's address from gRPC's peer string ("ipv4:1.2.3.4:5", "ipv6:[::1]:5"); "" if none."""
    peer = str(context.peer() or "")
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return ""


def inference_status_msg(v: InferenceView, batches: Sequence[BatchRow | None]) -> pb.InferenceStatus:
    r = v.record
    return pb.InferenceStatus(
        inference_id=r.inference_id,
        model_id=r.model_id,
        domain_id=r.domain_id,
        inference_hash=r.inference_hash,
        status=_st(v.status),
        slices=[
            pb.ProofStatusUpdate() if row is None else status_msg(row, b)
            for row, b in zip(v.slices, batches, strict=True)
        ],
    )


def receipt_msg(rc: Receipt, chain_id: int, registry: str) -> pb.InferenceReceipt:
    r, res = rc.record, rc.result
    out = pb.InferenceReceipt(
        inference_id=r.inference_id,
        model_id=r.model_id,
        domain_id=r.domain_id,
        inference_hash=res.inference_hash,
        output=[v.to_bytes(32, "big") for v in res.output],
        output_slice=res.output_slice,
        input_commitment=res.segments[0].in_commit.to_bytes(32, "big"),
        registry=registry,
        chain_id=chain_id,
    )
    for p, inc in zip(rc.proofs, rc.inclusions, strict=True):
        if inc is None:
            out.slices.add(proven=False)
            continue
        out.slices.add(
            proven=True,
            proof_id=inc.proof_id,
            public_inputs=[v.to_bytes(32, "big") for v in p.public_inputs],
            aggregation_id=inc.aggregation_id,
            merkle_path=inc.path,
            leaf_count=inc.leaf_count,
            index=inc.index,
            kind=_kind(inc.kind),
            statement_hash=inc.leaf,
            root=inc.root,
            tx_hash=inc.tx_hash,
            block_number=inc.block_number,
        )
    return out


def aggregation_msg(b: BatchRow, leaves: Sequence[bytes] = ()) -> pb.Aggregation:
    return pb.Aggregation(
        domain_id=b.domain_id,
        aggregation_id=b.aggregation_id or 0,
        batch_id=b.batch_id,
        kind=_kind(b.kind),
        root=b.root,
        leaf_count=b.leaf_count,
        state=b.state,
        tx_hash=b.tx_hash or b"",
        block_number=b.block_number or 0,
        leaves=list(leaves),
        reason=b.reason,
        created_unix_ms=b.created_ms,
    )


def summary_msg(e: ListedProof, batches: dict[int, BatchRow]) -> pb.ProofSummary:
    """One ListProofs entry: the fields of GET /v1/proofs' entries (explorer.listed_json)."""
    r = e.row
    b = batches.get(r.batch_id) if r.batch_id is not None else None
    m = pb.ProofSummary(
        proof_id=r.proof_id,
        status=_st(r.status),
        reason_code=r.reason_code,
        message=r.message,
        domain_id=r.domain_id,
        scheme=_scheme(r.scheme),
        format=r.format,
        kind=_kind(r.kind),
        statement_hash=r.statement_hash,
        vk_hash=r.vk_hash,
        submitter=e.prover,
        batch_id=r.batch_id or 0,
        aggregation_id=(b.aggregation_id or 0) if b else 0,
        tx_hash=(b.tx_hash or b"") if b and r.status >= Status.SUBMITTED else b"",
        created_unix_ms=e.created_ms,
        updated_unix_ms=r.updated_ms,
    )
    if r.leaf_index is not None:
        m.leaf_index = r.leaf_index
    return m


def _hash_filter(v: bytes, name: str) -> bytes | None:
    if not v:
        return None
    if len(v) != 32:
        raise InvalidInput("MALFORMED", name, f"{name} must be 32 bytes (or empty: any)")
    return bytes(v)


def _domain_filter(request: Any) -> int | None:
    if not request.HasField("domain_id"):
        return None
    if request.domain_id > MAX_CURSOR:  # not storable (signed 64-bit), as the HTTP API's 0..2^63-1
        raise InvalidInput("MALFORMED", "domain_id", f"domain_id must be in 0..{MAX_CURSOR}")
    return int(request.domain_id)


def proof_filters(request: Any) -> dict[str, object]:
    """ListProofs' filters, checked as GET /v1/proofs checks its query (MALFORMED naming the field)."""
    status = int(request.status)
    if status and status not in {int(s) for s in Status}:
        raise InvalidInput("MALFORMED", "status", "status must be a ProofStatus (or UNSPECIFIED: any)")
    scheme = int(request.scheme)
    names = {v: k for k, v in SCHEME_ENUM.items() if k in SCHEME_NAMES}
    if scheme and scheme not in names:
        raise InvalidInput("MALFORMED", "scheme", "scheme must be a registered Scheme (or UNSPECIFIED: any)")
    return {
        "status": Status(status) if status else None,
        "scheme": names[scheme] if scheme else None,
        "prover": submitter_filter(request.submitter) if request.submitter else None,
        "domain_id": _domain_filter(request),
        "vk_hash": _hash_filter(request.vk_hash, "vk_hash"),
        "statement_hash": _hash_filter(request.statement_hash, "statement_hash"),
    }


def batch_filters(request: Any) -> dict[str, object]:
    """ListAggregations' filters, checked as GET /v1/batches checks its query."""
    if request.state and request.state not in BATCH_STATES:
        raise InvalidInput("MALFORMED", "state", f"state must be one of {', '.join(BATCH_STATES)}")
    kind = int(request.kind)
    if kind not in (0, pb.RECURSIVE, pb.ATTESTED):
        raise InvalidInput("MALFORMED", "kind", "kind must be RECURSIVE, ATTESTED (or UNSPECIFIED: any)")
    return {
        "domain_id": _domain_filter(request),
        "state": request.state or None,
        "kind": None if not kind else KIND_RECURSIVE if kind == pb.RECURSIVE else KIND_ATTESTED,
        "tx_hash": _hash_filter(request.tx_hash, "tx_hash"),
        "root": _hash_filter(request.root, "root"),
    }


class AggregatorService(pbg.AggregatorServicer):
    def __init__(
        self, ingest: Ingest, reads: Reads, chain: ChainInfo, inferences: Inferences | None = None
    ) -> None:
        self.ingest = ingest
        self.reads = reads
        self.chain = chain
        self.inferences = inferences or Inferences(reads.db, ingest, reads, ingest.metrics)

    async def RegisterVerifyingKey(self, request: Any, context: Any) -> pb.RegisterVerifyingKeyResponse:
        async def go() -> pb.RegisterVerifyingKeyResponse:
            h = await self.ingest.register_vk(
                request.scheme, request.format, request.vk, request.settings or None
            )
            return pb.RegisterVerifyingKeyResponse(vk_hash=h)

        return await _guard(context, go)

    async def SubmitProof(self, request: Any, context: Any) -> pb.SubmitProofResponse:
        async def go() -> pb.SubmitProofResponse:
            r = await self.ingest.submit(submission_from(request, peer_host(context)))
            return pb.SubmitProofResponse(
                proof_id=r.proof_id,
                statement_hash=r.statement_hash,
                duplicate=r.duplicate,
                status=_st(r.status),
            )

        return await _guard(context, go)

    async def GetProofStatus(self, request: Any, context: Any) -> pb.ProofStatusUpdate:
        async def go() -> pb.ProofStatusUpdate:
            row = await self.reads.proof(request.proof_id)
            b = await self.reads.batch_for(row)
            return status_msg(row, b, self.reads.batch_progress(b))

        return await _guard(context, go)

    async def WatchProof(self, request: Any, context: Any) -> AsyncIterator[pb.ProofStatusUpdate]:
        try:
            row = await self.reads.proof(request.proof_id)
        except SheafError as e:
            await _abort(context, e)
            return
        async for ev in self.reads.watch(request.proof_id):
            msg = event_msg(ev, row)
            if ev.status >= Status.AGGREGATING:
                cur = await self.reads.proof(request.proof_id)
                b = await self.reads.batch_for(cur)
                if b is not None:
                    msg.batch_id = b.batch_id
                    msg.aggregation_id = b.aggregation_id or 0
                    if ev.status >= Status.SUBMITTED:
                        msg.tx_hash = b.tx_hash or b""
            yield msg
            if ev.status == Status.FINALIZED:
                return

    async def GetAggregation(self, request: Any, context: Any) -> pb.Aggregation:
        async def go() -> pb.Aggregation:
            b, rows = await self.reads.aggregation(
                request.domain_id or self.reads.default_domain, request.aggregation_id
            )
            return aggregation_msg(b, [r.statement_hash for r in rows])

        return await _guard(context, go)

    async def GetInclusionProof(self, request: Any, context: Any) -> pb.InclusionProof:
        async def go() -> pb.InclusionProof:
            inc = await self.reads.inclusion(request.proof_id)
            return inclusion_msg(inc, self.chain.chain_id, self.chain.registry)

        return await _guard(context, go)

    # -- lists (the HTTP list API's twins: GET /v1/proofs and /v1/batches) --

    async def ListProofs(self, request: Any, context: Any) -> pb.ListProofsResponse:
        async def go() -> pb.ListProofsResponse:
            limit, cursor = page_args(request.limit, request.cursor)
            page, batches = await self.reads.list_proofs(limit + 1, cursor, **proof_filters(request))
            return pb.ListProofsResponse(
                proofs=[summary_msg(e, batches) for e in page[:limit]],
                next_cursor=next_cursor([e.cursor for e in page], limit) or "",
            )

        return await _guard(context, go)

    async def ListAggregations(self, request: Any, context: Any) -> pb.ListAggregationsResponse:
        async def go() -> pb.ListAggregationsResponse:
            limit, cursor = page_args(request.limit, request.cursor)
            page = await self.reads.list_batches(limit + 1, cursor, **batch_filters(request))
            return pb.ListAggregationsResponse(
                aggregations=[aggregation_msg(b) for b in page[:limit]],
                next_cursor=next_cursor([b.batch_id for b in page], limit) or "",
            )

        return await _guard(context, go)

    # -- whole inferences (aggregator/inference.py) --

    async def RegisterModel(self, request: Any, context: Any) -> pb.RegisterModelResponse:
        async def go() -> pb.RegisterModelResponse:
            mid, dup = await self.inferences.register_model([slice_spec_from(m) for m in request.slices])
            return pb.RegisterModelResponse(model_id=mid, duplicate=dup)

        return await _guard(context, go)

    async def GetModel(self, request: Any, context: Any) -> pb.Model:
        async def go() -> pb.Model:
            slices = await self.inferences.model(request.model_id)
            return pb.Model(model_id=request.model_id, slices=[slice_spec_msg(s) for s in slices])

        return await _guard(context, go)

    async def SubmitInference(self, request: Any, context: Any) -> pb.SubmitInferenceResponse:
        async def go() -> pb.SubmitInferenceResponse:
            src = peer_host(context)
            slices = [submission_from(x.proof, src) if x.HasField("proof") else None for x in request.slices]
            a = await self.inferences.submit(
                request.model_id, request.domain_id, int(request.required_kind), slices
            )
            return pb.SubmitInferenceResponse(
                inference_id=a.inference_id,
                inference_hash=a.inference_hash,
                duplicate=a.duplicate,
                status=_st(a.status),
                proof_ids=list(a.proof_ids),
            )

        return await _guard(context, go)

    async def GetInferenceStatus(self, request: Any, context: Any) -> pb.InferenceStatus:
        async def go() -> pb.InferenceStatus:
            v = await self.inferences.status(request.inference_id)
            batches = [None if r is None else await self.reads.batch_for(r) for r in v.slices]
            return inference_status_msg(v, batches)

        return await _guard(context, go)

    async def GetInferenceReceipt(self, request: Any, context: Any) -> pb.InferenceReceipt:
        async def go() -> pb.InferenceReceipt:
            rc = await self.inferences.receipt(request.inference_id)
            return receipt_msg(rc, self.chain.chain_id, self.chain.registry)

        return await _guard(context, go)


class OperatorService(pbg.OperatorServicer):
    def __init__(self, attesting: Attesting, chain: ChainInfo) -> None:
        self.attesting = attesting
        self.chain = chain

    async def FetchBatch(self, request: Any, context: Any) -> pb.AttestationTask:
        async def go() -> pb.AttestationTask:
            wait = min(request.wait_ms / 1000, OPERATOR_LONG_POLL_MAX_S)
            left = context.time_remaining()
            if left is not None:
                wait = max(0.0, min(wait, left - 0.2))
            if request.HasField("srs_id"):  # the operator's SRS id: a mismatch fails here, not in a batch
                self.attesting.check_srs(request.operator, request.srs_id)
            got = await self.attesting.fetch_task(request.operator, wait)
            if got is None:
                return pb.AttestationTask(has_batch=False)
            b, rows, deadline = got
            return pb.AttestationTask(
                has_batch=True,
                batch_id=b.batch_id,
                domain_id=b.domain_id,
                aggregation_id=b.aggregation_id or 0,
                root=b.root,
                leaf_count=b.leaf_count,
                chain_id=self.chain.chain_id,
                registry=self.chain.registry,
                deadline=deadline,
                items=[
                    pb.BatchItem(
                        scheme=r.scheme,
                        format=r.format,
                        proof=r.proof,
                        vk=r.vk,
                        public=r.public or b"",
                        settings=r.settings or b"",
                        statement_hash=r.statement_hash,
                    )
                    for r in rows
                ],
            )

        return await _guard(context, go)

    async def SubmitAttestation(self, request: Any, context: Any) -> pb.SubmitAttestationResponse:
        async def go() -> pb.SubmitAttestationResponse:
            ok, n = await self.attesting.attest(
                request.operator,
                request.batch_id,
                request.root,
                request.signature,
                request.refusal_code,
                list(request.bad_statements),
                refusal_message=request.refusal_message,
                deadline=request.deadline,
            )
            return pb.SubmitAttestationResponse(accepted=ok, signatures=n, threshold=self.attesting.threshold)

        return await _guard(context, go)


class _Undecodable:
    def __init__(self, err: str) -> None:
        self.err = err


def _safe_deserializer(cls: Any) -> Callable[[bytes], Any]:
    def de(b: bytes) -> Any:
        try:
            return cls.FromString(b)
        except Exception as e:  # protobuf DecodeError: the client's fault, not ours
            return _Undecodable(str(e))

    return de


def _malformed(req: _Undecodable) -> InvalidInput:
    return InvalidInput(
        "MALFORMED_REQUEST", "request", f"cannot decode the protobuf request: {req.err}"[:200]
    )


def _wrap_unary(fn: Any) -> Any:
    async def h(req: Any, ctx: Any) -> Any:
        if isinstance(req, _Undecodable):
            await _abort(ctx, _malformed(req))
        return await fn(req, ctx)

    return h


def _wrap_stream(fn: Any) -> Any:
    async def h(req: Any, ctx: Any) -> Any:
        if isinstance(req, _Undecodable):
            await _abort(ctx, _malformed(req))
            return
        async for x in fn(req, ctx):
            yield x

    return h


def add_service(server: grpc.aio.Server, servicer: Any, name: str) -> None:
    """Like the generated add_*_to_server, but undecodable requests become INVALID_ARGUMENT with a code
    instead of grpc's UNKNOWN from an exception in the deserializer."""
    desc = pb.DESCRIPTOR.services_by_name[name]
    handlers = {}
    for m in desc.methods:
        req_cls, resp_cls = getattr(pb, m.input_type.name), getattr(pb, m.output_type.name)
        fn = getattr(servicer, m.name)
        if m.server_streaming:
            handlers[m.name] = grpc.unary_stream_rpc_method_handler(
                _wrap_stream(fn),
                request_deserializer=_safe_deserializer(req_cls),
                response_serializer=resp_cls.SerializeToString,
            )
        else:
            handlers[m.name] = grpc.unary_unary_rpc_method_handler(
                _wrap_unary(fn),
                request_deserializer=_safe_deserializer(req_cls),
                response_serializer=resp_cls.SerializeToString,
            )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(desc.full_name, handlers),))
    server.add_registered_method_handlers(desc.full_name, handlers)


# Server reflection v1 (grpc.reflection.v1.ServerReflection, what grpcurl and current clients ask
# first). grpcio-reflection 1.85 serves only v1alpha; v1 is the same proto under another package
# (identical messages, field numbers and method), so the v1alpha servicer answers v1 calls
# unchanged on the wire. Its descriptor is v1alpha's renamed, so v1 can itself be reflected.
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def _reflection_v1_descriptor() -> None:
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    fdp = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(fdp)
    old, new = ".grpc.reflection.v1alpha.", ".grpc.reflection.v1."
    fdp.name, fdp.package = _V1_FILE, "grpc.reflection.v1"
    fdp.ClearField("options")
    for m in fdp.message_type:
        for f in m.field:
            if f.HasField("type_name"):
                f.type_name = f.type_name.replace(old, new)
    for svc in fdp.service:
        for meth in svc.method:
            meth.input_type = meth.input_type.replace(old, new)
            meth.output_type = meth.output_type.replace(old, new)
    pool.Add(fdp)


def add_reflection(server: grpc.aio.Server, names: Sequence[str]) -> None:
    """Reflection v1alpha (grpcio-reflection) and v1 (the same servicer under the v1 name)."""
    _reflection_v1_descriptor()
    servicer = reflection.aio.ReflectionServicer(names)  # the public asyncio servicer
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(REFLECTION_V1, v1),))


class GrpcServer:
    """Serves a Service's ingest and reads (Aggregator) and attesting (Operator) parts."""

    def __init__(self, service: Service, listen: str) -> None:
        mx = service.cfg.max_message_bytes
        # A little headroom over the payload limit for the protobuf framing of the other fields.
        opts = [
            ("grpc.max_receive_message_length", mx + 64 * 1024),
            ("grpc.max_send_message_length", 1 << 30),
        ]
        self.server = grpc.aio.server(options=opts)
        add_service(
            self.server,
            AggregatorService(service.ingest, service.reads, service.chain, service.inferences),
            "Aggregator",
        )
        add_service(self.server, OperatorService(service.attesting, service.chain), "Operator")
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = (
            pb.DESCRIPTOR.services_by_name["Aggregator"].full_name,
            pb.DESCRIPTOR.services_by_name["Operator"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            REFLECTION_V1,
            reflection.SERVICE_NAME,
        )
        add_reflection(self.server, names)
        self.port = self.server.add_insecure_port(listen)
        if self.port == 0:
            raise OSError(f"cannot listen on {listen}")

    async def start(self) -> None:
        await self.server.start()
        for name in ("", "sheaf.v1.Aggregator", "sheaf.v1.Operator"):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float = 5.0) -> None:
        for name in ("", "sheaf.v1.Aggregator", "sheaf.v1.Operator"):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.stop(grace)
