"""`aggregator` console script: run | worker | operator | submit | status | register-vk | aggregation |
normalize.

A user error never prints a traceback: `main` turns each class of failure into one coded line on
stderr and its own exit status (EXIT_CODES, shown by `--help`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any, cast

import grpc
import psycopg
from procrastinate import exceptions as pexc

from aggregator import crashpoints
from aggregator.admission import ProofVerifier
from aggregator.app import serve
from aggregator.chain import Chain, RpcError
from aggregator.client import AggregatorError, AsyncClient
from aggregator.config import Config, load_key
from aggregator.operator import OperatorProcess
from aggregator.recursion import cache_root
from aggregator.worker import parse_listen, run_worker
from normalizers import cli as ncli
from normalizers.api import Normalizer
from sheaf.errors import SheafError, status_of
from sheaf.logs import LogFormat, add_log_format_argument, log_format, setup_logging
from sheaf.paths import default_srs
from sheaf.schemes import PRODUCER_NAMES, SCHEME_NAMES
from sheaf.srs_id import SrsError, srs_id
from sheaf.v1 import aggregator_pb2 as pb


def _read(path: str | None) -> bytes | None:
    return None if path is None else Path(path).read_bytes()


def _hex(b: bytes) -> str:
    return "0x" + bytes(b).hex()


# -- exit statuses (issue 16): one per class of failure, documented in --help -----------------------
EXIT_OK = 0
EXIT_INTERNAL = 1  # a bug: SHEAF_DEBUG=1 shows the traceback
EXIT_REFUSED = 2  # a coded refusal (the aggregator's, or a local check's such as SRS_*)
EXIT_NOT_FINALIZED = 3  # the proof ended REJECTED or FAILED
EXIT_NOT_ON_CHAIN = 4  # the receipt did not verify on chain (submit --rpc-url)
EXIT_TIMEOUT = 5  # still not final after --timeout (the proof id is printed)
EXIT_UNREACHABLE = 6  # the aggregator or the RPC node did not answer
EXIT_FILE = 7  # an input file is missing or unreadable
EXIT_CONFIG = 8  # the configuration is invalid (TOML syntax, unknown key, bad value)
EXIT_USAGE = 64  # bad command line (BSD sysexits EX_USAGE; argparse's own 2 would collide)
EXIT_CODES = """exit status:
  0   success
  1   internal error (a bug; SHEAF_DEBUG=1 prints the traceback)
  2   refused: a coded error from the aggregator or a local check (the code is printed)
  3   the proof ended REJECTED or FAILED
  4   the receipt did not verify on chain (submit --rpc-url)
  5   timed out waiting (submit --timeout); the proof id is printed: follow it with
      `aggregator status <proof id>`
  6   unreachable: the aggregator or the RPC node did not answer
  7   an input file is missing or unreadable
  8   invalid configuration (TOML syntax, unknown key, bad value)
  64  bad command line (unknown flag, missing argument)
  130 interrupted (Ctrl-C)"""


class ConfigError(Exception):
    """The configuration file or its values are invalid."""


class _Parser(argparse.ArgumentParser):
    """argparse with EXIT_USAGE for a bad command line and the exit statuses in every --help."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        kw.setdefault("epilog", EXIT_CODES)
        kw.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kw)

    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


_PROOF_ID = re.compile(r"([0-9]{1,19})-(?:0x)?([0-9a-f]{64})")


def normalize_proof_id(raw: str) -> str:
    """The proof id in what a user copied: `1-<hex>` as printed, with a 0x before the hash, in upper
    case, quoted, or at the end of an explorer or API URL (`.../proof/1-<hex>`)."""
    s = raw.strip().strip("'\"").rstrip("/")
    s = s.rsplit("/", 1)[-1].lower()
    m = _PROOF_ID.fullmatch(s)
    return f"{int(m.group(1))}-{m.group(2)}" if m else raw.strip()


def _version() -> str:
    try:
        return metadata.version("sheaf")
    except metadata.PackageNotFoundError:
        return "unknown"


log = logging.getLogger("sheaf.cli")


