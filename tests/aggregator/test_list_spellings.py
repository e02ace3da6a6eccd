"""One spelling of proof statuses, aggregation kinds and batch states across the interfaces (issue 16):
the store's values, the proto enums (gRPC, and the CLI, which prints their names), the HTTP API's
JSON and query filters (the code and docs/openapi.yaml), the gRPC list filters and the Python SDK.
Proof statuses: ProofStatus names (FINALIZED). Kinds: AggregationKind names (ATTESTED). Batch states:
lower case (finalized). A live check of the same values on one real aggregation, through the CLI, HTTP
and gRPC, is in test_explorer.py (test_cli_submit_timeout_names_the_proof_and_exits_5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sheaf_client
import yaml

from aggregator import explorer, server
from aggregator.reads import BATCH_STATES, KINDS, kind_name, kind_of
from aggregator.records import KIND_ATTESTED, KIND_RECURSIVE, BatchRow, BatchState, ProofRow, Status
from aggregator.store import ListedProof
from sheaf import inference as spec
from sheaf.errors import InvalidInput
from sheaf.v1 import aggregator_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
STATUSES = {s.name for s in Status}
KIND_SET = {"ATTESTED", "RECURSIVE"}
STATES = {"pending", "signed", "submitted", "finalized", "failed"}


def _enum_names(enum: Any) -> set[str]:
    return {n for n in enum.keys() if not n.endswith("UNSPECIFIED")}


def _openapi_enums(node: Any, key: str, out: list[set[str]]) -> list[set[str]]:
    """Every `enum` of a property or query parameter named `key` in the spec."""
    if isinstance(node, dict):
        if node.get("name") == key and "enum" in node.get("schema", {}):
            out.append(set(node["schema"]["enum"]))
        for k, v in node.items():
            if k == key and isinstance(v, dict) and "enum" in v:
                out.append(set(v["enum"]))
            _openapi_enums(v, key, out)
    elif isinstance(node, list):
        for x in node:
            _openapi_enums(x, key, out)
    return out


def test_the_tables_agree() -> None:
    # proof statuses: store, proto (gRPC and CLI), SDK
    assert _enum_names(pb.ProofStatus) == STATUSES
    assert {s.name for s in sheaf_client.ProofStatus} - {"UNSPECIFIED"} == STATUSES
    assert all(pb.ProofStatus.Value(s.name) == int(s) for s in Status)
    # kinds: proto (gRPC and CLI), HTTP, SDK, and the registry's kind byte
    assert _enum_names(pb.AggregationKind) == KIND_SET == set(KINDS)
    assert {k.name for k in sheaf_client.AggregationKind} - {"UNSPECIFIED"} == KIND_SET
    assert (pb.RECURSIVE, pb.ATTESTED) == (spec.KIND_RECURSIVE, spec.KIND_ATTESTED)
    assert {kind_name(KIND_ATTESTED), kind_name(KIND_RECURSIVE)} == KIND_SET
    assert all(kind_of(kind_name(k)) == k for k in (KIND_ATTESTED, KIND_RECURSIVE))
    # batch states: store, HTTP filters, gRPC filter, SDK
    stored = {v for k, v in vars(BatchState).items() if not k.startswith("_")}
    assert stored == STATES == set(BATCH_STATES) == set(sheaf_client.BATCH_STATES)


def test_openapi_uses_the_same_spellings() -> None:
    spec_doc = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    kinds = _openapi_enums(spec_doc, "kind", [])
    states = _openapi_enums(spec_doc, "state", [])
    statuses = _openapi_enums(spec_doc, "status", [])
    assert len(kinds) >= 5 and all(k == KIND_SET for k in kinds), kinds
    assert len(states) >= 2 and all(s == STATES for s in states), states
    assert statuses and all(s <= STATUSES for s in statuses) and STATUSES in statuses, statuses


def _rows(kind: str) -> tuple[BatchRow, ListedProof]:
    b = BatchRow(7, 1, kind, 3, b"\x01" * 32, 1, BatchState.FINALIZED, b"\x02" * 32, 9, None, "", 5)
    r = ProofRow(
        "1-" + "ab" * 32,
        1,
        b"\xab" * 32,
        b"\x11" * 32,
        kind,
        "groth16",
        "snarkjs",
        b"",
        b"",
        None,
        None,
        Status.FINALIZED,
        "",
        "",
        7,
        0,
        6,
    )
    return b, ListedProof(1, "", 5, r)


@pytest.mark.parametrize("kind", [KIND_ATTESTED, KIND_RECURSIVE])
def test_http_and_grpc_write_one_spelling(kind: str) -> None:
    b, listed = _rows(kind)
    http_b, http_p = explorer.batch_json(b), explorer.listed_json(listed, {7: b})
    grpc_b, grpc_p = server.aggregation_msg(b), server.summary_msg(listed, {7: b})
    assert http_b["kind"] == http_p["kind"] == pb.AggregationKind.Name(grpc_b.kind) == kind_name(kind)
    assert pb.AggregationKind.Name(grpc_p.kind) == http_p["kind"]
    assert http_b["state"] == grpc_b.state == "finalized"
    assert http_p["status"] == pb.ProofStatus.Name(grpc_p.status) == "FINALIZED"


def test_filters_take_the_spelling_they_write() -> None:
    """gRPC list filters take the enum (kinds, statuses) and the lower-case state; HTTP's take the same
    words as strings; the other spellings are MALFORMED."""
    got = server.batch_filters(pb.ListAggregationsRequest(state="finalized", kind=pb.ATTESTED))
    assert (got["state"], got["kind"]) == ("finalized", KIND_ATTESTED)
    with pytest.raises(InvalidInput) as e:
        server.batch_filters(pb.ListAggregationsRequest(state="FINALIZED"))
    assert (e.value.code, e.value.field) == ("MALFORMED", "state")
    assert server.proof_filters(pb.ListProofsRequest(status=pb.FINALIZED))["status"] is Status.FINALIZED
