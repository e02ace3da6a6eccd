"""`make demo`: the whole system on embedded defaults, then a clean shutdown.

Stages (each prints what it did and its time; any failure stops what was started and exits 1):
  0. prepare: read the slice config, make sure the INSECURE dev SRS exists, compile contracts/src
  1. anvil on loopback; deploy SheafRegistry, give it domain 1, three operators, threshold 2;
     source-verify it (Sourcify rules, full match required)
  1b. the recursive route (`--recursion on`, the default): the flat outer circuit b1_p2's keys (made
     once per machine, INSECURE dev setup, then cached; elapsed time and an estimate shown meanwhile),
     its gnark verifier + adapter deployed and set in the registry, both source-verified. The gnark
     Groth16 slice is then proved recursively (RECURSIVE); the ezkl and gnark PLONK slices are attested
  2. `aggregator run` (config and SQLite file in the workdir) and two of the three operators as
     separate `aggregator operator` processes (2-of-3 attestation; the third stays offline)
  3. the reference prover on the sample model (provers/examples/slices.toml: gnark-groth16 ->
     ezkl -> gnark-plonk) as its own `prover prove` process (ezkl's native output: logs/prover.log)
  4. every proof submitted over gRPC, followed to FINALIZED, inclusion checked on-chain; the
     per-slice table (provers.cli.proof_table)
  5. one ExampleConsumer per slice model (it pins the slice's scheme and vk hash): it accepts each
     slice's result, refuses the result with a wrong output and a replay; consumers source-verified
  6. gas from anvil receipts: each slice's own verifier (gnark `export-solidity`, ezkl's EVM
     verifier, compiled with tools/solc) vs the aggregated route (submission / leaves + inclusion)
  6b. the same run as one whole inference (docs/inference.md): `prover submit-inference`'s path (model
     spec registered with the aggregator, one SubmitInference, receipt checked by the SDK against the
     registry), the model registered with SheafInference (deployed next to the registry), one
     ExampleInferenceConsumer accepting the model's result in one call (a wrong output and a replay
     refused); its gas next to per-slice acceptance and direct verification
  7. stop operators, aggregator, anvil (SIGTERM, graceful); check that no process is left

Keys are anvil's public dev keys (0 owner/app, 1 aggregator submitter, 2-4 operators): local only.
`--slices a,b` proves fewer slices (faster); `--summary FILE` writes the outcomes as JSON.
`--keep-running` (or `make demo KEEP_RUNNING=1`) holds before stage 7: everything stays up for
browsing, with the explorer's URL printed, until Ctrl-C or SIGTERM; then stage 7 runs as usual.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from aggregator.client import Client
from deploy.anvil import ANVIL_DEV_KEYS, Anvil
from deploy.api import DeployedContract, Manifest, configure_registry, deploy_all, save_manifest
from deploy.chain import (
    call_tx_gas,
    connect,
    constructor_types,
    deploy_contract,
    encode_constructor_args,
    exec_gas,
    transact,
)
from deploy.compile import Artifact, compile_contracts, compile_files, compiler_version
from deploy.inference import CONSUMER, deploy_consumer, inference_contract, register_model
from deploy.recursive import RecursiveDeployment, deploy_recursive_verifier, gnark_binary
from deploy.source_verify import FULL, verify_contract, verify_manifest
from normalizers.api import Envelope, Normalizer, ProofInput
from normalizers.statement import BN254_R
from provers.cli import proof_table
from provers.errors import ProverError
from provers.ezkl_backend import evm_calldata, evm_verifier
from provers.inference import submit_inference
from provers.pipeline import (
    SliceProof,
    SubmitResult,
    load_run_manifest,
    load_run_slices,
    restrict_slices,
    submit_and_wait,
)
from provers.slicer import load_config
from provers.srs import cut_verifier_srs, ensure_dev_srs
from sheaf.errors import SheafError
from sheaf.hashing import keccak256
from sheaf.paths import REPO_BIN, REPO_ROOT, dev_srs_path, recursion_cache_dir
from sheaf.recursion_keys import verifier_key
from sheaf.schemes import Scheme

DEFAULT_WORKDIR = REPO_ROOT / "build" / "demo"
DEFAULT_CONFIG = REPO_ROOT / "provers" / "examples" / "slices.toml"
DOMAIN = 1
THRESHOLD = 2
KIND_ANY, RECURSIVE, ATTESTED = 0, 1, 2  # registry kinds (a consumer's 0 takes either)
KIND_NAMES = {RECURSIVE: "RECURSIVE", ATTESTED: "ATTESTED"}
KIND_CODES = {v: k for k, v in KIND_NAMES.items()}
# The recursive route (issue 14): the flat outer circuit verifying ONE gnark Groth16 slice proof per
# batch. Slice circuits have two public inputs (InCommit, OutCommit: gnark/slice/circuit.go), so the
# shape is b1_p2. Its cold INSECURE dev setup (2.7M R1CS) is the demo's longest step on a new machine;
# measured on this 2-core box (docs/performance.md, "Demo"). The PLONK slice uses the keccak transcript
# its own Solidity verifier needs, and the flat circuit's PLONK slot would make a ~7.5M-R1CS circuit
# (~35 min of cold setup), so it is attested like the ezkl Halo2 slice (ezkl has no aggregation).
RECURSION_BATCH, RECURSION_NPUB = 1, 2
COLD_SETUP_ESTIMATE = "~10 min on 2 idle cores, ~20 min when the machine is busy"
OWNER_KEY, SUBMITTER_KEY, OPERATOR_KEYS = ANVIL_DEV_KEYS[0], ANVIL_DEV_KEYS[1], ANVIL_DEV_KEYS[2:5]
REVERTED = (ContractCustomError, ContractLogicError, Web3RPCError)


class DemoError(SheafError):
    """A stage did not reach its expected outcome; the message says which and why."""

    def __init__(self, message: str, code: str = "DEMO_STAGE_FAILED", field: str = "") -> None:
        super().__init__(code, field, message)

    def __reduce__(self) -> tuple[type[DemoError], tuple[str, str, str]]:
        return (type(self), (self.message, str(self.code), self.field))


# ------------------------------------------------------------------ output and stage timing


def say(msg: str = "") -> None:
    print(msg, flush=True)


@dataclass
class Timings:
    stages: list[tuple[str, float]] = field(default_factory=list)

    @contextmanager
    def stage(self, title: str) -> Iterator[None]:
        say(f"\n== {title}")
        start = time.monotonic()
        try:
            yield
        finally:
            took = time.monotonic() - start
            self.stages.append((title.split(" (")[0], took))
            say(f"   ({took:.1f}s)")


# ------------------------------------------------------------------ processes we start


def _group_members(pgid: int) -> list[int]:
    """Live pids in process group `pgid` (Linux /proc), zombies excluded."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2 :].split()
        if rest and rest[0] != "Z" and int(rest[2]) == pgid:
            out.append(int(d.name))
    return out


