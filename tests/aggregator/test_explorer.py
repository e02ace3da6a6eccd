"""The HTTP list API, search, the status streams and the explorer in a real headless Chromium
(issue 16), all against one real system set up once for the module: anvil with SheafRegistry, the
in-process aggregator, two operator processes and real proofs posted on chain
(explorer_helpers.live_system)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import jsonschema
import pytest
import pytest_asyncio
import sheaf_client
import yaml
from agg_helpers import ROOT
from explorer_helpers import Live, live_system, parse_sse, sse
from google.protobuf import descriptor_pb2
from google.rpc import error_details_pb2
from grpc_reflection.v1alpha import reflection_pb2
from grpc_status import rpc_status
from web3 import Web3

from aggregator import cli, explorer
from aggregator.explorer import OVERVIEW_CACHE_S
from aggregator.reads import DIRECT_VERIFY_GAS, activity, inclusion_check_gas
from aggregator.records import KIND_ATTESTED, KIND_RECURSIVE, BatchRow, BatchState, Status
from sheaf.v1 import aggregator_pb2 as pb
from sheaf.v1 import aggregator_pb2_grpc as pbg

pytestmark = pytest.mark.asyncio(loop_scope="module")
CHROMIUM = "/usr/bin/chromium"
SLICES = 3  # live.proof_ids starts with the inference's three slices (explorer_helpers.live_system)
ARTIFACTS = ROOT / "build" / "test-artifacts" / "explorer"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def live(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> AsyncIterator[Live]:
    """SHEAF_TEST_STORE=postgres: on the session's PostgreSQL (as the `app` fixture of conftest)."""
    db_url = ""
    if os.environ.get("SHEAF_TEST_STORE", "sqlite") == "postgres":
        db_url = request.getfixturevalue("pg_server").create_schema("t_" + uuid.uuid4().hex[:16])
    async with live_system(tmp_path_factory.mktemp("explorer"), db_url=db_url) as system:
        yield system