def _log_format(a: argparse.Namespace) -> LogFormat:
    """--log-format, else $SHEAF_LOG_FORMAT, else json (the services' logs are read by machines)."""
    try:
        return log_format(getattr(a, "log_format", None), "json")
    except ValueError as e:
        raise ConfigError(str(e)) from e


def cmd_run(a: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {
        "db_path": a.db,
        "grpc_listen": a.grpc,
        "http_listen": a.http,
        "rpc_url": a.rpc_url,
        "registry": a.registry,
    }
    try:
        cfg = Config.load(a.config, **overrides)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{a.config}: not valid TOML: {e}") from e
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{a.config or 'configuration'}: {e}") from e
    setup_logging(cfg.log_level, _log_format(a))
    asyncio.run(serve(cfg, a.ready_file))
    return 0


def cmd_worker(a: argparse.Namespace) -> int:
    """`aggregator worker`: prove queued outer proofs (aggregator/worker.py). Settings from the
    flags, else the config file's db_url / [aggregator.recursion] queue_*, cache_dir, worker_bin."""
    try:
        cfg = Config.load(a.config) if a.config else Config()
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{a.config}: not valid TOML: {e}") from e
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{a.config}: {e}") from e
    rc = cfg.recursion
    url = a.db_url or os.environ.get("SHEAF_DB_URL", "") or rc.queue_url or cfg.db_url
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            "aggregator worker needs --db-url postgresql://... (or $SHEAF_DB_URL, or db_url in --config)"
        )
    if a.concurrency < 1:
        raise ConfigError("--concurrency must be >= 1")
    if a.heartbeat_s <= 0 or a.stalled_after_s < 2 * a.heartbeat_s:
        raise ConfigError("--stalled-after-s must be at least twice --heartbeat-s (> 0)")
    if a.http_listen:
        try:
            parse_listen(a.http_listen)
        except ValueError as e:
            raise ConfigError(str(e)) from e
    cache = a.cache or cache_root(rc)
    setup_logging(a.log_level, _log_format(a))
    try:
        return asyncio.run(
            run_worker(
                url,
                schema=a.schema or rc.queue_schema,
                cache_dir=cache,
                binary=a.worker_bin or rc.worker_bin,
                concurrency=a.concurrency,
                circuits=a.circuit,
                name=a.name or "",
                heartbeat_s=a.heartbeat_s,
                stalled_after_s=a.stalled_after_s,
                drain_s=a.drain_s,
                ready_timeout_s=rc.ready_timeout_s,
                preload=a.preload,
                tree_cache_dir=a.tree_cache or str(Path(cache).parent / "tree"),
                http_listen=a.http_listen or "",
                ready_file=a.ready_file or "",
            )
        )
    except (psycopg.OperationalError, pexc.ConnectorException) as e:
        return _fail("UNREACHABLE", f"PostgreSQL: {e}", EXIT_UNREACHABLE)
    except ValueError as e:
        raise ConfigError(str(e)) from e


def cmd_operator(a: argparse.Namespace) -> int:
    setup_logging(a.log_level, _log_format(a))
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
        log.info("operator: Halo2 KZG SRS %s (SRS id %s)", srs, sid, extra={"srs": str(srs), "srs_id": sid})
    else:
        log.warning("operator: no KZG SRS (--srs, $SHEAF_SRS or a dev SRS): cannot verify Halo2")

    crashpoints.arm_from_env()  # test-only (docs/operations.md)

    async def go() -> None:
        n = Normalizer(srs=srs, groth16_backend=a.groth16_backend)
        op = OperatorProcess(
            a.target,
            key,
            ProofVerifier(n),
            chain_id=a.chain_id,
            registry=a.registry,
            srs_id=sid,
            max_ttl_s=a.max_ttl,
            state=a.state,
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
            if e.status == grpc.StatusCode.UNAVAILABLE:
                raise  # main: UNREACHABLE, exit 6
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
        try:
            st = await c.wait_finalized(r.proof_id, a.timeout)
        except AggregatorError as e:
            if e.status != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
            out["status"] = "TIMEOUT"
            print(json.dumps(out, indent=1))
            print(
                f"TIMEOUT: proof {r.proof_id} is not final after {a.timeout:g} s; it stays queued. "
                f"Follow it with: aggregator status {r.proof_id} --target {a.target}",
                file=sys.stderr,
            )
            return EXIT_TIMEOUT
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
            st = await c.status(normalize_proof_id(a.proof_id))
        except AggregatorError as e:
            if e.status == grpc.StatusCode.UNAVAILABLE:
                raise  # main: UNREACHABLE, exit 6
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
            "batch_id": st.batch_id or None,
        }
        if st.HasField("progress"):  # its batch is being proved recursively (an older server: never)
            out["stage"] = "proving"
            out["progress"] = st.progress
        if st.status == pb.FINALIZED:
            out["receipt"] = _receipt_json(await c.inclusion(st.proof_id))
        print(json.dumps(out, indent=1))
        return 0