@dataclass
class Service:
    """A child process in its own session (process group = its pid), with its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @staticmethod
    def start(name: str, cmd: Sequence[str], log: Path, env: dict[str, str]) -> Service:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as f:
            p = subprocess.Popen(
                list(cmd), cwd=REPO_ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
            )
        return Service(name, p, log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(f"   | {x}" for x in text[-lines:])

    def stop(self, timeout_s: float = 20.0) -> str:
        """SIGTERM (graceful), SIGKILL after the timeout; then anything left in its process group."""
        how = "already exited"
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
                how = "stopped"
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                how = f"KILLED (no exit within {timeout_s:.0f}s of SIGTERM)"
        left = _group_members(self.pid)
        if left:
            _kill_group(self.pid)
            how += f"; killed leftover processes {left}"
        return f"{how}, exit code {self.proc.returncode}"


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("SHEAF_GNARK_BIN", str(REPO_BIN))
    bins = [REPO_ROOT / "tools", REPO_ROOT / "node_modules" / ".bin", REPO_BIN.parent]
    env["PATH"] = os.pathsep.join([*map(str, bins), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ------------------------------------------------------------------ chain helpers


def _addr(key: str) -> str:
    return str(Account.from_key(key).address)


def _record(
    w3: Web3, acct: LocalAccount, art: Artifact, args: list[Any], name: str
) -> tuple[DeployedContract, Contract]:
    """Deploy and describe the contract the way deploy_all's manifest does (for source verification)."""
    enc = encode_constructor_args(art, args)
    sent = deploy_contract(w3, acct, art, args)
    addr = Web3.to_checksum_address(str(sent.contract_address))
    dc = DeployedContract(
        name=name,
        address=addr,
        tx_hash=sent.tx_hash,
        block_number=sent.block_number,
        source_path=art.source_path,
        constructor_args="0x" + enc.hex(),
        constructor_args_decoded=["0x" + a.hex() if isinstance(a, bytes) else a for a in args],
        constructor_types=constructor_types(art),
        creation_hash="0x" + keccak256(art.bytecode + enc).hex(),
        contract_name=art.name,
    )
    return dc, w3.eth.contract(address=addr, abi=art.abi)


