"""aiohttp side: health, readiness, Prometheus metrics, and JSON endpoints (docs/openapi.yaml)."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from aggregator import explorer
from aggregator.http_submission import VkRequest, parse_body, submission_from_json
from aggregator.inference import Inferences
from aggregator.inference_http import register as register_inference_routes
from aggregator.ingest import Ingest
from aggregator.metrics import Metrics
from aggregator.reads import Reads, kind_name
from aggregator.records import BatchRow, ChainInfo, ProofRow, Status
from normalizers.jsonstrict import loads as strict_json
from normalizers.limits import Limits
from sheaf.errors import Internal, InvalidInput, SheafError, status_of

log = logging.getLogger("sheaf.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_ID = re.compile(r"[0-9]{1,19}")
# aiohttp's own errors (no route, wrong method, body over client_max_size) as Sheaf codes
_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "TOO_LARGE"}


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + b.hex()


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A SheafError becomes {"error": {code, field, message}} with the HTTP status sheaf.errors.status_of
    gives it (the table the gRPC server uses too)."""
    try:
        return await handler(request)
    except SheafError as e:
        return web.json_response({"error": e.to_dict()}, status=status_of(e).http)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code = _HTTP_CODES.get(e.status, f"HTTP_{e.status}")
        body = {"code": code, "field": "path" if e.status in (404, 405) else "body", "message": e.reason}
        if e.status == 405:
            body["message"] = f"{request.method} is not allowed on {request.path}"
        elif e.status == 404:
            body["message"] = f"no endpoint {request.path} (see docs/openapi.yaml)"
        return web.json_response({"error": body}, status=e.status, headers=_allow(e))
    except Exception:  # a bug: log it, answer a coded 500, never a traceback
        log.exception("unhandled error in %s %s", request.method, request.path)
        err = Internal("INTERNAL", "", "internal error; the aggregator's log has the details")
        return web.json_response({"error": err.to_dict()}, status=500)


def _allow(e: web.HTTPException) -> dict[str, str]:
    allow = e.headers.get("Allow") if e.headers else None
    return {"Allow": allow} if allow else {}