def cmd_status(a: argparse.Namespace) -> int:
    return asyncio.run(_status(a))


async def _register_vk(a: argparse.Namespace) -> int:
    async with AsyncClient(a.target) as c:
        h = await c.register_vk(a.scheme, a.format, Path(a.vk).read_bytes(), _read(a.settings))
    print(json.dumps({"vk_hash": _hex(h), "scheme": a.scheme, "format": a.format}, indent=1))
    return EXIT_OK


def cmd_register_vk(a: argparse.Namespace) -> int:
    return asyncio.run(_register_vk(a))


async def _aggregation(a: argparse.Namespace) -> int:
    async with AsyncClient(a.target) as c:
        g = await c.aggregation(a.domain, a.aggregation_id)
    out = {
        "domain_id": g.domain_id,
        "aggregation_id": g.aggregation_id,
        "batch_id": g.batch_id,
        "kind": pb.AggregationKind.Name(g.kind),
        "root": _hex(g.root),
        "leaf_count": g.leaf_count,
        "state": g.state,
        "tx_hash": _hex(g.tx_hash) if g.tx_hash else None,
        "block_number": g.block_number or None,
        "leaves": [_hex(x) for x in g.leaves],
    }
    print(json.dumps(out, indent=1))
    return EXIT_OK


def cmd_aggregation(a: argparse.Namespace) -> int:
    return asyncio.run(_aggregation(a))


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="aggregator", description="Sheaf aggregator")
    p.add_argument("--version", action="version", version=f"aggregator (sheaf) {_version()}")
    add_log_format_argument(p, "json")
    sub = p.add_subparsers(dest="command", required=True)
    default_target = os.environ.get("SHEAF_AGGREGATOR", "127.0.0.1:50051")

    r = sub.add_parser("run", help="run the aggregator (gRPC, HTTP, batcher, chain submitter)")
    r.add_argument("--config", help="sheaf.toml ([aggregator] table)")
    r.add_argument("--db", help="SQLite database path (overrides db_path)")
    r.add_argument("--grpc", help="gRPC listen address, e.g. 127.0.0.1:50051")
    r.add_argument("--http", help="HTTP listen address, e.g. 127.0.0.1:8080")
    r.add_argument("--rpc-url", help="EVM JSON-RPC URL (overrides rpc_url)")
    r.add_argument("--registry", help="SheafRegistry address (default: the deployment manifest's)")
    r.add_argument("--ready-file", help="write the bound ports here as JSON once serving")
    add_log_format_argument(r, "json", sub=True)
    r.set_defaults(fn=cmd_run)

    w = sub.add_parser(
        "worker",
        help='prove queued recursive batches (recursion.queue = "postgres"): keys pinned by circuit hash',
    )
    w.add_argument("--db-url", help="the queue's PostgreSQL (default $SHEAF_DB_URL, else --config's)")
    w.add_argument("--config", help="sheaf.toml: db_url and [aggregator.recursion] queue_* / cache_dir")
    w.add_argument("--concurrency", type=int, default=1, help="jobs at once (one prover process each)")
    w.add_argument("--schema", help="the queue's schema (default recursion.queue_schema: sheaf_queue)")
    w.add_argument("--cache", help="recursion key cache (default $SHEAF_CACHE/recursion)")
    w.add_argument(
        "--tree-cache",
        help="recursion-tree key cache (default: the tree/ next to --cache, i.e. $SHEAF_CACHE/tree)",
    )
    w.add_argument("--worker-bin", help="sheaf-gnark (default $SHEAF_GNARK_BIN, build/bin, PATH)")
    w.add_argument(
        "--circuit",
        action="append",
        help="serve only this circuit (hash or prefix; repeatable); default: every cached one",
    )
    w.add_argument("--preload", action="store_true", help="load the served circuits' keys at start")
    w.add_argument("--name", help="this worker's name in the job rows (default host:pid)")
    w.add_argument("--heartbeat-s", type=float, default=10.0, help="heartbeat period (default 10)")
    w.add_argument(
        "--stalled-after-s",
        type=float,
        default=30.0,
        help="a worker silent this long lost its job: it runs again elsewhere (default 30)",
    )
    w.add_argument(
        "--drain-s", type=float, default=30.0, help="on SIGTERM, let a running job finish this long"
    )
    w.add_argument(
        "--http-listen",
        help="serve /healthz, /readyz and /metrics on HOST:PORT (port 0: a free one); default: none",
    )
    w.add_argument("--ready-file", help="write the bound HTTP port here as JSON once serving")
    w.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    add_log_format_argument(w, "json", sub=True)
    w.set_defaults(fn=cmd_worker)

    o = sub.add_parser("operator", help="run an attesting operator (key: SHEAF_OPERATOR_KEY or --keystore)")
    o.add_argument(
        "--target", default=default_target, help="aggregator gRPC address (default $SHEAF_AGGREGATOR)"
    )
    o.add_argument("--keystore", help="JSON keystore; password from SHEAF_OPERATOR_PASSWORD")
    o.add_argument("--chain-id", type=int, help="refuse to sign for any other chain")
    o.add_argument("--registry", help="refuse to sign for any other registry")
    o.add_argument(
        "--max-ttl",
        type=int,
        default=3600,
        help="refuse to sign an attestation valid longer than this many seconds (DEADLINE_TOO_FAR; "
        "at most the registry's 86400; the aggregator's attest_ttl_s must not exceed it)",
    )
    o.add_argument(
        "--state",
        type=Path,
        default=None,
        help="file keeping which root this operator signed per aggregation id across restarts "
        "(recommended in production: without it a restarted operator may sign a re-used id early)",
    )
    o.add_argument(
        "--srs",
        help="ezkl KZG SRS for Halo2 re-verification: the aggregator's or a k=1 cut of it (same SRS id; "
        "default $SHEAF_SRS, else this machine's dev SRS)",
    )
    o.add_argument(
        "--groth16-backend",
        default="sidecar",
        choices=["sidecar", "groth16py"],
        help="Groth16 verifier: the gnark sidecar or the in-process arkworks binding",
    )
    o.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    add_log_format_argument(o, "json", sub=True)
    o.set_defaults(fn=cmd_operator)

    s = sub.add_parser("submit", help="submit a proof, wait for FINALIZED, print and check the receipt")
    s.add_argument(
        "--target", default=default_target, help="aggregator gRPC address (default $SHEAF_AGGREGATOR)"
    )
    s.add_argument("--scheme", required=True, choices=SCHEME_NAMES, help="proof system")
    s.add_argument("--format", required=True, choices=PRODUCER_NAMES, help="the prover that wrote the files")
    s.add_argument("--proof", required=True, help="proof file, as the prover wrote it")
    k = s.add_mutually_exclusive_group(required=True)
    k.add_argument("--vk", help="verifying key file")
    k.add_argument("--vk-hash", help="0x-hex hash of a key registered before")
    s.add_argument("--public", help="public inputs file (snarkjs, gnark)")
    s.add_argument("--settings", help="ezkl settings.json (halo2)")
    s.add_argument("--domain", type=int, default=0, help="domain id (0: the aggregator's default)")
    s.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for FINALIZED (exit 5 after)"
    )
    s.add_argument("--no-wait", action="store_true", help="print the proof id once acked; do not wait")
    s.add_argument("--rpc-url", help="check the receipt on-chain with verifyProofAggregation")
    s.set_defaults(fn=cmd_submit)

    st = sub.add_parser(
        "status",
        help="print a proof's status as JSON (receipt when FINALIZED; while its batch is proved "
        "recursively, the prover's progress)",
        description="Print a proof's status as JSON: status, batch_id, aggregation id, transaction;\n"
        "the receipt when FINALIZED; while its batch is being proved recursively here,\n"
        '"stage": "proving" and "progress": the tree prover\'s "level L of T, j of n jobs done",\n'
        'the flat prover\'s "attempt a of m" (the text /readyz and the explorer show).',
    )
    st.add_argument(
        "proof_id", help="<domain>-<statement hash>, as printed (0x, upper case or a URL ending in it work)"
    )
    st.add_argument(
        "--target", default=default_target, help="aggregator gRPC address (default $SHEAF_AGGREGATOR)"
    )
    st.set_defaults(fn=cmd_status)

    v = sub.add_parser("register-vk", help="register a verifying key; print its vk_hash (submit --vk-hash)")
    v.add_argument(
        "--target", default=default_target, help="aggregator gRPC address (default $SHEAF_AGGREGATOR)"
    )
    v.add_argument("--scheme", required=True, choices=SCHEME_NAMES, help="proof system")
    v.add_argument("--format", required=True, choices=PRODUCER_NAMES, help="the prover that wrote the key")
    v.add_argument("--vk", required=True, help="verifying key file")
    v.add_argument("--settings", help="ezkl settings.json (halo2)")
    v.set_defaults(fn=cmd_register_vk)

    g = sub.add_parser("aggregation", help="print an aggregation: root, leaves, kind, state, transaction")
    g.add_argument("domain", type=int, help="domain id")
    g.add_argument("aggregation_id", type=int, help="aggregation id within the domain")
    g.add_argument(
        "--target", default=default_target, help="aggregator gRPC address (default $SHEAF_AGGREGATOR)"
    )
    g.set_defaults(fn=cmd_aggregation)

    ncli.register(cast("argparse._SubParsersAction[argparse.ArgumentParser]", sub))  # `aggregator normalize`
    return p


