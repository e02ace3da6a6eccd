"""Deploy the recursive-aggregation verifier of one batch size and plug it into the registry.

    r = deploy_recursive_verifier(rpc_url, key, batch=1)      # after deploy_all
    r.adapter  -> registry.aggregationVerifier()

Steps: `sheaf-gnark aggregate setup --batch N --npub P` (compile the outer circuit, load or create
its keys in $SHEAF_CACHE/recursion/<circuit hash>; an INSECURE dev setup when created) -> the
verifier that the same binary exported for those keys is written to a stable path in the working
tree, build/recursion/AggregationVerifier_b<N>_p<P>.sol (source verification reads sources from
the tree) -> compiled with the project's solc shim -> deployed with Groth16AggregationAdapter ->
`setAggregationVerifier(adapter)` -> all recorded in the manifest.

The generated verifier is not committed: its vk comes from a per-machine dev setup (random toxic
waste), so every machine's verifier differs; the file is reproducible from the key cache with
`export_aggregation_verifier`, and its header names the circuit hash it belongs to.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from deploy.chain import (
    check_balance,
    connect,
    constructor_types,
    deploy_contract,
    encode_constructor_args,
    load_account,
)
from deploy.compile import Artifact, compile_contracts, compile_files
from deploy.errors import (
    GNARK_MISSING,
    RECURSION_SETUP_FAILED,
    DeployError,
)
from deploy.manifest import DeployedContract, Manifest, jsonable, load_manifest, save_manifest
from deploy.registry import owned_registry, use_aggregation_verifier
from sheaf.hashing import keccak256
from sheaf.paths import REPO_ROOT, BinaryNotFound
from sheaf.paths import gnark_binary as find_gnark_binary
from sheaf.recursion_keys import verifier_key

ADAPTER = "Groth16AggregationAdapter"
GENERATED_DIR = Path("build") / "recursion"  # relative to the repo root (= the source names' root)
# gnark's verifier (~1.2M gas with commitment support) + adapter + one registry call, with margin
RECURSIVE_GAS_BUDGET = 4_000_000


def gnark_binary() -> Path:
    """The sheaf-gnark binary (sheaf.paths.gnark_binary: a set $SHEAF_GNARK_BIN never falls back to
    another build), GNARK_MISSING if there is none."""
    try:
        return find_gnark_binary()
    except BinaryNotFound as e:
        raise DeployError(
            GNARK_MISSING,
            f"{e}: build it (cd gnark && go build -o ../build/bin/sheaf-gnark ./cmd/sheaf-gnark) "
            "or set $SHEAF_GNARK_BIN",
        ) from e


@dataclass(frozen=True)
class ExportedVerifier:
    batch: int
    npub: int
    circuit_hash: str
    nb_constraints: int
    keys_dir: str
    keys_created: bool  # the dev setup ran now (not loaded from the cache)
    insecure_setup: bool
    compile_s: float
    setup_s: float  # key generation, or loading them from the cache
    wall_s: float
    source_path: str  # repo-relative path of the written .sol (the source name used to compile)
    plonk: int = 0  # PLONK slots among the batch

    @property
    def path(self) -> Path:
        return REPO_ROOT / self.source_path


def _run_gnark(args: list[str], binary: Path, env: dict[str, str], what: str) -> str:
    try:
        r = subprocess.run([str(binary), *args], env=env, capture_output=True, text=True, check=False)
    except OSError as e:
        raise DeployError(GNARK_MISSING, f"cannot run {binary}: {e}") from e
    if r.returncode != 0:
        tail = " | ".join(r.stderr.strip().splitlines()[-5:])
        raise DeployError(RECURSION_SETUP_FAILED, f"`sheaf-gnark {what}` exited {r.returncode}: {tail}")
    return r.stdout


def export_aggregation_verifier(
    batch: int,
    npub: int = 1,
    *,
    plonk: int = 0,
    binary: Path | None = None,
    cache: Path | None = None,
    out: Path | None = None,
    log: Callable[[str], None] = lambda _s: None,
) -> ExportedVerifier:
    """Set up (or load) the outer circuit's keys and write its Solidity verifier to a stable path.

    A cold setup is minutes and several GB for batch 1 (see docs/contracts.md); cached afterwards."""
    if batch < 1 or npub < 1 or not 0 <= plonk <= batch:
        raise DeployError(
            RECURSION_SETUP_FAILED,
            f"--recursive-batch/--recursive-npub must be >= 1 and --recursive-plonk in [0, batch], "
            f"got {batch}/{npub}/{plonk}",
        )
    binary = binary or gnark_binary()
    env = dict(os.environ)
    shape = ["--batch", str(batch), "--npub", str(npub)]
    if plonk:
        shape += ["--plonk", str(plonk)]
    if cache is not None:
        shape += ["--cache", str(cache)]
    name = verifier_key(batch, npub, plonk)
    log(f"recursion {name}: sheaf-gnark aggregate setup (a cold dev setup takes minutes)")
    t0 = time.monotonic()
    raw = _run_gnark(["aggregate", "setup", *shape], binary, env, "aggregate setup")
    try:
        info: dict[str, Any] = json.loads(raw)
        circuit_hash = str(info["circuit_hash"])
        keys_dir = Path(str(info["dir"]))
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise DeployError(
            RECURSION_SETUP_FAILED, f"unexpected `aggregate setup` output: {raw[:200]!r}"
        ) from e
    rel = out or GENERATED_DIR / f"AggregationVerifier_{name}.sol"
    dest = rel if rel.is_absolute() else REPO_ROOT / rel
    try:
        source_path = str(dest.resolve().relative_to(REPO_ROOT))
    except ValueError as e:  # source verification reads sources relative to the repo root
        raise DeployError(RECURSION_SETUP_FAILED, f"verifier path {dest} must be inside {REPO_ROOT}") from e
    # `setup` stores the binary's ExportSolidity of exactly these keys next to them (cache entry keyed
    # by circuit hash); `export-solidity` would recompile the circuit (~40 s) to print the same file
    cached = keys_dir / "Verifier.sol"
    if cached.exists():
        sol = cached.read_text()
    else:
        sol = _run_gnark(
            ["aggregate", "export-solidity", *shape, "--out", "-"], binary, env, "aggregate export-solidity"
        )
    if "function verifyProof(" not in sol:
        raise DeployError(
            RECURSION_SETUP_FAILED, "aggregate export-solidity did not produce a gnark verifier"
        )
    keys = "INSECURE dev setup" if info.get("insecure", True) else "ceremony"
    header = (
        f"// Generated by `sheaf-gnark aggregate export-solidity {' '.join(shape[: 6 if plonk else 4])}`:\n"
        f"// outer circuit {circuit_hash}, keys {keys}.\n"
        "// Public inputs: [root >> 128, root & (2^128-1), leafCount]. Do not edit; regenerate.\n"
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(header + sol)
    tmp.replace(dest)
    ev = ExportedVerifier(
        batch=batch,
        npub=npub,
        circuit_hash=circuit_hash,
        nb_constraints=int(info.get("nb_constraints", 0)),
        keys_dir=str(keys_dir),
        keys_created=bool(info.get("created", False)),
        insecure_setup=bool(info.get("insecure", True)),
        compile_s=round(int(info.get("compile_ms", 0)) / 1000, 1),
        setup_s=round(int(info.get("setup_ms", 0)) / 1000, 1),
        wall_s=round(time.monotonic() - t0, 1),
        source_path=source_path,
        plonk=plonk,
    )
    log(
        f"recursion {name}: circuit {circuit_hash[:16]} r1cs {ev.nb_constraints}, "
        f"{'keys CREATED' if ev.keys_created else 'keys loaded'} "
        f"(setup {ev.setup_s}s, compile {ev.compile_s}s), "
        f"verifier -> {source_path}"
    )
    return ev


@dataclass(frozen=True)
class RecursiveDeployment:
    manifest: Manifest
    verifier: str  # gnark verifier address
    adapter: str  # IAggregationProofVerifier the registry calls
    exported: ExportedVerifier
    configured_tx: str | None  # setAggregationVerifier tx (None when it was already set)


def _deploy_or_reuse(
    w3: Web3,
    acct: LocalAccount,
    previous: DeployedContract | None,
    key: str,
    art: Artifact,
    args: list[Any],
    force: bool,
    extra: dict[str, Any],
    log: Callable[[str], None],
) -> DeployedContract:
    enc = encode_constructor_args(art, args)
    creation_hash = "0x" + keccak256(art.bytecode + enc).hex()
    if (
        not force
        and previous is not None
        and previous.creation_hash == creation_hash
        and len(w3.eth.get_code(Web3.to_checksum_address(previous.address))) > 0
    ):
        log(f"{key}: unchanged at {previous.address}")
        return replace(previous, extra=extra)
    sent = deploy_contract(w3, acct, art, args)
    assert sent.contract_address is not None
    log(f"{key}: deployed at {sent.contract_address} (gas {sent.gas_used})")
    return DeployedContract(
        name=key,
        address=Web3.to_checksum_address(sent.contract_address),
        tx_hash=sent.tx_hash,
        block_number=sent.block_number,
        source_path=art.source_path,
        constructor_args="0x" + enc.hex(),
        constructor_args_decoded=[jsonable(a) for a in args],
        constructor_types=constructor_types(art),
        creation_hash=creation_hash,
        contract_name=art.name if art.name != key else "",
        extra=extra,
    )


def deploy_recursive_verifier(
    rpc_url: str,
    key: str | None = None,
    *,
    batch: int,
    npub: int = 1,
    plonk: int = 0,
    account: LocalAccount | None = None,
    configure: bool = True,
    force: bool = False,
    expect_chain_id: int | None = None,
    out_dir: Path | None = None,
    binary: Path | None = None,
    cache: Path | None = None,
    exported: ExportedVerifier | None = None,
    log: Callable[[str], None] = lambda _s: None,
) -> RecursiveDeployment:
    """Export + compile + deploy the batch-`batch` aggregation verifier and its adapter (idempotent),
    then (configure=True) make the manifest's SheafRegistry use it. Needs the manifest of deploy_all.
    Manifest keys: AggregationVerifier_b<N>_p<P>, Groth16AggregationAdapter_b<N>_p<P>."""
    w3 = connect(rpc_url, expect_chain_id)
    acct = account or load_account(key)
    chain_id = int(w3.eth.chain_id)
    m = load_manifest(chain_id, out_dir)
    reg = (
        owned_registry(w3, m, acct, "use the owner's key or pass configure=False / --no-configure")
        if configure
        else None
    )
    ev = exported or export_aggregation_verifier(
        batch, npub, plonk=plonk, binary=binary, cache=cache, log=log
    )
    varts = compile_files({ev.source_path: ev.path})
    if "Verifier" not in varts:
        raise DeployError(RECURSION_SETUP_FAILED, f"{ev.source_path} has no contract Verifier")
    arts = compile_contracts()
    suffix = verifier_key(ev.batch, ev.npub, ev.plonk)
    vname, aname = f"AggregationVerifier_{suffix}", f"{ADAPTER}_{suffix}"
    extra = {
        "batch": ev.batch,
        "npub": ev.npub,
        "plonk": ev.plonk,
        "circuit_hash": ev.circuit_hash,
        "nb_constraints": ev.nb_constraints,
        "insecure_setup": ev.insecure_setup,
        "public_inputs": "[root >> 128, root & (2^128-1), leafCount]",
    }
    check_balance(w3, acct, RECURSIVE_GAS_BUDGET)
    v = _deploy_or_reuse(w3, acct, m.contracts.get(vname), vname, varts["Verifier"], [], force, extra, log)
    # a new verifier means a new adapter (its constructor argument changes, so does its creation hash)
    a = _deploy_or_reuse(
        w3,
        acct,
        m.contracts.get(aname),
        aname,
        arts[ADAPTER],
        [v.address],
        force,
        {**extra, "verifier": vname},
        log,
    )
    tx: str | None = None
    recursive = dict(m.recursive)
    if reg is not None:
        tx = use_aggregation_verifier(w3, acct, reg, a.address, log)
        recursive = {
            "active": suffix,
            "registry": m.address("SheafRegistry"),
            "adapter": a.address,
            "verifier": v.address,
            "circuit_hash": ev.circuit_hash,
            "batch": ev.batch,
            "npub": ev.npub,
            "plonk": ev.plonk,
            "set_tx": tx or m.recursive.get("set_tx"),
        }
    new = replace(m, contracts={**m.contracts, vname: v, aname: a}, recursive=recursive)
    save_manifest(new, out_dir)
    return RecursiveDeployment(
        manifest=new, verifier=v.address, adapter=a.address, exported=ev, configured_tx=tx
    )


# ---------------------------------------------------------------- outer proofs (tests, bench, demo)


@dataclass(frozen=True)
class OuterProof:
    leaves: list[bytes]  # statement hashes, in tree order
    root: bytes
    count: int
    proof: bytes  # `bytes proof` of verifyProof / submitRecursiveAggregation
    public_inputs: list[int]
    circuit_hash: str
    wall_s: float  # whole `aggregate prove` process (compile + key load + prove)
    prove_s: float
    peak_rss_mib: int


def prove_outer(
    batch: int,
    leaves: list[dict[str, Any]],
    npub: int = 1,
    *,
    plonk: int = 0,
    binary: Path | None = None,
    cache: Path | None = None,
    workdir: Path | None = None,
) -> OuterProof:
    """`sheaf-gnark aggregate prove` of one batch (runs the dev setup first if the keys are absent)."""
    binary = binary or gnark_binary()
    wd = Path(workdir or tempfile.mkdtemp(prefix="sheaf-outer-"))
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "batch.json").write_text(json.dumps({"leaves": leaves}))
    cmd = [str(binary), "aggregate", "prove", "--batch", str(batch), "--npub", str(npub)]
    if plonk:
        cmd += ["--plonk", str(plonk)]
    if cache is not None:
        cmd += ["--cache", str(cache)]
    cmd += ["--in", str(wd / "batch.json"), "--out", str(wd / "proof.json")]
    t0 = time.monotonic()
    with open(wd / "prove.log", "w") as errf:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errf)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        tail = " | ".join((wd / "prove.log").read_text().strip().splitlines()[-5:])
        raise DeployError(
            RECURSION_SETUP_FAILED, f"`sheaf-gnark aggregate prove` exited {proc.returncode}: {tail}"
        )
    r = json.loads((wd / "proof.json").read_text())
    return OuterProof(
        leaves=[bytes.fromhex(h[2:]) for h in r["leaves"]],
        root=bytes.fromhex(r["root"][2:]),
        count=int(r["count"]),
        proof=bytes.fromhex(r["proof"][2:]),
        public_inputs=[int(x, 16) for x in r["public_inputs"]],
        circuit_hash=str(r["circuit_hash"]),
        wall_s=round(wall, 1),
        prove_s=round(int(r.get("prove_ms", 0)) / 1000, 1),
        peak_rss_mib=round(usage.ru_maxrss / 1024),  # KiB on Linux
    )


def outer_cache_path(
    batch: int, npub: int, circuit_hash: str, leaves: list[dict[str, Any]], plonk: int = 0
) -> Path:
    """Where a real outer proof of these inner leaves is kept for reuse (bench/gas.py; tests save theirs)."""
    h = hashlib.sha256(json.dumps(leaves, sort_keys=True).encode())
    # Keys, not only the circuit: two key caches give two setups of one circuit, and a proof made
    # with one does not verify against the other's exported verifier (it embeds the vk).
    name = verifier_key(batch, npub, plonk)
    verifier = REPO_ROOT / GENERATED_DIR / f"AggregationVerifier_{name}.sol"
    h.update(verifier.read_bytes() if verifier.exists() else b"")
    return REPO_ROOT / GENERATED_DIR / f"outer_{name}_{circuit_hash[:16]}_{h.hexdigest()[:16]}.json"


def save_outer(p: OuterProof, path: Path) -> None:
    d = {
        "leaves": ["0x" + x.hex() for x in p.leaves],
        "root": "0x" + p.root.hex(),
        "count": p.count,
        "proof": "0x" + p.proof.hex(),
        "public_inputs": [hex(x) for x in p.public_inputs],
        "circuit_hash": p.circuit_hash,
        "wall_s": p.wall_s,
        "prove_s": p.prove_s,
        "peak_rss_mib": p.peak_rss_mib,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(d, indent=1) + "\n")
    tmp.replace(path)


def load_outer(path: Path) -> OuterProof:
    d = json.loads(path.read_text())
    return OuterProof(
        leaves=[bytes.fromhex(h[2:]) for h in d["leaves"]],
        root=bytes.fromhex(d["root"][2:]),
        count=int(d["count"]),
        proof=bytes.fromhex(d["proof"][2:]),
        public_inputs=[int(x, 16) for x in d["public_inputs"]],
        circuit_hash=str(d["circuit_hash"]),
        wall_s=float(d["wall_s"]),
        prove_s=float(d["prove_s"]),
        peak_rss_mib=int(d["peak_rss_mib"]),
    )
