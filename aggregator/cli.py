"""`aggregator` console script: run | operator | submit | status | normalize."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from aggregator.admission import ProofVerifier
from aggregator.app import serve, setup_logging
from aggregator.chain import Chain
from aggregator.client import AggregatorError, AsyncClient
from aggregator.config import Config, load_key
from aggregator.operator import OperatorProcess
from normalizers import cli as ncli
from normalizers.api import Normalizer
from sheaf.errors import SheafError
from sheaf.paths import default_srs
from sheaf.schemes import PRODUCER_NAMES, SCHEME_NAMES
from sheaf.srs_id import SrsError, srs_id
from sheaf.v1 import aggregator_pb2 as pb


def _read(path: str | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes()


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


def cmd_run(a: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {
        "db_path": a.db,
        "grpc_listen": a.grpc,
        "http_listen": a.http,
        "rpc_url": a.rpc_url,
        "registry": a.registry,
    }
    cfg = Config.load(a.config, **overrides)
    setup_logging(cfg.log_level)
    asyncio.run(serve(cfg, a.ready_file))
    return 0


def cmd_operator(a: argparse.Namespace) -> int:
    setup_logging(a.log_level)
    key = load_key("SHEAF_OPERATOR_KEY", a.keystore or "", "SHEAF_OPERATOR_PASSWORD")
    # the SRS this operator verifies Halo2 with (the Normalizer's choice) and its id, checked by the
    # aggregator against its own at the first FetchBatch (SRS_MISMATCH names both)
    srs = a.srs or default_srs()
    try:
        sid = srs_id(srs) if srs else ""
    except SrsError as e:
        print(f"{e.code}: --srs: {e.message}", file=sys.stderr)
        return 2
    if srs:
        print(f"operator: Halo2 KZG SRS {srs} (SRS id {sid})", file=sys.stderr)
    else:
        print("operator: no KZG SRS (--srs, $SHEAF_SRS or a dev SRS): cannot verify Halo2", file=sys.stderr)

    async def go() -> None:
        n = Normalizer(srs=srs, groth16_backend=a.groth16_backend)
        op = OperatorProcess(
            a.target, key, ProofVerifier(n), chain_id=a.chain_id, registry=a.registry, srs_id=sid
        )
        task = asyncio.create_task(op.run())

        def stop() -> None:
            # a long-poll may be in flight: cancel it rather than wait for it
            op.stopping.set()
            task.cancel()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop)
        try:
            await task
        except asyncio.CancelledError:
            pass

    try:
        asyncio.run(go())
    except SheafError as e:  # SRS_MISMATCH, PERMISSION_DENIED: coded, no traceback
        print(f"{e.code}: {e.field}: {e.message}" if e.field else f"{e.code}: {e.message}", file=sys.stderr)
        return 2
    return 0


def _receipt_json(inc: Any) -> dict[str, Any]:
    return {
        "proof_id": inc.proof_id,
        "domain_id": inc.domain_id,
        "aggregation_id": inc.aggregation_id,
        "kind": pb.AggregationKind.Name(inc.kind),
        "root": _hex(inc.root),
        "leaf": _hex(inc.leaf),
        "merkle_path": [_hex(p) for p in inc.merkle_path],
        "leaf_count": inc.leaf_count,
        "index": inc.index,
        "tx_hash": _hex(inc.tx_hash),
        "block_number": inc.block_number,
        "registry": inc.registry,
        "chain_id": inc.chain_id,
    }


async def _submit(a: argparse.Namespace) -> int:
    vk_hash = bytes.fromhex(a.vk_hash.removeprefix("0x")) if a.vk_hash else None
    async with AsyncClient(a.target) as c:
        try:
            r = await c.submit(
                a.scheme,
                a.format,
                Path(a.proof).read_bytes(),
                vk=_read(a.vk),
                vk_hash=vk_hash,
                public=_read(a.public),
                settings=_read(a.settings),
                domain_id=a.domain,
            )
        except AggregatorError as e:
            print(
                json.dumps(
                    {
                        "error": {
                            "status": e.status.name,
                            "code": e.code,
                            "field": e.field,
                            "message": e.message,
                        }
                    }
                ),
                file=sys.stderr,
            )
            return 2
        out: dict[str, Any] = {
            "proof_id": r.proof_id,
            "statement_hash": _hex(r.statement_hash),
            "duplicate": r.duplicate,
        }
        if a.no_wait:
            print(json.dumps(out, indent=1))
            return 0
        st = await c.wait_finalized(r.proof_id, a.timeout)
        out["status"] = pb.ProofStatus.Name(st.status)
        if st.status != pb.FINALIZED:
            out["reason_code"] = st.reason_code
            print(json.dumps(out, indent=1))
            return 3
        inc = await c.inclusion(r.proof_id)
        out["receipt"] = _receipt_json(inc)
        if a.rpc_url:
            chain = Chain(a.rpc_url, inc.registry)
            out["verified_on_chain"] = await chain.verify_inclusion(
                inc.domain_id, inc.aggregation_id, inc.leaf, list(inc.merkle_path), inc.leaf_count, inc.index
            )
        print(json.dumps(out, indent=1))
        return 0 if out.get("verified_on_chain", True) else 4


def cmd_submit(a: argparse.Namespace) -> int:
    return asyncio.run(_submit(a))


async def _status(a: argparse.Namespace) -> int:
    async with AsyncClient(a.target) as c:
        try:
            st = await c.status(a.proof_id)
        except AggregatorError as e:
            print(
                json.dumps(
                    {
                        "error": {
                            "status": e.status.name,
                            "code": e.code,
                            "field": e.field,
                            "message": e.message,
                        }
                    }
                ),
                file=sys.stderr,
            )
            return 2
        out: dict[str, Any] = {
            "proof_id": st.proof_id,
            "status": pb.ProofStatus.Name(st.status),
            "reason_code": st.reason_code,
            "message": st.message,
            "domain_id": st.domain_id,
            "aggregation_id": st.aggregation_id,
            "tx_hash": _hex(st.tx_hash) if st.tx_hash else None,
        }
        if st.status == pb.FINALIZED:
            out["receipt"] = _receipt_json(await c.inclusion(a.proof_id))
        print(json.dumps(out, indent=1))
        return 0


def cmd_status(a: argparse.Namespace) -> int:
    return asyncio.run(_status(a))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aggregator", description="Sheaf aggregator")
    sub = p.add_subparsers(dest="command", required=True)
    default_target = os.environ.get("SHEAF_AGGREGATOR", "127.0.0.1:50051")

    r = sub.add_parser("run", help="run the aggregator (gRPC, HTTP, batcher, chain submitter)")
    r.add_argument("--config", help="sheaf.toml ([aggregator] table)")
    r.add_argument("--db")
    r.add_argument("--grpc", help="gRPC listen address, e.g. 127.0.0.1:50051")
    r.add_argument("--http", help="HTTP listen address, e.g. 127.0.0.1:8080")
    r.add_argument("--rpc-url")
    r.add_argument("--registry")
    r.add_argument("--ready-file", help="write the bound ports here as JSON once serving")
    r.set_defaults(fn=cmd_run)

    o = sub.add_parser("operator", help="run an attesting operator (key: SHEAF_OPERATOR_KEY or --keystore)")
    o.add_argument("--target", default=default_target)
    o.add_argument("--keystore", help="JSON keystore; password from SHEAF_OPERATOR_PASSWORD")
    o.add_argument("--chain-id", type=int, help="refuse to sign for any other chain")
    o.add_argument("--registry", help="refuse to sign for any other registry")
    o.add_argument(
        "--srs",
        help="ezkl KZG SRS for Halo2 re-verification: the aggregator's or a k=1 cut of it (same SRS id; "
        "default $SHEAF_SRS, else this machine's dev SRS)",
    )
    o.add_argument("--groth16-backend", default="sidecar", choices=["sidecar", "groth16py"])
    o.add_argument("--log-level", default="INFO")
    o.set_defaults(fn=cmd_operator)

    s = sub.add_parser("submit", help="submit a proof, wait for FINALIZED, print and check the receipt")
    s.add_argument("--target", default=default_target)
    s.add_argument("--scheme", required=True, choices=SCHEME_NAMES)
    s.add_argument("--format", required=True, choices=PRODUCER_NAMES)
    s.add_argument("--proof", required=True)
    k = s.add_mutually_exclusive_group(required=True)
    k.add_argument("--vk")
    k.add_argument("--vk-hash")
    s.add_argument("--public")
    s.add_argument("--settings")
    s.add_argument("--domain", type=int, default=0)
    s.add_argument("--timeout", type=float, default=300.0)
    s.add_argument("--no-wait", action="store_true")
    s.add_argument("--rpc-url", help="check the receipt on-chain with verifyProofAggregation")
    s.set_defaults(fn=cmd_submit)

    st = sub.add_parser("status", help="print a proof's status (and receipt when FINALIZED)")
    st.add_argument("proof_id")
    st.add_argument("--target", default=default_target)
    st.set_defaults(fn=cmd_status)

    ncli.register(sub)  # `aggregator normalize ...`
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    return int(a.fn(a))


if __name__ == "__main__":
    sys.exit(main())