def _fail(code: str, message: str, status: int) -> int:
    print(f"{code}: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    try:
        return int(a.fn(a))
    except KeyboardInterrupt:
        return 130
    except ConfigError as e:
        return _fail("CONFIG", str(e), EXIT_CONFIG)
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        return _fail("FILE", f"{e.filename}: {e.strerror}", EXIT_FILE)
    except AggregatorError as e:
        if e.status in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return _fail(
                "UNREACHABLE", f"aggregator {getattr(a, 'target', '')}: {e.message}", EXIT_UNREACHABLE
            )
        return _fail(
            e.code or e.status.name, f"{e.field}: {e.message}" if e.field else e.message, EXIT_REFUSED
        )
    except RpcError as e:
        return _fail("UNREACHABLE", f"RPC node: {e}", EXIT_UNREACHABLE)
    except SheafError as e:
        unavailable = status_of(e).grpc == "UNAVAILABLE"
        msg = f"{e.field}: {e.message}" if e.field else e.message
        return _fail(str(e.code), msg, EXIT_UNREACHABLE if unavailable else EXIT_REFUSED)
    except (ConnectionError, TimeoutError) as e:
        return _fail("UNREACHABLE", f"{type(e).__name__}: {e}", EXIT_UNREACHABLE)
    except Exception as e:
        if os.environ.get("SHEAF_DEBUG"):
            raise
        return _fail(
            "INTERNAL", f"{type(e).__name__}: {e} (a bug; SHEAF_DEBUG=1 shows the traceback)", EXIT_INTERNAL
        )


if __name__ == "__main__":
    sys.exit(main())