async def _get(live: Live, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(live.url + path) as r:
        return r.status, await r.json()


async def test_proofs_page_through_everything_once_newest_first(live: Live) -> None:
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        code, body = await _get(live, f"/v1/proofs?limit=2{cursor}")
        assert code == 200, body
        pages += 1
        seen += [p["proof_id"] for p in body["proofs"]]
        if body["next_cursor"] is None:
            break
        cursor = f"&cursor={body['next_cursor']}"
    assert seen == list(reversed(live.proof_ids)) and pages == (len(live.proof_ids) + 1) // 2
    _, one = await _get(live, f"/v1/proofs?statement_hash={live.statements[0]}")
    (p,) = one["proofs"]
    assert p["proof_id"] == live.proof_ids[0] and p["status"] == "FINALIZED" and p["scheme"] == "groth16"
    assert p["tx_hash"] is not None and p["aggregation_id"] >= 1 and p["batch_id"] >= 1
    _, fin = await _get(live, "/v1/proofs?status=FINALIZED&domain_id=1")
    assert len(fin["proofs"]) == len(live.proof_ids)
    for q in ("status=QUEUED", "scheme=plonk", "domain_id=2", "submitter=0x" + "ab" * 20):
        _, none = await _get(live, f"/v1/proofs?{q}")
        assert none == {"proofs": [], "next_cursor": None}, q


async def test_batches_detail_and_search(live: Live) -> None:
    _, body = await _get(live, "/v1/batches?state=finalized&domain_id=1")
    batches = body["batches"]
    assert batches and all(b["tx_hash"] and b["block_number"] for b in batches)
    in_batches = sum(b["leaf_count"] for b in batches)
    assert in_batches == len(live.proof_ids)
    b = batches[0]
    code, detail = await _get(live, f"/v1/batches/{b['batch_id']}")
    assert code == 200 and detail["chain_id"] == 31337 and detail["registry"] == live.registry
    assert [p["leaf_index"] for p in detail["proofs"]] == list(range(b["leaf_count"]))
    assert sum(s["signed"] for s in detail["signatures"]) >= 2
    # search: statement hash -> the proof; tx hash and root -> the batch; a batch id -> the batch
    _, by_st = await _get(live, f"/v1/search?q={live.statements[1]}")
    assert [p["proof_id"] for p in by_st["proofs"]] == [live.proof_ids[1]]
    for q in (b["tx_hash"], b["root"], str(b["batch_id"])):
        _, found = await _get(live, f"/v1/search?q={q}")
        assert [x["batch_id"] for x in found["batches"]] == [b["batch_id"]], q
    _, by_id = await _get(live, f"/v1/search?q={live.proof_ids[2]}")
    assert [p["proof_id"] for p in by_id["proofs"]] == [live.proof_ids[2]]
    code, miss = await _get(live, "/v1/batches/999999")
    assert code == 404 and miss["error"]["code"] == "UNKNOWN_BATCH"
    # the on-chain check the explorer's button makes: the registry's verifyProofAggregation
    code, v = await _get(live, f"/v1/proofs/{live.proof_ids[0]}/verify")
    assert code == 200 and v["verified"] is True and v["registry"] == live.registry, v
    _, rec = await _get(live, f"/v1/proofs/{live.proof_ids[0]}/inclusion")
    assert v["args"] == [
        1,
        rec["aggregation_id"],
        rec["leaf"],
        rec["merkle_path"],
        rec["leaf_count"],
        rec["index"],
    ]
    code, v = await _get(live, "/v1/proofs/1-" + "00" * 32 + "/verify")
    assert code == 404 and v["error"]["code"] == "UNKNOWN_PROOF"
    _, ov = await _get(live, "/v1/overview")
    assert ov["proofs_by_status"]["FINALIZED"] == len(live.proof_ids)


async def test_overview_counts_charts_and_gas_from_what_was_submitted(live: Live) -> None:
    """GET /v1/overview against what the module submitted: per-minute counts (every proof received
    and finalized within the window), an empty queue and no batch in flight (all final), and per
    finalized aggregation the direct-verification gas of its leaves' schemes, the transaction's
    gasUsed as anvil's receipt has it and the measured inclusion checks."""
    await asyncio.sleep(OVERVIEW_CACHE_S)  # an answer cached before the last finalization is stale
    code, ov = await _get(live, "/v1/overview")
    assert code == 200, ov
    _, all_proofs = await _get(live, "/v1/proofs?limit=100")
    proofs = all_proofs["proofs"]
    assert set(live.proof_ids) <= {p["proof_id"] for p in proofs}
    buckets = ov["activity"]["buckets"]
    assert len(buckets) == 30 and buckets[-1]["start_unix_ms"] + 60_000 == ov["now_unix_ms"]
    assert ov["activity"]["complete_since_unix_ms"] == buckets[0]["start_unix_ms"]  # far from the limit
    assert sum(b["submitted"] for b in buckets) == len(proofs)
    finalized = [p for p in proofs if p["status"] == "FINALIZED"]
    assert sum(b["finalized"] for b in buckets) == len(finalized) == ov["proofs_by_status"]["FINALIZED"]
    first = min(p["created_unix_ms"] for p in proofs)
    (i,) = [i for i, b in enumerate(buckets) if b["start_unix_ms"] <= first < b["start_unix_ms"] + 60_000]
    assert buckets[i]["submitted"] >= 1 and sum(b["submitted"] for b in buckets[:i]) == 0
    assert ov["queue_depth"] == ov["proofs_by_status"]["QUEUED"] == 0 and buckets[-1]["queue_depth"] == 0
    assert ov["in_flight"] == []
    gas = ov["gas"]
    assert gas["estimated"] is True and gas["not_counted"] == 0
    _, fin = await _get(live, "/v1/batches?state=finalized&limit=100")
    assert [r["batch_id"] for r in gas["aggregations"]] == sorted(b["batch_id"] for b in fin["batches"])
    assert sum(r["leaf_count"] for r in gas["aggregations"]) == len(finalized)
    w3 = Web3(Web3.HTTPProvider(live.rpc_url))
    for r in gas["aggregations"]:
        _, detail = await _get(live, f"/v1/batches/{r['batch_id']}")
        assert r["direct_gas"] == sum(DIRECT_VERIFY_GAS[p["scheme"]] for p in detail["proofs"])
        receipt = await asyncio.to_thread(w3.eth.get_transaction_receipt, detail["tx_hash"])
        assert r["gas_used"] == receipt["gasUsed"] > 21_000
        assert r["inclusion_gas"] == r["leaf_count"] * inclusion_check_gas(r["leaf_count"])
        assert r["saved_gas"] == r["direct_gas"] - r["gas_used"] - r["inclusion_gas"]
    assert gas["saved_gas"] == sum(r["saved_gas"] for r in gas["aggregations"]) > 0
    # search by vk hash (any case, with or without 0x): the proofs verified with that key
    _, one = await _get(live, f"/v1/proofs/{live.proof_ids[0]}")
    vk = one["vk_hash"]
    for q in (vk, vk[2:].upper()):
        _, found = await _get(live, f"/v1/search?q={q}")
        assert {p["proof_id"] for p in found["proofs"]} == {live.proof_ids[0], live.proof_ids[2]}, q
        assert all(p["vk_hash"] == vk for p in found["proofs"]) and found["batches"] == []


async def test_activity_buckets_mark_what_the_event_limit_cut_off() -> None:
    """reads.activity: when the event read was cut at its bound, buckets older than the oldest
    event read have no counts (None), newer ones count exactly; queue depth walks back from now."""
    now, minute = 10 * 60_000, 60_000
    newest_first = [
        (Status.FINALIZED, now - 1_000),
        (Status.AGGREGATING, now - 2_000),
        (Status.QUEUED, now - 61_000),
        (Status.RECEIVED, now - 62_000),
        (Status.QUEUED, now - 63_000),
        (Status.RECEIVED, now - 3 * minute - 5),
    ]
    got, since = activity(newest_first, True, now, 5, minute, queued_now=1)
    assert since == now - 3 * minute - 5
    assert [b["submitted"] for b in got] == [None, None, 0, 1, 0]
    assert [b["finalized"] for b in got] == [None, None, 0, 0, 1]
    assert [b["queue_depth"] for b in got] == [None, None, 0, 2, 1]
    whole, since = activity(newest_first, False, now, 5, minute, queued_now=1)
    assert since == now - 5 * minute and [b["submitted"] for b in whole] == [0, 1, 0, 1, 0]


async def test_in_flight_stage_names_what_the_batch_waits_for() -> None:
    """The overview's stage of an open batch (docs/explorer.md "Overview charts")."""
    base = BatchRow(1, 1, KIND_ATTESTED, None, b"\0" * 32, 2, BatchState.PENDING, None, None, None, "", 0)
    cases = [
        (base, "collecting signatures"),
        (dataclasses.replace(base, kind=KIND_RECURSIVE), "proving"),
        (dataclasses.replace(base, state=BatchState.SIGNED), "ready to send"),
        (dataclasses.replace(base, state=BatchState.SUBMITTED), "sent, waiting for finality"),
        (
            dataclasses.replace(base, state=BatchState.SUBMITTED, block_number=9),
            "included, waiting for confirmations",
        ),
    ]
    assert [explorer._stage(b) for b, _ in cases] == [want for _, want in cases]


async def test_inferences_list_and_search(live: Live) -> None:
    """GET /v1/inferences (the explorer's inference list) and search by inference id: the unit's
    status as GET /v1/inferences/{id} gives it, each slice's proof and status."""
    code, body = await _get(live, "/v1/inferences")
    assert code == 200 and body["next_cursor"] is None
    (e,) = body["inferences"]
    _, one = await _get(live, f"/v1/inferences/{live.inference_id}")
    assert e["inference_id"] == live.inference_id and e["model_id"] == live.model_id == one["model_id"]
    assert e["status"] == one["status"] == "FINALIZED" and e["inference_hash"] == one["inference_hash"]
    assert e["slices"] == [{"proof_id": p, "status": "FINALIZED"} for p in live.proof_ids[:3]]
    for q in (f"model_id={live.model_id}", "domain_id=1", "limit=1"):
        _, same = await _get(live, f"/v1/inferences?{q}")
        assert same["inferences"] == [e], q
    for q in ("model_id=0x" + "00" * 32, "domain_id=2", f"cursor={e['created_unix_ms']}.{live.inference_id}"):
        _, none = await _get(live, f"/v1/inferences?{q}")
        assert none == {"inferences": [], "next_cursor": None}, q
    _, found = await _get(live, f"/v1/search?q={live.inference_id.upper()}")
    assert found["inferences"] == [e] and found["proofs"] == [] and found["batches"] == []
    _, other = await _get(live, f"/v1/search?q={live.proof_ids[0]}")
    assert other["inferences"] == [] and len(other["proofs"]) == 1


async def test_grpc_lists_match_the_http_lists(live: Live) -> None:
    """ListProofs / ListAggregations over real gRPC (the SDK's typed wrappers): the same entries, in
    the same order, with the same cursors as GET /v1/proofs and /v1/batches, and the same filters."""
    async with sheaf_client.AsyncClient(live.target, retry=sheaf_client.NO_RETRY) as c:
        grpc_ids, http_ids, cursor = [], [], None
        while True:
            page = await c.list_proofs(limit=2, cursor=cursor)
            code, body = await _get(live, "/v1/proofs?limit=2" + (f"&cursor={cursor}" if cursor else ""))
            assert code == 200
            grpc_ids += [p.proof_id for p in page.items]
            http_ids += [p["proof_id"] for p in body["proofs"]]
            assert page.next_cursor == body["next_cursor"]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert grpc_ids == http_ids and set(live.proof_ids) <= set(grpc_ids)
        (p,) = (await c.list_proofs(statement_hash=live.statements[0])).items
        _, one = await _get(live, f"/v1/proofs?statement_hash={live.statements[0]}")
        h = one["proofs"][0]
        assert p.proof_id == h["proof_id"] == live.proof_ids[0]
        assert p.status is sheaf_client.ProofStatus.FINALIZED and p.scheme is sheaf_client.Scheme.GROTH16
        assert p.kind.name == h["kind"] and p.format == h["format"] == "snarkjs"
        assert (p.batch_id, p.leaf_index, p.aggregation_id) == (
            h["batch_id"],
            h["leaf_index"],
            h["aggregation_id"],
        )
        assert (p.tx_hash, p.vk_hash, p.created_unix_ms) == (h["tx_hash"], h["vk_hash"], h["created_unix_ms"])
        fin = await c.list_proofs(status="FINALIZED", domain_id=1, limit=100)
        assert {x.proof_id for x in fin.items} >= set(live.proof_ids)
        key_a = await c.list_proofs(vk_hash=p.vk_hash, limit=100)  # slices 0 and 2 share key A, 1 has B
        assert {x.proof_id for x in key_a.items} == {live.proof_ids[0], live.proof_ids[2]}
        for kw in (
            {"status": sheaf_client.ProofStatus.REJECTED},
            {"scheme": "plonk"},
            {"domain_id": 2},
            {"submitter": "0x" + "ab" * 20},
            {"vk_hash": "0x" + "00" * 32},
        ):
            assert (await c.list_proofs(**kw)) == sheaf_client.Page((), None), kw
        aggs = await c.list_aggregations(domain_id=1, state="finalized", kind="attested", limit=100)
        _, hb = await _get(live, "/v1/batches?domain_id=1&state=finalized&kind=ATTESTED&limit=100")
        assert [a.batch_id for a in aggs.items] == [b["batch_id"] for b in hb["batches"]] != []
        a = aggs.items[0]
        assert (a.aggregation_id, a.root, a.tx_hash, a.leaves) == (
            hb["batches"][0]["aggregation_id"],
            hb["batches"][0]["root"],
            hb["batches"][0]["tx_hash"],
            (),
        )
        assert [x.batch_id for x in (await c.list_aggregations(root=a.root)).items] == [a.batch_id]
        everything = sorted(
            (x["batch_id"] for x in (await _get(live, "/v1/batches?limit=100"))[1]["batches"]), reverse=True
        )
        first = await c.list_aggregations(limit=1)
        assert [x.batch_id for x in first.items] == everything[:1]
        assert first.next_cursor == (str(everything[0]) if len(everything) > 1 else None)
        older = await c.list_aggregations(limit=100, cursor=str(everything[0]))  # as a next_cursor
        assert [x.batch_id for x in older.items] == everything[1:]
        assert (await c.list_aggregations(state="pending", domain_id=2)).items == ()
        for call, kw, field in (
            (c.list_proofs, {"limit": 101}, "limit"),
            (c.list_proofs, {"cursor": "-1"}, "cursor"),
            (c.list_proofs, {"cursor": "99999999999999999999"}, "cursor"),
            (c.list_proofs, {"submitter": "0x12"}, "submitter"),
            (c.list_proofs, {"vk_hash": "0x00"}, "vk_hash"),
            (c.list_proofs, {"domain_id": 1 << 63}, "domain_id"),
            (c.list_aggregations, {"state": "FINALIZED"}, "state"),
            (c.list_aggregations, {"kind": 7}, "kind"),
            (c.list_aggregations, {"tx_hash": "0x" + "00" * 31}, "tx_hash"),
        ):
            with pytest.raises(sheaf_client.SheafError) as ei:
                await call(**kw)
            e = ei.value
            assert (e.status, e.code, e.field) == (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED", field), kw


async def test_grpc_rich_error_details_and_reflection_v1(live: Live) -> None:
    """A standard gRPC client reads Sheaf's errors as google.rpc rich details (grpcio-status):
    ErrorInfo(reason = the code, domain "sheaf", metadata field), a BadRequest for a bad argument,
    beside the sheaf-error-* metadata; and server reflection v1 lists and describes the services."""
    async with grpc.aio.insecure_channel(live.target) as ch:
        stub = pbg.AggregatorStub(ch)
        for call, code, reason, field in (
            (
                stub.ListProofs(pb.ListProofsRequest(limit=101)),
                grpc.StatusCode.INVALID_ARGUMENT,
                "MALFORMED",
                "limit",
            ),
            (
                stub.GetProofStatus(pb.GetProofStatusRequest(proof_id="1-00")),
                grpc.StatusCode.NOT_FOUND,
                "UNKNOWN_PROOF",
                "proof_id",
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError):
                await call
            st = await rpc_status.aio.from_call(call)  # checks code and message match the call's
            assert st is not None and st.code == code.value[0]
            info = error_details_pb2.ErrorInfo()
            assert st.details[0].Unpack(info)
            assert (info.reason, info.domain, dict(info.metadata)) == (reason, "sheaf", {"field": field})
            md = dict(await call.trailing_metadata())  # type: ignore[arg-type]
            assert (md["sheaf-error-code"], md["sheaf-error-field"]) == (reason, field)
            bad = error_details_pb2.BadRequest()
            has_bad = len(st.details) > 1 and st.details[1].Unpack(bad)
            assert has_bad == (code is grpc.StatusCode.INVALID_ARGUMENT)
            if has_bad:
                assert [(v.field, bool(v.description)) for v in bad.field_violations] == [(field, True)]

        # reflection v1 (what grpcurl asks first); its messages are v1alpha's on the wire
        info_v1 = ch.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        reqs = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="sheaf.v1.Aggregator"),
            reflection_pb2.ServerReflectionRequest(
                file_containing_symbol="grpc.reflection.v1.ServerReflection"
            ),
        ]
        got = [r async for r in info_v1(iter(reqs))]
        names = {s.name for s in got[0].list_services_response.service}
        assert {
            "sheaf.v1.Aggregator",
            "grpc.reflection.v1.ServerReflection",
            "grpc.health.v1.Health",
        } <= names
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(b)
            for b in got[1].file_descriptor_response.file_descriptor_proto
        ]
        (agg,) = [svc for f in files for svc in f.service if svc.name == "Aggregator"]
        assert {"ListProofs", "ListAggregations", "SubmitProof"} <= {m.name for m in agg.method}
        (v1,) = [
            descriptor_pb2.FileDescriptorProto.FromString(b)
            for b in got[2].file_descriptor_response.file_descriptor_proto
        ]
        assert (v1.package, v1.service[0].name) == ("grpc.reflection.v1", "ServerReflection")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/v1/proofs?limit=0", "limit"),
        ("/v1/proofs?limit=101", "limit"),
        ("/v1/proofs?limit=ten", "limit"),
        ("/v1/proofs?cursor=-1", "cursor"),
        ("/v1/proofs?cursor=99999999999999999999", "cursor"),
        ("/v1/proofs?status=finalised", "status"),
        ("/v1/proofs?scheme=stark", "scheme"),
        ("/v1/proofs?submitter=0x12", "submitter"),
        ("/v1/proofs?vk_hash=0x00", "vk_hash"),
        ("/v1/proofs?statement_hash=" + "00" * 32, "statement_hash"),
        ("/v1/proofs?domain_id=true", "domain_id"),
        ("/v1/proofs?colour=red", "colour"),
        ("/v1/proofs?limit=1&limit=2", "limit"),
        ("/v1/batches?state=FINALIZED", "state"),
        ("/v1/batches?kind=attested", "kind"),  # one spelling: ATTESTED
        ("/v1/batches?tx_hash=0xzz", "tx_hash"),
        ("/v1/batches/abc", "batch_id"),
        ("/v1/batches/1?x=1", "x"),
        ("/v1/search", "q"),
        ("/v1/search?q=hello", "q"),
        ("/v1/overview?verbose=1", "verbose"),
        ("/v1/inferences?cursor=5", "cursor"),
        ("/v1/inferences?model_id=0x12", "model_id"),
        ("/v1/inferences?limit=101", "limit"),
    ],
)
async def test_bad_parameters_are_coded_400s(live: Live, query: str, field: str) -> None:
    code, body = await _get(live, query)
    assert code == 400, body
    assert (body["error"]["code"], body["error"]["field"]) == ("MALFORMED", field), body