def _revert_reason(abi: list[dict[str, Any]], e: Exception) -> str:
    """Custom error name (and first argument) from a revert, by the contract's ABI."""
    data = getattr(e, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if not isinstance(data, str) or not data.startswith("0x") or len(data) < 10:
        return str(e)
    for item in abi:
        if item.get("type") != "error":
            continue
        sig = f"{item['name']}({','.join(i['type'] for i in item.get('inputs', []))})"
        if keccak256(sig.encode())[:4].hex() == data[2:10]:
            arg = f"0x{data[10:22]}…" if len(data) > 10 else ""
            return f"{item['name']}({arg})"
    return data[:10]


def _expect_revert(fn: Any, sender: str, abi: list[dict[str, Any]], want: str, what: str) -> str:
    try:
        fn.call({"from": sender})
    except REVERTED as e:
        reason = _revert_reason(abi, e)
        if not reason.startswith(want):
            raise DemoError(f"{what}: refused with {reason}, expected {want}") from e
        return reason
    raise DemoError(f"{what}: the consumer ACCEPTED it; it must refuse ({want})")


# ------------------------------------------------------------------ stages


@dataclass
class Deployment:
    w3: Web3
    manifest: Manifest
    arts: dict[str, Artifact]
    registry: Contract
    owner: LocalAccount


def deploy_and_verify(
    rpc_url: str, deployments: Path, arts: dict[str, Artifact], summary: dict[str, Any]
) -> Deployment:
    w3 = connect(rpc_url, expect_chain_id=31337)
    # anvil's public dev key 0: a local chain only, never a real key.
    manifest = deploy_all(rpc_url, OWNER_KEY, out_dir=deployments, force=True, artifacts=arts)
    for name, c in manifest.contracts.items():
        say(f"   {name:28s} {c.address}  block {c.block_number}")
    owner: LocalAccount = Account.from_key(OWNER_KEY)
    reg = w3.eth.contract(
        address=Web3.to_checksum_address(manifest.address("SheafRegistry")), abi=arts["SheafRegistry"].abi
    )
    ops = [_addr(k) for k in OPERATOR_KEYS]
    # the domain is posted by the aggregator's key: the registry takes recursive roots only from it
    submitter = _addr(SUBMITTER_KEY)
    sent = configure_registry(
        w3, owner, reg, domains=[(DOMAIN, submitter)], operators=ops, threshold=THRESHOLD
    )
    say(
        f"   registry: domain {DOMAIN} (submitter {submitter[:10]}…), operators "
        f"{', '.join(o[:10] + '…' for o in ops)}, threshold {THRESHOLD} ({len(sent)} txs)"
    )
    results = verify_manifest(w3, manifest, out_dir=deployments, artifacts=arts)
    for r in results:
        say(f"   verify {r.name:21s} {r.status}")
    summary["source_verification"] = {r.name: r.status for r in results}
    bad = [r.name for r in results if r.status != FULL]
    if bad:
        raise DemoError(f"source verification is not a full match for {bad}")
    return Deployment(w3, manifest, arts, reg, owner)


def cached_outer_keys(batch: int, npub: int, cache: Path) -> Path | None:
    """A key-cache entry of `sheaf-gnark aggregate setup` for this shape (its meta.json names the
    shape), i.e. whether the setup will load keys rather than make them; None on a new machine."""
    for meta in sorted(cache.glob("*/meta.json")):
        try:
            shape = json.loads(meta.read_text()).get("shape", {})
        except (OSError, ValueError):
            continue
        if shape.get("batch") == batch and shape.get("npub") == npub and not shape.get("plonk"):
            if (meta.parent / "pk.dump").exists():
                return meta.parent
    return None


@contextmanager
def elapsed_ticker(what: str, estimate: str | None, every_s: float = 60.0) -> Iterator[None]:
    """A line every `every_s` while a long step runs (gnark's setup reports no progress of its own):
    the elapsed time, and the estimate when there is one."""
    stop = threading.Event()
    t0 = time.monotonic()

    def tick() -> None:
        while not stop.wait(every_s):
            m, sec = divmod(int(time.monotonic() - t0), 60)
            say(f"   … {what}: {m}m{sec:02d}s elapsed" + (f" (estimate {estimate})" if estimate else ""))

    t = threading.Thread(target=tick, name="demo-ticker", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()


def deploy_recursion(d: Deployment, rpc_url: str, deployments: Path, summary: dict[str, Any]) -> None:
    """The recursive route: the outer circuit's keys (loaded, or made once on a new machine), its
    gnark Solidity verifier and adapter deployed, the registry told to use them, both source-verified.
    The aggregator finds the shape in the manifest (`deployments_dir`) and proves with it."""
    batch, npub = RECURSION_BATCH, RECURSION_NPUB
    name = verifier_key(batch, npub)
    cache = recursion_cache_dir()
    entry = cached_outer_keys(batch, npub, cache)
    say(
        f"   outer circuit {name}: one gnark Groth16 slice proof (2 public inputs) per recursive batch, "
        "verified inside a BN254 Groth16 proof the registry checks on chain"
    )
    if entry is not None:
        say(f"   keys cached in {entry} (compile ~10 s, load ~10 s)")
        estimate = None
    else:
        say(
            f"   no keys for {name} in {cache}: making INSECURE dev keys once for this machine "
            f"(2.7M R1CS, Groth16 setup; {COLD_SETUP_ESTIMATE}; cached afterwards, so the next run "
            "loads them). Production keys come from a ceremony: docs/recursion.md"
        )
        estimate = COLD_SETUP_ESTIMATE
    with elapsed_ticker(f"{name} keys", estimate):
        r: RecursiveDeployment = deploy_recursive_verifier(
            rpc_url, OWNER_KEY, batch=batch, npub=npub, out_dir=deployments, log=lambda m: say(f"   {m}")
        )
    ev = r.exported
    new = [k for k in r.manifest.contracts if k not in d.manifest.contracts or k.endswith(f"_{name}")]
    d.manifest = r.manifest
    only = replace(r.manifest, contracts={k: r.manifest.contracts[k] for k in new})
    results = verify_manifest(d.w3, only, out_dir=deployments)
    for v in results:
        say(f"   verify {v.name:36s} {v.status}")
    summary["source_verification"].update({v.name: v.status for v in results})
    bad = [v.name for v in results if v.status != FULL]
    if bad:
        raise DemoError(f"source verification is not a full match for {bad}")
    summary["recursion"] = {
        "shape": name,
        "circuit_hash": ev.circuit_hash,
        "nb_constraints": ev.nb_constraints,
        "keys_created": ev.keys_created,
        "insecure_setup": ev.insecure_setup,
        "setup_s": ev.setup_s,
        "compile_s": ev.compile_s,
        "wall_s": ev.wall_s,
        "verifier": r.verifier,
        "adapter": r.adapter,
    }


def _wait_ready(svc: Service, ready: Path, timeout_s: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not svc.alive():
            raise DemoError(f"{svc.name} exited with {svc.proc.returncode} at start:\n{svc.tail()}")
        if ready.exists():
            try:
                data: dict[str, int] = json.loads(ready.read_text())
                return data
            except ValueError:
                pass  # being written
        time.sleep(0.1)
    raise DemoError(f"{svc.name} not ready within {timeout_s:.0f}s:\n{svc.tail()}")


def _wait_log(svc: Service, needle: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not svc.alive():
            raise DemoError(f"{svc.name} exited with {svc.proc.returncode} at start:\n{svc.tail()}")
        if needle in svc.log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise DemoError(f"{svc.name} not up within {timeout_s:.0f}s:\n{svc.tail()}")


def _rel(p: Path) -> str:
    return str(p.relative_to(REPO_ROOT)) if p.is_relative_to(REPO_ROOT) else str(p)


def _toml(v: Any) -> str:
    return json.dumps(v)  # strings, ints and lists of strings/ints: JSON is valid TOML here


def start_services(
    services: list[Service],
    workdir: Path,
    rpc_url: str,
    registry: str,
    leaves: int,
    n_operators: int,
    srs: Path,
    summary: dict[str, Any],
    recursion: bool = False,
) -> str:
    logs = workdir / "logs"
    cfg = {
        "db_path": str(workdir / "aggregator.db"),
        "grpc_listen": "127.0.0.1:0",
        "http_listen": "127.0.0.1:0",
        "rpc_url": rpc_url,
        "registry": registry,
        "domains": [DOMAIN],
        "default_domain": DOMAIN,
        "operators": [_addr(k) for k in OPERATOR_KEYS],
        "threshold": THRESHOLD,
        "max_leaves": leaves,  # one batch for the model's slices
        "max_wait_ms": 3_000,  # the prover submits all slices within a second or two
        "confirmations": 2,
        "poll_ms": 200,
        "srs_path": str(srs),
        "deployments_dir": str(workdir / "deployments"),  # the recursive shape is in its manifest
    }
    conf = workdir / "aggregator.toml"
    # recursion on: a startup that cannot prove fails loudly instead of attesting everything
    conf.write_text(
        "[aggregator]\n"
        + "".join(f"{k} = {_toml(v)}\n" for k, v in cfg.items())
        + f"[aggregator.recursion]\nenabled = {_toml(recursion)}\n"
    )
    ready = workdir / "aggregator.ready"
    env = _child_env()
    agg = Service.start(
        "aggregator",
        [sys.executable, "-m", "aggregator.cli", "run", "--config", str(conf), "--ready-file", str(ready)],
        logs / "aggregator.log",
        dict(env, SHEAF_SUBMITTER_KEY=SUBMITTER_KEY),
    )
    services.append(agg)
    # with recursion its worker compiles the outer circuit and loads ~1.3 GB of keys first
    ports = _wait_ready(agg, ready, 600 if recursion else 120)
    target = f"127.0.0.1:{ports['grpc_port']}"
    say(
        f"   aggregator    pid {agg.pid:<7d} grpc {target}, http 127.0.0.1:{ports['http_port']}, "
        f"db {cfg['db_path']}"
    )
    say(f"                 config {conf}, log {agg.log}")
    summary["aggregator"] = {
        "pid": agg.pid,
        "grpc": target,
        "http_port": ports["http_port"],
        "config": str(conf),
    }
    summary["operators"] = []
    for i, key in enumerate(OPERATOR_KEYS[:n_operators]):
        cmd = [
            sys.executable, "-m", "aggregator.cli", "operator", "--target", target,
            "--chain-id", "31337", "--registry", registry, "--srs", str(srs),
        ]  # fmt: skip
        op = Service.start(
            f"operator {i}", cmd, logs / f"operator-{i}.log", dict(env, SHEAF_OPERATOR_KEY=key)
        )
        services.append(op)
        say(f"   operator {i}    pid {op.pid:<7d} {_addr(key)}  log {op.log}")
        summary["operators"].append({"pid": op.pid, "address": _addr(key)})
    offline = [_addr(k) for k in OPERATOR_KEYS[n_operators:]]
    if offline:
        say(
            f"   offline       {', '.join(offline)} "
            f"(registered; {THRESHOLD} of {len(OPERATOR_KEYS)} signatures suffice)"
        )
    # an operator logs "attesting for <target>" once it polls the aggregator (signal handlers set)
    for s in services[1:]:
        _wait_log(s, "attesting for", 120)
    say("   operators polling the aggregator for batches to attest")
    return target


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def prove(
    workdir: Path, config: Path, only: Sequence[str] | None, timeout_s: float, summary: dict[str, Any]
) -> list[SliceProof]:
    """`prover prove` as its own process (ezkl's native logs go to the log file, progress is shown)."""
    out = workdir / "proofs"
    log = workdir / "logs" / "prover.log"
    cmd = [sys.executable, "-m", "provers.cli", "prove", "--config", str(config), "--out", str(out)]
    if only:
        cmd += ["--slices", ",".join(only)]
    say(
        f"   $ prover prove --config {_rel(config)} --out {_rel(out)}"
        + (f" --slices {','.join(only)}" if only else "")
    )
    with log.open("w") as f:
        p = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=_child_env(),
            stdout=f,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        summary["prover"] = {"pid": p.pid}
        watchdog = threading.Timer(timeout_s, _kill_group, [p.pid])
        watchdog.start()
        try:
            assert p.stderr is not None
            for line in p.stderr:
                f.write(line)
                f.flush()
                s = line.strip()
                if s.startswith("[") and ("proving" in s or "done in" in s or "onnxruntime" in s):
                    say(f"   {s}")
                elif s.startswith("PROVER_"):
                    say(f"   {s}")
            p.wait()
        finally:
            watchdog.cancel()
            if p.poll() is None:  # interrupted: the prover (and its backend processes) are ours to stop
                _kill_group(p.pid)
                p.wait()
                say(f"   prover pid {p.pid} killed")
    if p.returncode == -signal.SIGKILL:
        raise DemoError(f"prover did not finish within {timeout_s:.0f}s (log {log})")
    if p.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-10:])
        raise DemoError(f"prover exited with {p.returncode} (log {log}):\n{tail}")
    doc = json.loads((out / "proofs.json").read_text())
    for c in doc["chain"]:
        state = f"linked ({c['commitment']})" if c["linked"] else "not linked"
        say(f"   chain {c['prev']} -> {c['next']} via {c['tensor']}: {state}")
    return load_run_manifest(out / "proofs.json")


def submit(
    proofs: Sequence[SliceProof], target: str, rpc_url: str, timeout_s: float, summary: dict[str, Any]
) -> list[SubmitResult]:
    results = submit_and_wait(
        proofs,
        target,
        rpc_url=rpc_url,
        domain_id=DOMAIN,
        timeout=timeout_s,
        progress=lambda m: say(f"   {m}"),
    )
    say("")
    for line in proof_table(proofs, results).splitlines():
        say(f"   {line}")
    summary["slices"] = [
        {
            "name": r.name,
            "backend": p.backend,
            "prove_s": p.prove_seconds,
            "proof_bytes": p.proof_size,
            "statement_hash": "0x" + r.statement_hash.hex(),
            "status": r.status,
            "aggregation_id": r.aggregation_id,
            "kind": r.kind,
            "tx_hash": "0x" + r.tx_hash.hex() if r.tx_hash else None,
            "submission_gas": r.gas_used,
            "included_on_chain": r.included_on_chain,
        }
        for p, r in zip(proofs, results, strict=True)
    ]
    bad = [f"{r.name}: {r.status} {r.reason}".strip() for r in results if r.status != "FINALIZED"]
    bad += [
        f"{r.name}: not included on-chain"
        for r in results
        if r.status == "FINALIZED" and not r.included_on_chain
    ]
    if bad:
        raise DemoError("not every slice was finalized and included: " + "; ".join(bad))
    return results


@dataclass(frozen=True)
class SliceOnChain:
    proof: SliceProof
    result: SubmitResult
    envelope: Envelope
    inclusion: Any  # sheaf.v1 InclusionProof


def normalize_and_fetch(
    proofs: Sequence[SliceProof], results: Sequence[SubmitResult], target: str, srs: Path
) -> list[SliceOnChain]:
    """The app's view of each slice: its envelope (vk hash, public inputs, the canonical proof bytes
    Solidity verifiers take) computed locally, and its inclusion proof from the aggregator."""
    out = []
    with Normalizer(srs=srs) as n, Client(target) as c:
        for p, r in zip(proofs, results, strict=True):
            raw = p.read()
            env = n.normalize(
                ProofInput(
                    p.scheme, p.format, raw["proof"] or b"", raw["vk"] or b"", raw["public"], raw["settings"]
                )
            )
            if env.statement_hash != r.statement_hash:
                raise DemoError(
                    f"{p.name}: local statement hash 0x{env.statement_hash.hex()} != aggregator's "
                    f"0x{r.statement_hash.hex()}"
                )
            out.append(SliceOnChain(p, r, env, c.inclusion(r.proof_id)))
    return out


def consumers(
    d: Deployment, items: Sequence[SliceOnChain], deployments: Path, summary: dict[str, Any]
) -> dict[str, int]:
    """One ExampleConsumer per slice model; accept each result, refuse a wrong output and a replay."""
    art = d.arts["ExampleConsumer"]
    w3, acct = d.w3, d.owner
    rows = [["slice", "consumer", "wrong output", "acceptResult", "gas", "replay"]]
    recorded: dict[str, DeployedContract] = {}
    accept_gas: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    for it in items:
        env, inc = it.envelope, it.inclusion
        scheme = int(Scheme.parse(env.scheme))
        # the consumer pins the kind its slice was aggregated with: RECURSIVE or ATTESTED
        kind_in = KIND_CODES[str(it.result.kind)]
        args = [d.registry.address, DOMAIN, kind_in, scheme, env.vk_hash]
        dc, c = _record(w3, acct, art, args, f"ExampleConsumer_{it.proof.name}")
        recorded[dc.name] = dc
        pubs = [int.from_bytes(x, "big") for x in env.public_inputs]
        path = [bytes(x) for x in inc.merkle_path]
        agg, count, index = int(inc.aggregation_id), int(inc.leaf_count), int(inc.index)
        # a result whose output differs from the proven one: its statement is in no aggregation
        wrong = [*pubs[:-1], (pubs[-1] + 1) % BN254_R]
        refused = _expect_revert(
            c.functions.acceptResult(wrong, agg, path, count, index), acct.address, art.abi, "NotIncluded",
            f"{it.proof.name}: consumer with a wrong output",
        )  # fmt: skip
        sent = transact(w3, acct, c.functions.acceptResult(pubs, agg, path, count, index), "acceptResult")
        logs = c.events.ResultAccepted().process_receipt(sent.receipt)
        if len(logs) != 1 or bytes(logs[0]["args"]["statementHash"]) != it.result.statement_hash:
            raise DemoError(f"{it.proof.name}: acceptResult emitted {logs}, not the slice's statement")
        if not c.functions.accepted(it.result.statement_hash).call():
            raise DemoError(f"{it.proof.name}: the consumer does not record the accepted statement")
        replay = _expect_revert(
            c.functions.acceptResult(pubs, agg, path, count, index), acct.address, art.abi, "AlreadyAccepted",
            f"{it.proof.name}: consumer replay",
        )  # fmt: skip
        accept_gas[it.proof.name] = sent.gas_used
        kind = int(logs[0]["args"]["kind"])
        rows.append(
            [
                it.proof.name,
                dc.address[:12] + "…",
                f"refused {refused}",
                f"accepted ({KIND_NAMES.get(kind, kind)})",
                str(sent.gas_used),
                f"refused {replay.split('(')[0]}",
            ]
        )
        out.append(
            {
                "name": it.proof.name,
                "consumer": dc.address,
                "accepted": True,
                "accept_tx": sent.tx_hash,
                "accept_gas": sent.gas_used,
                "accepted_kind": kind,
                "wrong_output": refused,
                "replay": replay,
            }
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        say("   " + "  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)))
    # the consumers are project contracts too: into the manifest, and source-verified
    m = Manifest(
        chain_id=d.manifest.chain_id,
        deployer=d.manifest.deployer,
        compiler_version=d.manifest.compiler_version,
        compiler_settings=d.manifest.compiler_settings,
        contracts={**d.manifest.contracts, **recorded},
        recursive=d.manifest.recursive,
    )
    save_manifest(m, deployments)
    d.manifest = m
    statuses = {}
    for dc in recorded.values():
        v = verify_contract(d.w3, m.chain_id, dc, art, out_dir=deployments)
        statuses[dc.name] = v.status
    say(f"   source verification of the consumers: {', '.join(f'{k} {v}' for k, v in statuses.items())}")
    summary["consumers"] = out
    summary["source_verification"].update(statuses)
    if any(s != FULL for s in statuses.values()):
        raise DemoError(f"consumer source verification is not a full match: {statuses}")
    return accept_gas


def _gnark_direct(d: Deployment, it: SliceOnChain, out: Path) -> tuple[int, int]:
    """(deploy gas, verify tx gas) of the slice's own gnark verifier (`sheaf-gnark export-solidity`)."""
    gnark = str(gnark_binary())  # GNARK_MISSING unless $SHEAF_GNARK_BIN / build/bin has one
    sol = out / "Verifier.sol"
    r = subprocess.run(
        [gnark, "export-solidity", "--scheme", it.proof.scheme, "--vk", str(it.proof.vk), "--out", str(sol)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if r.returncode != 0:
        raise DemoError(f"{it.proof.name}: sheaf-gnark export-solidity failed: {r.stderr.strip()}")
    arts = compile_files({f"demo/{it.proof.name}/Verifier.sol": sol})
    [art] = [a for k, a in arts.items() if ":" in k and a.bytecode and "Verif" in a.name]
    sent = deploy_contract(d.w3, d.owner, art)
    c = d.w3.eth.contract(address=Web3.to_checksum_address(str(sent.contract_address)), abi=art.abi)
    pubs = [int.from_bytes(x, "big") for x in it.envelope.public_inputs]
    fn = "verifyProof" if it.proof.scheme == "groth16" else "Verify"
    data = bytes.fromhex(c.encode_abi(fn, [it.envelope.proof, pubs])[2:])
    return sent.gas_used, call_tx_gas(d.w3, d.owner, c.address, data, f"{it.proof.name}: direct {fn}")


def _ezkl_direct(d: Deployment, it: SliceOnChain, out: Path, srs: Path) -> tuple[int, int]:
    """(deploy gas, verify tx gas) of ezkl's EVM verifier for the slice, compiled with tools/solc."""
    assert it.proof.settings is not None
    sol = evm_verifier(it.proof.vk, it.proof.settings, srs, out)
    arts = compile_files({f"demo/{it.proof.name}/Halo2Verifier.sol": sol})
    [art] = [a for k, a in arts.items() if ":" in k and a.bytecode]
    sent = deploy_contract(d.w3, d.owner, art)
    data = evm_calldata(it.proof.proof, out)
    return sent.gas_used, call_tx_gas(
        d.w3, d.owner, str(sent.contract_address), data, f"{it.proof.name}: direct ezkl verify"
    )


def gas(
    d: Deployment,
    items: Sequence[SliceOnChain],
    accept_gas: dict[str, int],
    workdir: Path,
    verifier_srs: Path,
    summary: dict[str, Any],
) -> None:
    rows = [
        [
            "slice",
            "backend",
            "direct verify tx",
            "(verifier deploy)",
            "submission/leaves",
            "inclusion",
            "aggregated",
            "direct/aggr",
        ]
    ]
    tot_direct = tot_aggr = 0
    out: list[dict[str, Any]] = []
    for it in items:
        ddir = workdir / "direct" / it.proof.name
        ddir.mkdir(parents=True, exist_ok=True)
        if it.proof.format == "gnark":
            deploy_gas, direct = _gnark_direct(d, it, ddir)
        else:
            deploy_gas, direct = _ezkl_direct(d, it, ddir, verifier_srs)
        inc = it.inclusion
        fn = d.registry.functions.verifyProofAggregation(
            DOMAIN, int(inc.aggregation_id), bytes(inc.leaf), [bytes(x) for x in inc.merkle_path],
            int(inc.leaf_count), int(inc.index),
        )  # fmt: skip
        data = bytes.fromhex(fn._encode_transaction_data()[2:])
        incl_tx = call_tx_gas(d.w3, d.owner, d.registry.address, data, f"{it.proof.name}: inclusion check")
        incl = exec_gas(incl_tx, data)  # what an app pays inside its own transaction
        sub = it.result.gas_used
        if sub is None:
            raise DemoError(f"{it.proof.name}: no receipt gas for the aggregation transaction")
        share = sub / int(inc.leaf_count)
        aggr = round(share + incl)
        tot_direct += direct
        tot_aggr += aggr
        rows.append(
            [
                it.proof.name,
                it.proof.backend,
                f"{direct:,}",
                f"{deploy_gas:,}",
                f"{sub:,}/{inc.leaf_count} = {share:,.0f}",
                f"{incl:,}",
                f"{aggr:,}",
                f"{direct / aggr:.1f}x",
            ]
        )
        out.append(
            {
                "name": it.proof.name,
                "direct_tx_gas": direct,
                "direct_deploy_gas": deploy_gas,
                "submission_gas": sub,
                "leaf_count": int(inc.leaf_count),
                "inclusion_tx_gas": incl_tx,
                "inclusion_exec_gas": incl,
                "aggregated_gas": aggr,
                "consumer_accept_gas": accept_gas.get(it.proof.name),
                "ratio": direct / aggr,
            }
        )
    rows.append(
        ["total", "", f"{tot_direct:,}", "", "", "", f"{tot_aggr:,}", f"{tot_direct / tot_aggr:.1f}x"]
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        say(
            "   "
            + "  ".join(
                x.rjust(w) if i >= 2 else x.ljust(w) for i, (x, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    say(
        "   direct: one verify transaction per proof to its own verifier (receipt gasUsed);\n"
        "   aggregated: the slice's aggregation submission (receipt gas) shared by its leaves, plus the\n"
        "   inclusion check's execution gas (receipt - 21000 - calldata), what an app pays inside its own tx"
    )
    if any(it.result.kind == "RECURSIVE" and int(it.inclusion.leaf_count) < 3 for it in items):
        say(
            "   a RECURSIVE batch of one or two leaves costs more than verifying directly: its outer\n"
            "   proof costs ~420k gas whatever the batch size, so it pays from 3 leaves a proof and is\n"
            '   ~15k per proof at 64 (docs/performance.md, "Recursive aggregation"); the demo\'s model has\n'
            "   one Groth16 slice, so its recursive batch has one leaf"
        )
    aggs: dict[int, list[SliceOnChain]] = {}
    for it in items:
        aggs.setdefault(int(it.inclusion.aggregation_id), []).append(it)
    batches = ", ".join(
        f"#{a} = {' + '.join(x.proof.name for x in xs)} "
        f"({xs[0].inclusion.leaf_count} {'leaf' if xs[0].inclusion.leaf_count == 1 else 'leaves'})"
        for a, xs in sorted(aggs.items())
    )
    say(f"   aggregations: {batches}")
    summary["aggregations"] = [
        {
            "aggregation_id": a,
            "leaf_count": int(xs[0].inclusion.leaf_count),
            "slices": [x.proof.name for x in xs],
        }
        for a, xs in sorted(aggs.items())
    ]
    say(
        f"   gas saved: {tot_direct - tot_aggr:,} of {tot_direct:,}: direct / aggregated = "
        f"{tot_direct / tot_aggr:.1f}x"
    )
    summary["gas"] = {
        "slices": out,
        "direct_total": tot_direct,
        "aggregated_total": tot_aggr,
        "ratio": tot_direct / tot_aggr,
    }


def whole_inference(
    d: Deployment,
    workdir: Path,
    items: Sequence[SliceOnChain],
    target: str,
    rpc_url: str,
    deployments: Path,
    accept_gas: dict[str, int],
    summary: dict[str, Any],
) -> None:
    """The same run as one whole inference (docs/inference.md): `prover submit-inference`'s path (model
    spec derived from the run, registered with the aggregator, one SubmitInference, the receipt checked
    with the SDK against the registry), the model registered with SheafInference, and one
    ExampleInferenceConsumer accepting the model's result in one call; gas next to the per-slice routes."""
    slices = load_run_slices(workdir / "proofs" / "proofs.json")
    proofs = [it.proof for it in items]
    r = submit_inference(
        slices, proofs, target, domain_id=DOMAIN, rpc_url=rpc_url, out_dir=workdir / "proofs",
        known_vk_hashes=[bytes(it.envelope.vk_hash) for it in items], progress=lambda m: say(f"   {m}"),
    )  # fmt: skip
    if r.receipt is None or r.result is None:
        raise DemoError(f"inference {r.inference_id} is {r.status}, not FINALIZED")
    receipt, res = r.receipt, r.result
    say(
        "   receipt verified off-chain by the SDK (inclusion asked from the registry): "
        f"output slice {res.output_slice}"
    )
    w3, acct = d.w3, d.owner
    inf = inference_contract(w3, d.manifest, d.arts)
    reg = register_model(w3, acct, inf, r.model)
    say(f"   SheafInference.registerModel 0x{reg.model_id.hex()[:16]}…: gas {reg.gas_used:,}")
    fully = all(s.proven for s in r.model)
    # one kind for every slice, or any kind when the slices went different routes (recursive + attested)
    kinds = {KIND_CODES[str(it.result.kind)] for it in items}
    required = kinds.pop() if len(kinds) == 1 else KIND_ANY
    say(f"   required kind: {KIND_NAMES.get(required, 'any (RECURSIVE or ATTESTED per slice)')}")
    m = deploy_consumer(
        w3, acct, d.manifest, reg.model_id, domain_id=DOMAIN, required_kind=required,
        require_fully_proven=fully, out_dir=deployments, artifacts=d.arts,
    )  # fmt: skip
    d.manifest = m
    dc = m.contracts[CONSUMER]
    art = d.arts[CONSUMER]
    v = verify_contract(w3, m.chain_id, dc, art, out_dir=deployments)
    summary["source_verification"][CONSUMER] = v.status
    if v.status != FULL:
        raise DemoError(f"{CONSUMER} source verification: {v.status}")
    c = w3.eth.contract(address=Web3.to_checksum_address(dc.address), abi=art.abi)
    proofs_abi = receipt.proofs_abi()
    out = list(res.output)
    wrong = [*out[:-1], (out[-1] + 1) % BN254_R]
    refused = _expect_revert(
        c.functions.acceptInference(receipt.input_commitment, wrong, proofs_abi), acct.address, art.abi,
        "OutputMismatch", "ExampleInferenceConsumer with a wrong output",
    )  # fmt: skip
    view = inf.functions.verifyInference(reg.model_id, DOMAIN, required, proofs_abi)
    view_data = bytes.fromhex(view._encode_transaction_data()[2:])
    view_tx = call_tx_gas(w3, acct, inf.address, view_data, "verifyInference")
    sent = transact(
        w3, acct, c.functions.acceptInference(receipt.input_commitment, out, proofs_abi), "acceptInference"
    )
    logs = c.events.InferenceAccepted().process_receipt(sent.receipt)
    if len(logs) != 1 or "0x" + bytes(logs[0]["args"]["inferenceHash"]).hex() != receipt.inference_hash:
        raise DemoError(f"acceptInference emitted {logs}, not the inference {receipt.inference_hash}")
    replay = _expect_revert(
        c.functions.acceptInference(receipt.input_commitment, out, proofs_abi), acct.address, art.abi,
        "AlreadyAccepted", "ExampleInferenceConsumer replay",
    )  # fmt: skip
    per_slice = sum(accept_gas.get(p.name, 0) for p in proofs)
    direct = summary.get("gas", {}).get("direct_total")
    say(
        f"   ExampleInferenceConsumer {dc.address[:12]}…: wrong output refused {refused}, "
        f"replay refused {replay.split('(')[0]}"
    )
    rows = [
        ["accepting the model's result", "gas", "txs"],
        [
            "whole inference: acceptInference (one call, every slice + links + output)",
            f"{sent.gas_used:,}",
            "1",
        ],
        ["  of which verifyInference (as its own tx)", f"{view_tx:,}", ""],
        [
            f"per slice: ExampleConsumer.acceptResult x {len(proofs)} (no link check)",
            f"{per_slice:,}",
            str(len(proofs)),
        ],
    ]
    if direct is not None:
        rows.append(
            [
                f"direct: each slice's own verifier x {len(proofs)} (no link check)",
                f"{direct:,}",
                str(len(proofs)),
            ]
        )
    widths = [max(len(x[i]) for x in rows) for i in range(3)]
    for row in rows:
        say(
            "   "
            + "  ".join(
                x.rjust(w) if i else x.ljust(w) for i, (x, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    summary["inference"] = {
        "model_id": "0x" + reg.model_id.hex(),
        "inference_id": r.inference_id,
        "inference_hash": receipt.inference_hash,
        "slices": len(r.model),
        "proven": sum(s.proven for s in r.model),
        "fully_proven": res.fully_proven,
        "required_kind": required,
        "output": [hex(x) for x in out],
        "input_commitment": hex(receipt.input_commitment),
        "register_gas": reg.gas_used,
        "consumer": dc.address,
        "accept_tx": sent.tx_hash,
        "accept_gas": sent.gas_used,
        "verify_inference_tx_gas": view_tx,
        "per_slice_accept_gas": per_slice,
        "direct_gas": direct,
        "wrong_output": refused,
        "replay": replay,
    }


# ------------------------------------------------------------------ the run


def _clean(workdir: Path) -> None:
    """Remove what an earlier run left (a fresh chain needs a fresh aggregator database)."""
    for name in (
        "aggregator.db",
        "aggregator.db-wal",
        "aggregator.db-shm",
        "aggregator.ready",
        "aggregator.toml",
    ):
        (workdir / name).unlink(missing_ok=True)
    for name in ("deployments", "proofs", "direct", "logs"):
        shutil.rmtree(workdir / name, ignore_errors=True)


def _on_sigterm(_sig: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)  # unwinds through the ExitStack: everything started is stopped


def run(
    workdir: Path,
    config: Path = DEFAULT_CONFIG,
    only: Sequence[str] | None = None,
    n_operators: int = 2,
    timeout_s: float = 900.0,
    summary_path: Path | None = None,
    keep_running: bool = False,
    recursion: bool = True,
) -> int:
    t_start = time.monotonic()
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    _clean(workdir)
    (workdir / "logs").mkdir()
    deployments = workdir / "deployments"
    timings = Timings()
    summary: dict[str, Any] = {"ok": False, "workdir": str(workdir)}
    services: list[Service] = []
    node = Anvil(block_time=0.5)
    old = signal.signal(signal.SIGTERM, _on_sigterm)
    failed: str | None = None
    try:
        with ExitStack() as stack:
            stack.callback(_shutdown, node, services, summary, timings)
            with timings.stage("prepare: slice config, dev SRS, contracts"):
                cfg = restrict_slices(load_config(config), only)
                proven = [f"{s.name} ({s.backend})" for s in cfg.slices if s.proven]
                n_proven = len(proven)  # the aggregator's max batch: a job's slices batch together
                say(f"   {_rel(config)}: proving {', '.join(proven)}")
                had_srs = dev_srs_path().exists()
                srs = ensure_dev_srs()
                say(f"   ezkl SRS {srs} ({'cached' if had_srs else 'generated'}; INSECURE dev SRS)")
                arts = compile_contracts()
                say(f"   contracts/src compiled ({compiler_version()}, {len(arts)} artifacts)")
                groth16 = [s.name for s in cfg.slices if s.proven and s.backend == "gnark-groth16"]
                if recursion and not groth16:
                    say("   recursive route: off (no gnark-groth16 slice to prove recursively)")
                recursion = recursion and bool(groth16)
                summary["recursive_route"] = recursion
            with timings.stage("anvil on loopback"):
                node.start()
                pid = node.process.pid if node.process else 0
                say(f"   {node.rpc_url} (chain id {node.chain_id}, pid {pid}, block time 0.5s)")
                summary["anvil"] = {"rpc": node.rpc_url, "port": node.port, "pid": pid}
            with timings.stage("deploy + configure the registry, verify sources (Sourcify rules)"):
                d = deploy_and_verify(node.rpc_url, deployments, arts, summary)
            if recursion:
                with timings.stage("recursive route: outer circuit keys, verifier + adapter, verify sources"):
                    deploy_recursion(d, node.rpc_url, deployments, summary)
            with timings.stage(f"aggregator + {n_operators} of {len(OPERATOR_KEYS)} operators"):
                target = start_services(
                    services, workdir, node.rpc_url, d.registry.address, n_proven, n_operators, srs,
                    summary, recursion,
                )  # fmt: skip
            with timings.stage(f"prove {n_proven} slices of the sample model ({config.name})"):
                proofs = prove(workdir, config, only, timeout_s, summary)
            with timings.stage("submit over gRPC, follow to FINALIZED, check inclusion on-chain"):
                results = submit(proofs, target, node.rpc_url, timeout_s, summary)
                items = normalize_and_fetch(proofs, results, target, srs)
            with timings.stage("ExampleConsumer per slice: accept each result, refuse a wrong one"):
                accept_gas = consumers(d, items, deployments, summary)
            with timings.stage("gas: direct verification vs aggregated (anvil receipts)"):
                verifier_srs = cut_verifier_srs(srs, workdir / "direct" / "verifier-k1.srs")
                gas(d, items, accept_gas, workdir, verifier_srs, summary)
            with timings.stage("whole inference: one SubmitInference, one acceptInference"):
                whole_inference(d, workdir, items, target, node.rpc_url, deployments, accept_gas, summary)
            if keep_running:
                hold(summary, d.registry.address, node.chain_id)
    except Exception as e:  # every failure is reported after the ExitStack stopped what was started
        failed = e.message if isinstance(e, DemoError) else f"{type(e).__name__}: {e}"
    except SystemExit:
        failed = "interrupted (SIGTERM)"
    except KeyboardInterrupt:
        failed = "interrupted (SIGINT)"
    finally:
        signal.signal(signal.SIGTERM, old)
    total = time.monotonic() - t_start
    say("\n== stage timings")
    for title, secs in timings.stages:
        say(f"   {secs:7.1f}s  {title}")
    say(f"   {total:7.1f}s  total")
    if summary.get("leftover") and failed is None:
        failed = f"processes still running after shutdown: {summary['leftover']}"
    summary["ok"] = failed is None
    summary["wall_s"] = total
    summary["stages"] = [{"stage": t, "seconds": s} for t, s in timings.stages]
    if summary_path is not None:
        summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    if failed is not None:
        print(f"\ndemo: FAILED: {failed}", file=sys.stderr, flush=True)
        for s in services:
            print(f"--- {s.name} log tail ({s.log}):\n{s.tail()}", file=sys.stderr, flush=True)
        return 1
    g, n = summary["gas"], len(summary["slices"])
    kinds = ", ".join(f"{x['name']} {x['kind']}" for x in summary["slices"])
    say(
        f"\n== demo finished in {total:.0f}s: {n} slices FINALIZED and included on-chain ({kinds}); "
        "ExampleConsumer "
        f"accepted {len(summary['consumers'])}/{n} and refused the wrong outputs; verification gas "
        f"{g['direct_total']:,} direct vs {g['aggregated_total']:,} aggregated ({g['ratio']:.1f}x less); "
        f"the whole model accepted by ExampleInferenceConsumer in one call: "
        f"{summary['inference']['accept_gas']:,} gas"
    )
    return 0


def hold(summary: dict[str, Any], registry: str, chain_id: int) -> None:
    """--keep-running: print where everything is, then wait for Ctrl-C / SIGTERM. The interrupt ends
    the hold, not the demo: the caller's shutdown stage runs as after a normal run."""
    agg, anvil = summary["aggregator"], summary["anvil"]
    http = f"http://127.0.0.1:{agg['http_port']}"
    summary["explorer"] = f"{http}/explorer/"
    say("\n== keep running: everything stays up until Ctrl-C (or SIGTERM); then it all stops cleanly")
    say(f"   explorer     {http}/explorer/")
    say(f"   HTTP API     {http}/v1/proofs, /v1/batches, /v1/inferences (docs/explorer.md)")
    say(f"   gRPC         {agg['grpc']}  (python -m aggregator.cli status <proof id> --target {agg['grpc']})")
    say(f"   chain        {anvil['rpc']} (chain id {chain_id}), SheafRegistry {registry}")
    t0 = time.monotonic()
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):  # SIGTERM's handler raises SystemExit
        say("\n   interrupted: stopping")
    summary["kept_running_s"] = round(time.monotonic() - t0, 1)


def _shutdown(node: Anvil, services: list[Service], summary: dict[str, Any], timings: Timings) -> None:
    with timings.stage("shutdown: operators, aggregator, anvil"):
        _stop_all(node, services, summary)


def _stop_all(node: Anvil, services: list[Service], summary: dict[str, Any]) -> None:
    stopped: list[dict[str, Any]] = []
    for s in [x for x in services if x.name.startswith("operator")] + [
        x for x in services if x.name == "aggregator"
    ]:
        how = s.stop()
        say(f"   {s.name:12s} pid {s.pid:<7d} {how}")
        stopped.append({"name": s.name, "pid": s.pid, "exit_code": s.proc.returncode})
    pid = node.process.pid if node.process else None
    node.stop()
    if pid is not None:
        closed = not _port_open(node.port)
        say(f"   anvil        pid {pid:<7d} stopped, port {node.port} {'closed' if closed else 'STILL OPEN'}")
        stopped.append({"name": "anvil", "pid": pid, "port_closed": closed})
    groups = [s.pid for s in services] + ([pid] if pid is not None else [])
    if "prover" in summary:
        groups.append(summary["prover"]["pid"])
    left = [p for g in groups for p in _group_members(g)]
    summary["stopped"] = stopped
    summary["leftover"] = left
    if left:
        say(f"   STILL RUNNING: {left}")


def main(argv: list[str] | None = None) -> int:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m demo", description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--workdir", type=Path, default=DEFAULT_WORKDIR, help="logs, database, proofs, manifests"
    )
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="slices.toml for the prover")
    parser.add_argument("--slices", help="comma-separated slices to prove (default: every proven slice)")
    parser.add_argument(
        "--operators", type=int, default=2, choices=[2, 3], help="operator processes to start"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for proving / finalization")
    parser.add_argument("--summary", type=Path, help="write the outcomes as JSON here")
    parser.add_argument(
        "--keep-running",
        action="store_true",
        default=os.environ.get("KEEP_RUNNING", "") not in ("", "0"),
        help="keep anvil, the aggregator and the operators up after the run and print the explorer's "
        "URL; Ctrl-C stops everything (default from $KEEP_RUNNING: `make demo KEEP_RUNNING=1`)",
    )
    parser.add_argument(
        "--recursion",
        choices=["on", "off"],
        default=os.environ.get("SHEAF_DEMO_RECURSION", "on"),
        help="on: the gnark Groth16 slice is proved recursively (RECURSIVE; on a new machine this first "
        f"makes the outer circuit's INSECURE dev keys, {COLD_SETUP_ESTIMATE}); off: every slice is "
        "attested (default from $SHEAF_DEMO_RECURSION: `make demo SHEAF_DEMO_RECURSION=off`)",
    )
    a = parser.parse_args(argv)
    if a.recursion not in ("on", "off"):  # argparse does not check a default against `choices`
        print(f"demo: SHEAF_DEMO_RECURSION must be on or off, got {a.recursion!r}", file=sys.stderr)
        return 2
    only = [s for s in a.slices.split(",") if s] if a.slices else None
    try:  # bad input is refused before anything is started or written
        restrict_slices(load_config(a.config), only)
    except ProverError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 2
    return run(
        a.workdir, a.config.resolve(), only, a.operators, a.timeout, a.summary, a.keep_running,
        a.recursion == "on",
    )  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