class Listener:
    """An aiohttp application served on HOST:PORT (port 0: a free one, `port` is the one bound):
    the start and stop of the aggregator's HttpApi and of a worker's /healthz, /readyz and /metrics
    (aggregator.worker.WorkerHttp). A failed bind raises OSError with nothing left open."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:  # in use, not an address of this host
            await runner.cleanup()
            raise
        self.runner = runner
        socks = getattr(site._server, "sockets", None) or []
        self.port = int(socks[0].getsockname()[1]) if socks else port
        return self.port

    async def stop(self) -> None:
        runner, self.runner = self.runner, None
        if runner is not None:
            await runner.cleanup()


def path_id(request: web.Request, name: str) -> int:
    """A non-negative integer path segment; larger than any stored id -> NOT_FOUND by the caller."""
    raw = request.match_info[name]
    if not _ID.fullmatch(raw):
        raise InvalidInput("MALFORMED", name, f"{name} must be a non-negative integer")
    return int(raw)


def proof_json(row: ProofRow, b: BatchRow | None, progress: str | None = None) -> dict[str, Any]:
    """GET /v1/proofs/{id}; `progress`: Reads.batch_progress of its batch (null unless proving)."""
    return {
        "proof_id": row.proof_id,
        "status": row.status.name,
        "reason_code": row.reason_code,
        "message": row.message,
        "domain_id": row.domain_id,
        "scheme": row.scheme,
        "statement_hash": _hex(row.statement_hash),
        "vk_hash": _hex(row.vk_hash),
        "aggregation_id": b.aggregation_id if b else None,
        "tx_hash": _hex(b.tx_hash) if b and row.status >= Status.SUBMITTED else None,
        "updated_unix_ms": row.updated_ms,
        "batch_id": b.batch_id if b else None,
        "progress": progress,
    }


class HttpApi:
    def __init__(
        self,
        ingest: Ingest,
        reads: Reads,
        chain: ChainInfo,
        metrics: Metrics,
        ready: Callable[[], dict[str, bool]],
        *,
        max_message_bytes: int,
        details: Callable[[], dict[str, Any]] | None = None,
        inferences: Inferences | None = None,
        chain_calls: explorer.ChainCalls | None = None,
    ) -> None:
        self.ingest = ingest
        self.reads = reads
        self.chain = chain
        self._metrics = metrics
        self.ready = ready
        self.details = details  # extra /readyz fields (the lease: aggregator.leader)
        self.app = web.Application(middlewares=[errors], client_max_size=max_message_bytes * 2)
        # base64 fields are ~4/3 of the raw bytes; the depth allows {"field": value} and no more
        self._body_limits = Limits(max_json_depth=2, max_json_string_len=max_message_bytes * 2)
        self.app.add_routes(
            [
                web.get("/healthz", self.healthz),
                web.get("/readyz", self.readyz),
                web.get("/metrics", self.metrics),
                web.post("/v1/proofs", self.submit),
                web.post("/v1/vks", self.register_vk),
                web.get("/v1/proofs/{proof_id}", self.proof),
                web.get("/v1/proofs/{proof_id}/inclusion", self.inclusion),
                web.get("/v1/aggregations/{domain_id}/{aggregation_id}", self.aggregation),
            ]
        )
        # list API, status streams, the on-chain check, /explorer/ (issue 16)
        explorer.register(self.app, reads, chain, chain_calls)
        register_inference_routes(  # models, inferences, receipts (issue 17)
            self.app,
            inferences or Inferences(reads.db, ingest, reads, metrics),
            chain,
            max_message_bytes,
        )
        self.listener = Listener(self.app)

    @property
    def port(self) -> int:
        """The bound port (0 before start)."""
        return self.listener.port

    async def start(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        await self.listener.start(host or "127.0.0.1", int(port))

    async def stop(self) -> None:
        await self.listener.stop()

    async def healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, _: web.Request) -> web.Response:
        checks = self.ready()
        ok = all(checks.values())
        extra = self.details() if self.details else {}
        return web.json_response({"ready": ok, "checks": checks, **extra}, status=200 if ok else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        # prometheus_client picks the format from Accept: OpenMetrics if asked, else text 0.0.4
        body, ctype = self._metrics.exposition(request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": ctype})

    async def submit(self, request: web.Request) -> web.Response:
        # The normalizers' strict parser: nesting depth is measured before parsing (a body nested
        # 100k deep overflowed the C stack of the standard parser: py_ecc raises the recursion
        # limit at import), invalid UTF-8, duplicate keys and NaN are coded errors.
        body = strict_json("body", await request.read(), self._body_limits)
        s = submission_from_json(body, request.remote or "")  # SubmitRequest (http_submission.py)
        r = await self.ingest.submit(s)
        return web.json_response(
            {
                "proof_id": r.proof_id,
                "statement_hash": _hex(r.statement_hash),
                "duplicate": r.duplicate,
                "status": r.status.name,
            }
        )

    async def register_vk(self, request: web.Request) -> web.Response:
        """RegisterVerifyingKey over HTTP (docs/openapi.yaml `VkRequest`): later submissions may
        name the key by the vk_hash answered."""
        body = parse_body(VkRequest, strict_json("body", await request.read(), self._body_limits))
        h = await self.ingest.register_vk(body.scheme, body.format, body.vk, body.settings)
        return web.json_response({"vk_hash": _hex(h), "scheme": body.scheme, "format": body.format})

    async def proof(self, request: web.Request) -> web.Response:
        row = await self.reads.proof(request.match_info["proof_id"])
        b = await self.reads.batch_for(row)
        return web.json_response(proof_json(row, b, self.reads.batch_progress(b)))

    async def inclusion(self, request: web.Request) -> web.Response:
        inc = await self.reads.inclusion(request.match_info["proof_id"])
        return web.json_response(
            {
                "proof_id": inc.proof_id,
                "domain_id": inc.domain_id,
                "aggregation_id": inc.aggregation_id,
                "kind": kind_name(inc.kind),
                "root": _hex(inc.root),
                "leaf": _hex(inc.leaf),
                "merkle_path": [_hex(p) for p in inc.path],
                "leaf_count": inc.leaf_count,
                "index": inc.index,
                "tx_hash": _hex(inc.tx_hash),
                "block_number": inc.block_number,
                "registry": self.chain.registry,
                "chain_id": self.chain.chain_id,
            }
        )

    async def aggregation(self, request: web.Request) -> web.Response:
        d, a = path_id(request, "domain_id"), path_id(request, "aggregation_id")
        b, rows = await self.reads.aggregation(d, a)
        return web.json_response(
            {
                "domain_id": b.domain_id,
                "aggregation_id": b.aggregation_id,
                "batch_id": b.batch_id,
                "kind": kind_name(b.kind),
                "root": _hex(b.root),
                "leaf_count": b.leaf_count,
                "state": b.state,
                "tx_hash": _hex(b.tx_hash),
                "block_number": b.block_number,
                "leaves": [_hex(r.statement_hash) for r in rows],
            }
        )