async def _events(
    live: Live, path: str, headers: dict[str, str] | None = None
) -> AsyncIterator[tuple[str, Any]]:
    async with aiohttp.ClientSession() as s, s.get(live.url + path, headers=headers or {}) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        async for name, data, _ in sse(r):
            yield name, data


async def test_proof_stream_replays_then_ends_and_resumes(live: Live) -> None:
    pid = live.proof_ids[0]
    got = [(n, d) async for n, d in _events(live, f"/v1/proofs/{pid}/events")]
    names = [d.get("status") for n, d in got if n == "status"]
    assert names[:3] == ["RECEIVED", "VALID", "QUEUED"] and names[-1] == "FINALIZED"
    assert "AGGREGATING" in names and "SUBMITTED" in names and got[-1][0] == "end"
    # resuming after the last id (what EventSource sends on reconnect) gives nothing more
    async with aiohttp.ClientSession() as s, s.get(live.url + f"/v1/proofs/{pid}/events") as r:
        ids = [i async for _, _, i in sse(r) if i]
    resumed = [(n, d) async for n, d in _events(live, f"/v1/proofs/{pid}/events", {"Last-Event-ID": ids[-1]})]
    assert resumed == [("end", {})]
    code, body = await _get(live, "/v1/proofs/1-00/events")
    assert code == 404 and body["error"]["code"] == "UNKNOWN_PROOF"


