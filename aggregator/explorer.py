"""The HTTP list API (proofs, batches, search, overview), the status streams (server-sent events)
and the explorer web UI (static files in aggregator/explorer_static/, plain HTML + JS that reads
the same JSON API). Registered on the aggregator's HTTP server by `register` (docs/explorer.md,
docs/openapi.yaml).

Query parameters are checked strictly: an unknown or repeated parameter, or a value out of its
domain, is a 400 `MALFORMED` naming the parameter in `field`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from aggregator.chain import RpcError
from aggregator.inference import inference_status
from aggregator.reads import (
    BATCH_STATES,
    DEFAULT_LIMIT,
    DIRECT_VERIFY_GAS,
    KINDS,
    MAX_CURSOR,
    MAX_LIMIT,
    Reads,
    activity,
    direct_gas,
    inclusion_check_gas,
    kind_name,
    kind_of,
    next_cursor,
    submitter_filter,
)
from aggregator.records import KIND_RECURSIVE, BatchRow, BatchState, ChainInfo, ProofRow, Status
from aggregator.store import ListedInference, ListedProof
from sheaf.errors import InvalidInput, Unavailable
from sheaf.lru import LRU
from sheaf.schemes import SCHEME_NAMES

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("explorer_static")


class ChainCalls(Protocol):
    """What the explorer asks the chain (aggregator.chain.Chain; shares the submitter's connection)."""

    async def verify_inclusion(
        self,
        domain_id: int,
        aggregation_id: int,
        leaf: bytes,
        path: Sequence[bytes],
        leaf_count: int,
        index: int,
    ) -> bool:
        """verifyProofAggregation(domain, aggregation, leaf, path, leaf count, index)"""
        ...

    async def gas_used(self, tx_hash: bytes) -> int:
        """A mined transaction's gasUsed."""
        ...


_NUM = re.compile(r"[0-9]{1,19}")
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_INFERENCE_ID = re.compile(r"[0-9]{1,19}-[0-9a-fA-F]{64}")  # "<domain>-<inference hash hex>"
# an inference page's cursor: "<created_ms>.<inference id>" of the page's last entry (opaque to clients)
_INFERENCE_CURSOR = re.compile(r"([0-9]{1,19})\.([0-9]{1,19}-[0-9a-f]{64})")
# the on-chain check shares the submitter's RPC connection: few calls at once, answers kept briefly
VERIFY_CONCURRENCY = 4
VERIFY_CACHE_S = 10.0
# the overview (GET /v1/overview): activity in ACTIVITY_BUCKETS one-minute buckets from the status
# events in that window, at most ACTIVITY_EVENTS of them (~7 per proof: at heavy load the older
# buckets are marked incomplete rather than read from an unbounded scan); the estimated gas saved
# by the newest GAS_AGGREGATIONS finalized aggregations; recomputed at most every OVERVIEW_CACHE_S
# for everyone
ACTIVITY_BUCKETS = 30
ACTIVITY_BUCKET_MS = 60_000
ACTIVITY_EVENTS = 20_000
IN_FLIGHT_LIMIT = 20
GAS_AGGREGATIONS = 50
RECEIPT_TIMEOUT_S = 5.0
# receipts are read at most this many per computation (the first one after a start has up to
# GAS_AGGREGATIONS to read), and one that failed is not asked for again for RECEIPT_RETRY_S: a node
# that is down must not hold every overview for GAS_AGGREGATIONS x RECEIPT_TIMEOUT_S
RECEIPTS_PER_OVERVIEW = 10
RECEIPT_RETRY_S = 30.0
OVERVIEW_CACHE_S = 2.0
# the explorer's documents run only their own scripts and styles and talk only to this server
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + b.hex()


class Query:
    """The request's query parameters, each allowed name at most once."""

    def __init__(self, request: web.Request, allowed: frozenset[str]) -> None:
        q = request.rel_url.query
        for k in q:
            if k not in allowed:
                raise InvalidInput(
                    "MALFORMED", k[:40], f"unknown query parameter (allowed: {', '.join(sorted(allowed))})"
                )
            if len(q.getall(k)) > 1:
                raise InvalidInput("MALFORMED", k, f"{k} is given more than once")
        self.q = q

    def get(self, name: str) -> str | None:
        return self.q.get(name)

    def number(self, name: str, lo: int, hi: int) -> int | None:
        v = self.q.get(name)
        if v is None:
            return None
        if not _NUM.fullmatch(v) or not lo <= int(v) <= hi:
            raise InvalidInput("MALFORMED", name, f"{name} must be an integer in {lo}..{hi}")
        return int(v)

    def choice(self, name: str, choices: tuple[str, ...]) -> str | None:
        v = self.q.get(name)
        if v is not None and v not in choices:
            raise InvalidInput("MALFORMED", name, f"{name} must be one of {', '.join(choices)}")
        return v

    def hash32(self, name: str) -> bytes | None:
        v = self.q.get(name)
        if v is None:
            return None
        if not _HASH.fullmatch(v):
            raise InvalidInput("MALFORMED", name, f"{name} must be 0x followed by 64 hex digits")
        return bytes.fromhex(v[2:])

    def page(self) -> tuple[int, int | None]:
        limit = self.number("limit", 1, MAX_LIMIT)
        return limit or DEFAULT_LIMIT, self.number("cursor", 1, MAX_CURSOR)


def batch_json(b: BatchRow) -> dict[str, Any]:
    return {
        "batch_id": b.batch_id,
        "domain_id": b.domain_id,
        "aggregation_id": b.aggregation_id,
        "kind": kind_name(b.kind),
        "root": _hex(b.root),
        "leaf_count": b.leaf_count,
        "state": b.state,
        "tx_hash": _hex(b.tx_hash),
        "block_number": b.block_number,
        "reason": b.reason,
        "created_unix_ms": b.created_ms,
    }


def listed_json(e: ListedProof, batches: dict[int, BatchRow]) -> dict[str, Any]:
    r = e.row
    b = batches.get(r.batch_id) if r.batch_id is not None else None
    return {
        "proof_id": r.proof_id,
        "status": r.status.name,
        "reason_code": r.reason_code,
        "message": r.message,
        "domain_id": r.domain_id,
        "scheme": r.scheme,
        "format": r.format,
        "kind": kind_name(r.kind),
        "statement_hash": _hex(r.statement_hash),
        "vk_hash": _hex(r.vk_hash),
        "submitter": e.prover or None,
        "batch_id": r.batch_id,
        "leaf_index": r.leaf_index,
        "aggregation_id": b.aggregation_id if b else None,
        "tx_hash": _hex(b.tx_hash) if b and r.status >= Status.SUBMITTED else None,
        "created_unix_ms": e.created_ms,
        "updated_unix_ms": r.updated_ms,
    }


def inference_json(e: ListedInference, rows: list[ProofRow | None]) -> dict[str, Any]:
    """A list entry of GET /v1/inferences: the unit's status as GET /v1/inferences/{id} gives it (the
    lowest of its proven slices', FAILED/REJECTED if any is) and each slice's proof and status."""
    return {
        "inference_id": e.inference_id,
        "model_id": _hex(e.model_id),
        "domain_id": e.domain_id,
        "inference_hash": _hex(e.inference_hash),
        "required_kind": e.required_kind,
        "status": inference_status([r for r in rows if r is not None]).name,
        "slices": [None if r is None else {"proof_id": r.proof_id, "status": r.status.name} for r in rows],
        "created_unix_ms": e.created_ms,
    }


def _leaf_json(r: ProofRow) -> dict[str, Any]:
    return {
        "proof_id": r.proof_id,
        "leaf_index": r.leaf_index,
        "statement_hash": _hex(r.statement_hash),
        "status": r.status.name,
        "scheme": r.scheme,
    }


def _sse_frame(event: str, data: dict[str, Any], ev_id: int | None = None) -> bytes:
    head = f"id: {ev_id}\n" if ev_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _sse(
    request: web.Request, frames: AsyncIterator[bytes | None], stopping: Callable[[], bool]
) -> web.StreamResponse:
    """Streams `frames` as text/event-stream (None: a keep-alive comment), then an `end` event, unless
    the server is stopping: then the stream just closes, so that an EventSource reconnects (with
    Last-Event-ID) to this server restarted or to another instance instead of giving up."""
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    await resp.prepare(request)
    try:
        await resp.write(b"retry: 3000\n\n")
        async for f in frames:
            await resp.write(f if f is not None else b": keep-alive\n\n")
        if not stopping():
            await resp.write(_sse_frame("end", {}))
    except ConnectionError:  # the client went away
        pass
    return resp


class ListApi:
    def __init__(self, reads: Reads, chain: ChainInfo, calls: ChainCalls | None = None) -> None:
        self.reads = reads
        self.chain = chain
        self.calls = calls  # None: no chain connection (no on-chain check, no gas figures)
        self._verify_slots = asyncio.Semaphore(VERIFY_CONCURRENCY)
        self._verified: LRU[str, tuple[float, bool]] = LRU(1024)  # proof id -> (monotonic time, answer)
        self._gas_of: LRU[int, tuple[int | None, int, int]] = LRU(4 * GAS_AGGREGATIONS)  # by batch id
        self._gas_failed: LRU[int, float] = LRU(4 * GAS_AGGREGATIONS)  # batch id -> monotonic time
        self._overview: tuple[float, dict[str, Any]] | None = None  # (monotonic time, body)
        self._overview_lock = asyncio.Lock()

    async def verify(self, request: web.Request) -> web.Response:
        """Asks the registry now: verifyProofAggregation with the proof's receipt (the explorer's
        "check on chain" button). 404 NOT_FINALIZED before there is a receipt."""
        Query(request, frozenset())
        inc = await self.reads.inclusion(request.match_info["proof_id"])
        if self.calls is None:
            raise Unavailable("RPC_UNAVAILABLE", "chain", "this server has no chain connection")
        hit = self._verified.get(inc.proof_id)
        if hit is not None and time.monotonic() - hit[0] < VERIFY_CACHE_S:
            ok = hit[1]
        else:
            try:
                async with self._verify_slots:
                    ok = await self.calls.verify_inclusion(
                        inc.domain_id, inc.aggregation_id, inc.leaf, inc.path, inc.leaf_count, inc.index
                    )
            except RpcError as e:
                raise Unavailable("RPC_UNAVAILABLE", "chain", f"the chain did not answer: {e}") from e
            self._verified.put(inc.proof_id, (time.monotonic(), ok))
        return web.json_response(
            {
                "proof_id": inc.proof_id,
                "verified": ok,
                "function": "verifyProofAggregation(uint256,uint256,bytes32,bytes32[],uint256,uint256)",
                "args": [
                    inc.domain_id,
                    inc.aggregation_id,
                    _hex(inc.leaf),
                    [_hex(p) for p in inc.path],
                    inc.leaf_count,
                    inc.index,
                ],
                "chain_id": self.chain.chain_id,
                "registry": self.chain.registry,
            }
        )

    async def proofs(self, request: web.Request) -> web.Response:
        q = Query(
            request,
            frozenset(
                {"limit", "cursor", "status", "scheme", "submitter", "domain_id", "vk_hash", "statement_hash"}
            ),
        )
        limit, cursor = q.page()
        st = q.choice("status", tuple(s.name for s in Status))
        sub = q.get("submitter")
        page, batches = await self.reads.list_proofs(
            limit + 1,
            cursor,
            status=Status[st] if st else None,
            scheme=q.choice("scheme", tuple(SCHEME_NAMES)),
            prover=submitter_filter(sub) if sub is not None else None,
            domain_id=q.number("domain_id", 0, (1 << 63) - 1),
            vk_hash=q.hash32("vk_hash"),
            statement_hash=q.hash32("statement_hash"),
        )
        return web.json_response(
            {
                "proofs": [listed_json(e, batches) for e in page[:limit]],
                "next_cursor": next_cursor([e.cursor for e in page], limit),
            }
        )

    async def batches(self, request: web.Request) -> web.Response:
        q = Query(request, frozenset({"limit", "cursor", "domain_id", "state", "kind", "tx_hash", "root"}))
        limit, cursor = q.page()
        page = await self.reads.list_batches(
            limit + 1,
            cursor,
            domain_id=q.number("domain_id", 0, (1 << 63) - 1),
            state=q.choice("state", BATCH_STATES),
            kind=None if (k := q.choice("kind", KINDS)) is None else kind_of(k),
            tx_hash=q.hash32("tx_hash"),
            root=q.hash32("root"),
        )
        return web.json_response(
            {
                "batches": [batch_json(b) for b in page[:limit]],
                "next_cursor": next_cursor([b.batch_id for b in page], limit),
            }
        )

    async def _inference_rows(self, e: ListedInference) -> list[ProofRow | None]:
        # the record's slice proof ids, as Inferences.record reads them (a JSON body, "" = unproven)
        ids = json.loads(e.slices_json)["proof_ids"]
        return [await self.reads.db.run(self.reads.db.store.get_proof, p) if p else None for p in ids]

    async def inferences(self, request: web.Request) -> web.Response:
        q = Query(request, frozenset({"limit", "cursor", "domain_id", "model_id"}))
        limit = q.number("limit", 1, MAX_LIMIT) or DEFAULT_LIMIT
        raw = q.get("cursor")
        before = None
        if raw is not None:
            m = _INFERENCE_CURSOR.fullmatch(raw)
            if m is None:
                raise InvalidInput("MALFORMED", "cursor", "cursor must be a next_cursor from a previous page")
            before = (int(m.group(1)), m.group(2))
        page = await self.reads.db.run(
            self.reads.db.store.list_inferences,
            limit + 1,
            before,
            domain_id=q.number("domain_id", 0, MAX_CURSOR),
            model_id=q.hash32("model_id"),
        )
        last = page[limit - 1] if len(page) > limit else None
        return web.json_response(
            {
                "inferences": [inference_json(e, await self._inference_rows(e)) for e in page[:limit]],
                "next_cursor": None if last is None else f"{last.created_ms}.{last.inference_id}",
            }
        )

    async def batch(self, request: web.Request) -> web.Response:
        Query(request, frozenset())
        b, rows, sigs = await self.reads.batch(_path_number(request, "batch_id"))
        return web.json_response(
            {
                **batch_json(b),
                "proofs": [_leaf_json(r) for r in rows],
                "signatures": [
                    {"operator": op, "signed": sig is not None, "refusal": code} for op, sig, code in sigs
                ],
                "chain_id": self.chain.chain_id,
                "registry": self.chain.registry,
            }
        )

    async def search(self, request: web.Request) -> web.Response:
        q = Query(request, frozenset({"q"}))
        text = q.get("q")
        if not text:
            raise InvalidInput("MALFORMED", "q", "q is required")
        if _INFERENCE_ID.fullmatch(text.strip()):  # a proof or inference id as copied, any case
            text = text.strip().lower()
        proofs, batches = await self.reads.search(text[:200])
        found = await self.reads.batches_by_id({p.row.batch_id for p in proofs if p.row.batch_id is not None})
        inferences = []
        if _INFERENCE_ID.fullmatch(iid := text.strip()):  # an inference id has a proof id's shape
            hit = await self.reads.db.run(self.reads.db.store.list_inferences, 1, None, inference_id=iid)
            inferences = [inference_json(e, await self._inference_rows(e)) for e in hit]
        return web.json_response(
            {
                "proofs": [listed_json(p, found) for p in proofs],
                "batches": [batch_json(b) for b in batches],
                "inferences": inferences,
            }
        )

    async def overview(self, request: web.Request) -> web.Response:
        """The explorer's overview: counts, activity per minute, the batches in flight and the
        estimated gas saved. Computed at most once per OVERVIEW_CACHE_S for all clients (every
        open overview polls it), from bounded reads: the newest ACTIVITY_EVENTS status events, the
        open batches (a page of each open state) and the newest GAS_AGGREGATIONS finalized ones."""
        Query(request, frozenset())
        async with self._overview_lock:
            if self._overview is None or time.monotonic() - self._overview[0] >= OVERVIEW_CACHE_S:
                self._overview = (time.monotonic(), await self._compute_overview())
            body = self._overview[1]
        return web.json_response(body)

    async def _compute_overview(self) -> dict[str, Any]:
        db = self.reads.db
        counts = await db.run(db.store.count_by_status)
        now = int(time.time() * 1000)
        window = now - ACTIVITY_BUCKETS * ACTIVITY_BUCKET_MS
        times, cut = await self.reads.status_times_since(window, ACTIVITY_EVENTS)
        queued = counts.get(Status.QUEUED, 0)
        buckets, since = activity(times, cut, now, ACTIVITY_BUCKETS, ACTIVITY_BUCKET_MS, queued)
        in_flight: list[BatchRow] = []
        for st in (BatchState.PENDING, BatchState.SIGNED, BatchState.SUBMITTED):
            in_flight += await self.reads.list_batches(IN_FLIGHT_LIMIT, None, state=st)
        in_flight.sort(key=lambda b: b.batch_id)
        return {
            "chain_id": self.chain.chain_id,
            "registry": self.chain.registry,
            "proofs_by_status": {s.name: counts.get(s, 0) for s in Status},
            "now_unix_ms": now,
            "queue_depth": queued,
            "activity": {
                "bucket_ms": ACTIVITY_BUCKET_MS,
                "complete_since_unix_ms": since,
                "buckets": buckets,
            },
            "in_flight": [
                {
                    **batch_json(b),
                    "stage": _stage(b),
                    "progress": self.reads.progress(b.batch_id) if _stage(b) == "proving" else None,
                    "elapsed_ms": max(0, now - b.created_ms),
                }
                for b in in_flight[:IN_FLIGHT_LIMIT]
            ],
            "gas": await self._gas(),
        }

    async def _gas(self) -> dict[str, Any]:
        """Estimated gas saved by the newest GAS_AGGREGATIONS finalized aggregations: per aggregation,
        direct verification of its leaves (reads.DIRECT_VERIFY_GAS by scheme) minus the aggregation
        transaction's gasUsed (its receipt) minus each leaf's inclusion check. A finalized batch
        never changes: its figures are kept (by batch id) and only new batches cost a read."""
        rows: list[dict[str, Any]] = []
        missing, reads = 0, 0
        for b in await self.reads.list_batches(GAS_AGGREGATIONS, None, state=BatchState.FINALIZED):
            got = self._gas_of.get(b.batch_id)
            failed = self._gas_failed.get(b.batch_id)
            retry = failed is None or time.monotonic() - failed >= RECEIPT_RETRY_S
            if got is None and reads < RECEIPTS_PER_OVERVIEW and retry and self.calls is not None:
                reads += 1
                try:
                    got = await self._gas_of_batch(b, self.calls)
                    self._gas_of.put(b.batch_id, got)
                except Exception as e:  # any RPC trouble: left out, asked again after RECEIPT_RETRY_S
                    log.warning("overview: no receipt for batch %d: %s", b.batch_id, type(e).__name__)
                    self._gas_failed.put(b.batch_id, time.monotonic())
                    reads = RECEIPTS_PER_OVERVIEW  # the node is likely down: no more this time
            direct, used, inclusion = got if got is not None else (None, 0, 0)
            if direct is None:
                missing += 1
                continue
            rows.append(
                {
                    "batch_id": b.batch_id,
                    "aggregation_id": b.aggregation_id,
                    "kind": kind_name(b.kind),
                    "leaf_count": b.leaf_count,
                    "direct_gas": direct,
                    "gas_used": used,
                    "inclusion_gas": inclusion,
                    "saved_gas": direct - used - inclusion,
                }
            )
        rows.reverse()  # oldest first, as the chart draws them
        return {
            "estimated": True,
            "direct_gas_per_proof": DIRECT_VERIFY_GAS,
            "aggregations": rows,
            "not_counted": missing,
            "saved_gas": sum(r["saved_gas"] for r in rows),
        }

    async def _gas_of_batch(self, b: BatchRow, calls: ChainCalls) -> tuple[int | None, int, int]:
        """(direct gas: None if a leaf's scheme has no measured figure, the transaction's gasUsed,
        the leaves' inclusion checks). Raises if the receipt cannot be read."""
        leaves = await self.reads.db.run(self.reads.db.store.batch_proofs, b.batch_id)
        direct = direct_gas([p.scheme for p in leaves])
        if direct is None or b.tx_hash is None:
            return None, 0, 0
        async with self._verify_slots:  # shares the chain connection with the on-chain check
            used = await asyncio.wait_for(calls.gas_used(b.tx_hash), RECEIPT_TIMEOUT_S)
        return direct, used, b.leaf_count * inclusion_check_gas(b.leaf_count)

    async def proof_events(self, request: web.Request) -> web.StreamResponse:
        """SSE: `status` events (id = the event's sequence number: a reconnecting EventSource
        resumes after Last-Event-ID), ending after FINALIZED, REJECTED or FAILED."""
        Query(request, frozenset())
        pid = request.match_info["proof_id"]
        last = request.headers.get("Last-Event-ID", "0")
        after = int(last) if _NUM.fullmatch(last) and int(last) < 1 << 63 else 0
        await self.reads.proof(pid)  # a coded 404 before the stream starts

        async def frames() -> AsyncIterator[bytes | None]:
            async for e in self.reads.proof_events(pid, after):
                if e is None:
                    yield None
                    continue
                data = {
                    "proof_id": e.proof_id,
                    "status": e.status.name,
                    "reason_code": e.reason_code,
                    "message": e.message,
                    "unix_ms": e.ts_ms,
                }
                yield _sse_frame("status", data, e.seq)

        return await _sse(request, frames(), lambda: self.reads.changes.closed)

    async def batch_events(self, request: web.Request) -> web.StreamResponse:
        """SSE: a `batch` event with the batch now and at each change, ending when it is finalized
        or failed."""
        Query(request, frozenset())
        bid = _path_number(request, "batch_id")
        await self.reads.batch(bid)

        async def frames() -> AsyncIterator[bytes | None]:
            async for b in self.reads.batch_updates(bid):
                yield None if b is None else _sse_frame("batch", batch_json(b))

        return await _sse(request, frames(), lambda: self.reads.changes.closed)


def _stage(b: BatchRow) -> str:
    """What an open batch is waiting for (docs/explorer.md)."""
    if b.state == BatchState.PENDING:
        return "proving" if b.kind == KIND_RECURSIVE else "collecting signatures"
    if b.state == BatchState.SIGNED:
        return "ready to send"
    return "sent, waiting for finality" if b.block_number is None else "included, waiting for confirmations"


def _path_number(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not _NUM.fullmatch(raw):
        raise InvalidInput("MALFORMED", name, f"{name} must be a non-negative integer")
    return int(raw)


def _page(name: str) -> Callable[[web.Request], Any]:
    async def serve(_: web.Request) -> web.FileResponse:
        return web.FileResponse(
            STATIC / name,
            headers={
                "Content-Security-Policy": CSP,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-cache",
            },
        )

    return serve


async def _to_explorer(_: web.Request) -> web.Response:
    raise web.HTTPFound("/explorer/")


def register(app: web.Application, reads: Reads, chain: ChainInfo, calls: ChainCalls | None = None) -> None:
    """Adds the list API, the streams and the explorer to the aggregator's HTTP app; `calls` (the
    chain client) serves the on-chain check and the gas figures."""
    api = ListApi(reads, chain, calls)
    app.add_routes(
        [
            web.get("/v1/proofs", api.proofs),
            web.get("/v1/proofs/{proof_id}/events", api.proof_events),
            web.get("/v1/proofs/{proof_id}/verify", api.verify),
            web.get("/v1/batches", api.batches),
            web.get("/v1/batches/{batch_id}", api.batch),
            web.get("/v1/batches/{batch_id}/events", api.batch_events),
            web.get("/v1/inferences", api.inferences),
            web.get("/v1/search", api.search),
            web.get("/v1/overview", api.overview),
            web.get("/", _to_explorer),  # a browser pointed at the HTTP port lands on the explorer
            web.get("/explorer", _to_explorer),
            web.get("/explorer/", _page("index.html")),
            web.static("/explorer/assets", STATIC),
        ]
    )