async def test_live_stream_follows_a_new_proof_to_finalized(live: Live) -> None:
    """A proof submitted just before its stream opens: the later events arrive live, then the
    stream ends by itself; its batch's stream gives the finalized batch and ends."""
    pid = await live.submit_one()
    names = [d["status"] async for n, d in _events(live, f"/v1/proofs/{pid}/events") if n == "status"]
    assert names[0] == "RECEIVED" and names[-1] == "FINALIZED"
    assert names.index("AGGREGATING") < names.index("SUBMITTED") < names.index("FINALIZED")
    _, found = await _get(live, f"/v1/search?q={pid}")
    (p,) = found["proofs"]
    got = [(n, d) async for n, d in _events(live, f"/v1/batches/{p['batch_id']}/events")]
    assert [n for n, _ in got] == ["batch", "end"]
    assert got[0][1]["state"] == "finalized" and got[0][1]["tx_hash"] == p["tx_hash"]
    live.proof_ids.append(pid)  # the browser test sees it too


async def test_metrics_negotiate_the_format(live: Live) -> None:
    """/metrics is prometheus_client's exposition: text 0.0.4 by default, OpenMetrics on request."""
    async with aiohttp.ClientSession() as s:
        async with s.get(live.url + "/metrics") as r:
            text = await r.text()
            assert r.status == 200 and "version=0.0.4" in r.headers["Content-Type"]
        om = {"Accept": "application/openmetrics-text; version=1.0.0"}
        async with s.get(live.url + "/metrics", headers=om) as r:
            body = await r.text()
            assert r.headers["Content-Type"].startswith("application/openmetrics-text")
    n = len(live.proof_ids)  # the inference's slices are submissions too (counted once each)
    assert f'sheaf_submissions_total{{result="accepted"}} {float(n)}' in text
    assert 'sheaf_inferences_total{result="accepted"} 1.0' in text
    assert 'sheaf_proofs{status="FINALIZED"}' in text and "process_cpu_seconds_total" in text
    assert "sheaf_build_info{" in text
    assert body.endswith("# EOF\n") and f'sheaf_submissions_total{{result="accepted"}} {float(n)}' in body


SPEC = ROOT / "docs" / "openapi.yaml"
UNDOCUMENTED = {("GET", "/"), ("GET", "/explorer"), ("GET", "/explorer/assets")}  # redirects; page files


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema 2020-12: `nullable: true` becomes a type that allows null."""
    if isinstance(node, list):
        return [_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if k not in ("nullable", "example")}
    if node.get("nullable"):
        out = {"anyOf": [out, {"type": "null"}]}
    return out


def _properties(schema: dict[str, Any], spec: dict[str, Any]) -> set[str]:
    """Every property name the schema declares at its top level (through $ref and allOf)."""
    if "$ref" in schema:
        return _properties(spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]], spec)
    names = set(schema.get("properties", {}))
    for part in schema.get("allOf", []):
        names |= _properties(part, spec)
    return names


async def test_openapi_spec_matches_the_live_server(live: Live) -> None:
    """docs/openapi.yaml against the running aggregator: the same routes (method and path) both
    ways, and each GET answer (and an error) valid against its documented schema, with no field the
    spec does not name."""
    spec = yaml.safe_load(SPEC.read_text())
    documented = {(m.upper(), path) for path, ops in spec["paths"].items() for m in ops}
    assert live.routes - UNDOCUMENTED == documented, (
        f"served, not documented: {sorted(live.routes - UNDOCUMENTED - documented)}; "
        f"documented, not served: {sorted(documented - live.routes)}"
    )
    _, page = await _get(live, "/v1/batches?limit=1")
    b = page["batches"][0]
    pid = live.proof_ids[0]
    samples = {
        "/healthz": "/healthz",
        "/readyz": "/readyz",
        "/v1/proofs": "/v1/proofs?limit=2",
        "/v1/proofs/{proof_id}": f"/v1/proofs/{pid}",
        "/v1/proofs/{proof_id}/inclusion": f"/v1/proofs/{pid}/inclusion",
        "/v1/proofs/{proof_id}/verify": f"/v1/proofs/{pid}/verify",
        "/v1/aggregations/{domain_id}/{aggregation_id}": f"/v1/aggregations/1/{b['aggregation_id']}",
        "/v1/batches": "/v1/batches?limit=1",
        "/v1/batches/{batch_id}": f"/v1/batches/{b['batch_id']}",
        "/v1/search": f"/v1/search?q={live.statements[0]}",
        "/v1/overview": "/v1/overview",
        "/v1/inferences": "/v1/inferences?limit=5",
    }
    components = _json_schema(spec["components"])
    for template, url in samples.items():
        code, body = await _get(live, url)
        assert code == 200, (url, body)
        schema = spec["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        validator = jsonschema.Draft202012Validator({**_json_schema(schema), "components": components})
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, (url, errors[:5])
        declared = _properties(schema, spec)
        if declared:
            assert set(body) <= declared, (url, sorted(set(body) - declared))
    code, body = await _get(live, "/v1/batches/999999")
    err_schema = {"$ref": "#/components/schemas/Error", "components": components}
    assert code == 404 and jsonschema.Draft202012Validator(err_schema).is_valid(body)


async def test_sse_reader_skips_comments_and_retry() -> None:
    raw = 'retry: 3000\n\n: keep-alive\n\nid: 7\nevent: status\ndata: {"a":1}\n\nevent: end\ndata: {}\n\n'
    assert list(parse_sse(raw)) == [("status", {"a": 1}, "7"), ("end", {}, "")]


async def test_explorer_in_headless_chromium(live: Live) -> None:
    """tests/aggregator/explorer_browser.js drives Debian's chromium through playwright-core: the
    overview, a batch, a proof with its timeline and Merkle path, search by statement hash (typed
    with the keyboard), a miss; no console errors; labels, captions and text contrast; a screenshot
    per page in build/test-artifacts/explorer/."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium package (needs root)")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    _, fin = await _get(live, "/v1/batches?state=finalized&limit=1")
    tx_batch = fin["batches"][0]
    _, slice0 = await _get(live, f"/v1/proofs/{live.proof_ids[0]}")
    _, with_vk = await _get(live, f"/v1/proofs?vk_hash={slice0['vk_hash']}&limit=100")
    want = {
        "proof_ids": live.proof_ids,
        "statements": live.statements,
        "inference_id": live.inference_id,
        "tx_hash": tx_batch["tx_hash"],
        "vk_hash": slice0["vk_hash"],
    }
    # the aggregator serves from this event loop: the browser runs as an asyncio subprocess
    p = await asyncio.create_subprocess_exec(
        "node",
        str(Path(__file__).with_name("explorer_browser.js")),
        live.url,
        json.dumps(want),
        str(ARTIFACTS),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(p.communicate(), 90)
    assert p.returncode == 0, err.decode()[-3000:]
    got = json.loads(out)
    assert got["console_errors"] == [], got["console_errors"]
    assert got["landed"] == "/explorer/"
    ov = got["overview"]
    assert set(ov["proofs"]) == set(live.proof_ids) and ov["batches"]
    assert "FINALIZED " + str(len(live.proof_ids)) in ov["counts"]
    assert ov["inflight"] == ["none"]  # every batch is final by now
    assert ov["stray"] == [] and got["batch"]["stray"] == []
    b = got["batch"]
    assert b["state"] == "finalized" and b["tx"].startswith("0x") and len(b["tx"]) == 66
    assert set(b["leaves"]) <= set(live.proof_ids) and b["leaves"]
    pr = got["proof"]
    assert pr["id"] in b["leaves"] and pr["status"] == "FINALIZED"
    assert pr["timeline"][:3] == ["RECEIVED", "VALID", "QUEUED"] and pr["timeline"][-1] == "FINALIZED"
    _, rec = await _get(live, f"/v1/proofs/{pr['id']}/inclusion")
    assert pr["path"] == rec["merkle_path"] and pr["root"] == rec["root"]
    assert pr["onchain"].startswith("verified by verifyProofAggregation on chain 31337"), pr["onchain"]
    assert pr["stray"] == [], "a missing value was written as text"
    assert got["search"]["landed"] == "#/proof/" + live.proof_ids[1]
    assert got["search"]["id"] == live.proof_ids[1]
    assert got["miss"] == {"proofs": "none", "batches": "none"}
    # the overview's charts: drawn with the data (bars for the proofs and for every finalized
    # aggregation's estimated saving), each an image with its numbers in its text alternative
    charts = got["charts"]
    assert set(charts) == {"chart-activity", "chart-queue", "chart-gas"}, charts
    assert all(c["role"] == "img" and c["label"].startswith(c["caption"]) for c in charts.values())
    n = len(live.proof_ids)
    assert f"{n} submitted, {n} finalized" in charts["chart-activity"]["label"], charts["chart-activity"]
    assert charts["chart-activity"]["bars"] >= 2 and charts["chart-queue"]["points"] == 30
    assert "estimated" in charts["chart-gas"]["caption"] and charts["chart-gas"]["label"].startswith(
        "Gas saved against direct verification (estimated). Estimated "
    )
    _, ov = await _get(live, "/v1/overview")
    assert charts["chart-gas"]["bars"] == sum(r["saved_gas"] != 0 for r in ov["gas"]["aggregations"]) > 0
    tx = got["tx"]
    assert tx["landed"] == "#/tx/" + tx_batch["tx_hash"] and tx["batch"] == f"#{tx_batch['batch_id']}"
    _, tx_detail = await _get(live, f"/v1/batches/{tx_batch['batch_id']}")
    assert tx["leaves"] == [p["proof_id"] for p in tx_detail["proofs"]] and tx["stray"] == []
    vk = got["vk"]
    assert vk["landed"] == "#/vk/" + slice0["vk_hash"] and vk["stray"] == []
    assert vk["proofs"] == [p["proof_id"] for p in with_vk["proofs"]] and len(vk["proofs"]) >= 2
    for a11y in (got["a11y_tx"], got["a11y_vk"]):
        assert a11y["unlabelled_inputs"] == [] and a11y["tables_without_caption"] == 0
        assert a11y["min_contrast"] >= 4.5, a11y
    a11y = got["a11y"]
    assert a11y["unlabelled_inputs"] == [] and a11y["tables_without_caption"] == 0 and a11y["has_main"]
    assert a11y["min_contrast"] >= 4.5, a11y
    assert a11y["focus_after_tab"] == "q"
    assert got["inferences"] == {"ids": [live.inference_id], "statuses": ["FINALIZED"], "stray": []}
    inf = got["inference"]
    assert inf["landed"] == "#/inference/" + live.inference_id and inf["id"] == live.inference_id
    assert inf["status"] == "FINALIZED" and inf["model"] == live.model_id
    assert inf["slice_proofs"] == live.proof_ids[:3] and inf["slice_statuses"] == ["FINALIZED"] * 3
    assert inf["receipt"].startswith("available") and inf["receipt_slices"] == 3 and inf["stray"] == []
    a11y = got["a11y_inference"]
    assert a11y["unlabelled_inputs"] == [] and a11y["tables_without_caption"] == 0
    assert a11y["min_contrast"] >= 4.5, a11y
    for page in ("overview", "batch", "proof", "search", "tx", "vk", "inferences", "inference"):
        assert (ARTIFACTS / f"{page}.png").stat().st_size > 1000


async def test_vk_registration_over_http(live: Live) -> None:
    """POST /v1/vks answers the key's hash; a submission over HTTP can then name the key by it."""
    p = live.spare.pop()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    async with aiohttp.ClientSession() as s:
        body = {"scheme": p.scheme, "format": p.format, "vk": b64(p.vk)}
        async with s.post(live.url + "/v1/vks", json=body) as r:
            assert r.status == 200
            got = await r.json()
        assert got["vk_hash"].startswith("0x") and len(got["vk_hash"]) == 66
        sub = {"scheme": p.scheme, "format": p.format, "proof": b64(p.proof), "public": b64(p.public or b"")}
        async with s.post(live.url + "/v1/proofs", json={**sub, "vk_hash": got["vk_hash"]}) as r:
            assert r.status == 200, await r.text()
            ack = await r.json()
        _, row = await _get(live, f"/v1/proofs/{ack['proof_id']}")
        assert row["vk_hash"] == got["vk_hash"]
        for bad, field in (
            ({**body, "colour": 1}, "colour"),
            ({**body, "vk": "%%"}, "vk"),
            ({"format": "snarkjs"}, "scheme"),
        ):
            async with s.post(live.url + "/v1/vks", json=bad) as r:
                e = (await r.json())["error"]
                assert r.status == 400 and (e["code"], e["field"]) == ("MALFORMED", field), e
        async with s.post(live.url + "/v1/vks", json={**body, "vk": b64(b"{}")}) as r:
            e = (await r.json())["error"]
            assert r.status == 400 and e["code"] and e["code"] != "MALFORMED_REQUEST", e


async def test_cli_submit_timeout_names_the_proof_and_exits_5(
    live: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`aggregator submit --timeout` that runs out: exit 5, the proof id on stdout and how to follow
    it on stderr, no traceback; `aggregator status` takes the id as a user might paste it. The CLI's
    main() runs in a thread (it runs its own event loop; this one serves the aggregator)."""
    p = live.spare.pop()
    files = {"proof": p.proof, "vk": p.vk, "public": p.public or b""}
    for name, data in files.items():
        (tmp_path / f"{name}.json").write_bytes(data)
    target = live.target

    async def run(*args: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(cli.main, list(args))
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err

    code, out, err = await run(
        "submit",
        "--target",
        target,
        "--scheme",
        "groth16",
        "--format",
        "snarkjs",
        *(x for n in files for x in (f"--{n}", str(tmp_path / f"{n}.json"))),
        "--timeout",
        "0.2",
    )
    assert code == cli.EXIT_TIMEOUT == 5, err
    res = json.loads(out)
    assert res["status"] == "TIMEOUT"
    assert (
        err.startswith(f"TIMEOUT: proof {res['proof_id']} ") and f"aggregator status {res['proof_id']}" in err
    )
    domain, st = res["proof_id"].split("-")
    code, out, err = await run("status", f" {domain}-0x{st.upper()}", "--target", target)
    assert code == 0, err
    assert json.loads(out)["proof_id"] == res["proof_id"]
    # register-vk and aggregation (the pool's proofs share one key)
    code, out, err = await run(
        "register-vk",
        "--target",
        target,
        "--scheme",
        "groth16",
        "--format",
        "snarkjs",
        "--vk",
        str(tmp_path / "vk.json"),
    )
    _, listed = await _get(live, f"/v1/proofs?statement_hash={live.statements[SLICES]}")  # a pool proof
    assert code == 0 and json.loads(out)["vk_hash"] == listed["proofs"][0]["vk_hash"], err
    agg = listed["proofs"][0]["aggregation_id"]
    code, out, err = await run("aggregation", "1", str(agg), "--target", target)
    _, http_agg = await _get(live, f"/v1/aggregations/1/{agg}")
    got = json.loads(out)
    assert code == 0 and got["kind"] == "ATTESTED" and got["state"] == "finalized", err
    # one spelling across CLI, HTTP and gRPC (tests/aggregator/test_list_spellings.py has the tables)
    _, inc = await _get(live, f"/v1/proofs/{listed['proofs'][0]['proof_id']}/inclusion")
    assert http_agg["kind"] == inc["kind"] == listed["proofs"][0]["kind"] == got["kind"]
    assert http_agg["state"] == got["state"]
    async with sheaf_client.AsyncClient(target) as c:
        g = await c.aggregation(agg, 1)
    assert (g.kind.name, g.state) == (got["kind"], got["state"])
    assert (got["root"], got["leaves"], got["tx_hash"]) == (
        http_agg["root"],
        http_agg["leaves"],
        http_agg["tx_hash"],
    )
    code, _, err = await run("aggregation", "1", "999999", "--target", target)
    assert code == cli.EXIT_REFUSED and "UNKNOWN_AGGREGATION" in err, err
