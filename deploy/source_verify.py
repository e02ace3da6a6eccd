"""Source verification by Sourcify's reference implementation (@ethereum-sourcify/lib-sourcify).

For each deployed contract:
  1. Take the recompiled contract's metadata.json and rebuild the compiler input from it alone
     (its `sources`, read from the working tree, and its `settings` minus `compilationTarget`),
     exactly what Sourcify does.
  2. Hand that standard-JSON input, the contract identifier, the compiler version and the creation
     transaction to deploy/sourcify_verify.mjs: lib-sourcify compiles it with the project's solc and
     matches runtime code (immutables filled from the chain, CBOR auxdata compared) and creation code
     (constructor arguments, auxdata) against the node, as sourcify.dev would. One node process
     verifies the whole manifest.
  3. "perfect" is our full match, "partial" a partial one (same code, other metadata hash).
Full and partial matches are written in Sourcify's repository layout, and per contract the
Etherscan/Blockscout inputs (standard JSON, long compiler version, constructor args); the same
standard JSON is what `sheaf-deploy verify --submit sourcify` posts (deploy/verify_api.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web3 import HTTPProvider, Web3

from deploy.compile import OUTPUTS, Artifact, compile_contracts, compile_files, solc_binary
from deploy.compile import _cache_dir as solc_cache_dir
from deploy.errors import VERIFIER_FAILED, VERIFIER_TIMEOUT, VERIFIER_UNAVAILABLE, DeployError
from deploy.manifest import DeployedContract, Manifest, deployments_dir
from sheaf.paths import REPO_ROOT

FULL = "full"
PARTIAL = "partial"
MISMATCH = "mismatch"
NO_CODE = "no_code"

REFERENCE_SCRIPT = Path(__file__).with_name("sourcify_verify.mjs")
# A cold solc-js compile of a large generated verifier takes tens of seconds on 2 cores; the whole
# manifest is one process, so the bound is generous.
REFERENCE_TIMEOUT_S = 900.0
# lib-sourcify's verdicts -> ours (its `null` and "error" are no match)
_MATCH = {"perfect": FULL, "partial": PARTIAL}


@dataclass(frozen=True)
class ReferenceJob:
    """One contract for lib-sourcify: what Sourcify's POST /v2/verify/{chainId}/{address} takes."""

    address: str
    contract_identifier: str  # "path/File.sol:Name"
    compiler_version: str  # e.g. 0.8.30+commit.73712a01
    std_input: dict[str, Any]
    creation_tx_hash: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "contractIdentifier": self.contract_identifier,
            "compilerVersion": self.compiler_version,
            "creationTransactionHash": self.creation_tx_hash,
            "stdJsonInput": self.std_input,
        }


@dataclass(frozen=True)
class ReferenceResult:
    """lib-sourcify's verdict on one contract, in our vocabulary."""

    address: str
    runtime_match: str  # full | partial | mismatch | no_code
    creation_match: str  # full | partial | mismatch
    immutables: dict[str, str] = field(default_factory=dict)  # AST id -> value read from the chain
    metadata: str | None = None  # the recompiled metadata.json, byte-exact
    immutable_references: dict[str, Any] = field(default_factory=dict)
    error_code: str = ""  # lib-sourcify's, e.g. no_match, compiler_error, contract_not_deployed
    error_message: str = ""


def parse_reference_output(text: str, jobs: Sequence[ReferenceJob]) -> list[ReferenceResult]:
    """deploy/sourcify_verify.mjs's stdout -> one result per job, in job order."""
    try:
        raw = json.loads(text)["results"]
    except (ValueError, KeyError, TypeError) as e:
        raise DeployError(
            VERIFIER_FAILED, f"lib-sourcify's runner printed no result ({e}): {text[:200]!r}"
        ) from e
    if not isinstance(raw, list) or len(raw) != len(jobs):
        n = len(raw) if isinstance(raw, list) else 0
        raise DeployError(VERIFIER_FAILED, f"lib-sourcify's runner answered for {n} of {len(jobs)} contracts")
    out = []
    for r in raw:
        err = r.get("error") or {}
        code = str(err.get("code", ""))
        runtime = _MATCH.get(r.get("runtimeMatch") or "", MISMATCH)
        out.append(
            ReferenceResult(
                address=str(r["address"]),
                runtime_match=NO_CODE if code == "contract_not_deployed" else runtime,
                creation_match=_MATCH.get(r.get("creationMatch") or "", MISMATCH),
                immutables={str(k): str(v) for k, v in (r.get("immutables") or {}).items()},
                metadata=r.get("metadata"),
                immutable_references=r.get("immutableReferences") or {},
                error_code=code,
                error_message=str(err.get("message", "")),
            )
        )
    return out


def reference_match(
    rpc_url: str, chain_id: int, jobs: Sequence[ReferenceJob], timeout_s: float = REFERENCE_TIMEOUT_S
) -> list[ReferenceResult]:
    """Verify `jobs` against the node at `rpc_url` with lib-sourcify (deploy/sourcify_verify.mjs)."""
    if not jobs:
        return []
    node = shutil.which("node")
    if node is None:
        raise DeployError(
            VERIFIER_UNAVAILABLE, "`node` is not on PATH; install Node >= 20 (see docs/dependencies.md)"
        )
    job = {
        "rpcUrl": rpc_url,
        "chainId": chain_id,
        "solc": str(solc_binary()),
        "cacheDir": str(solc_cache_dir()),  # beside the deploy compiler's outputs
        "contracts": [j.as_json() for j in jobs],
    }
    try:
        p = subprocess.run(
            [node, str(REFERENCE_SCRIPT)],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=REPO_ROOT,  # node resolves @ethereum-sourcify/lib-sourcify from the repo's node_modules
        )
    except subprocess.TimeoutExpired:
        raise DeployError(
            VERIFIER_TIMEOUT,
            f"source verification of {len(jobs)} contract(s) took over {timeout_s:.0f} s; "
            "a cold solc-js compile is slow: retry (compiles are cached) or raise --timeout",
        ) from None
    if p.returncode == 3:  # the runner's own "cannot start" exit (missing package, bad job)
        raise DeployError(VERIFIER_UNAVAILABLE, f"{p.stderr.strip()}")
    if p.returncode != 0:
        tail = p.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise DeployError(VERIFIER_FAILED, f"lib-sourcify's runner exited {p.returncode}: {tail[0]}")
    return parse_reference_output(p.stdout, jobs)


def sourcify_input(metadata: Mapping[str, Any], root: Path = REPO_ROOT) -> dict[str, Any]:
    """Compiler input rebuilt from metadata.json the way Sourcify does (sources read from `root`)."""
    settings = {k: v for k, v in metadata["settings"].items() if k != "compilationTarget"}
    settings["outputSelection"] = {"*": {"*": list(OUTPUTS)}}
    sources = {}
    for path in metadata["sources"]:
        p = root / path
        sources[path] = {"content": p.read_text() if p.exists() else ""}
    return {"language": metadata.get("language", "Solidity"), "sources": sources, "settings": settings}


@dataclass
class ContractVerification:
    name: str
    address: str
    status: str  # full | partial | mismatch | no_code
    runtime_match: str
    creation_match: str
    compiler_version: str
    constructor_args: str
    sourcify_dir: str | None = None
    explorer_input: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _overall(runtime: str, creation: str) -> str:
    if runtime == FULL and creation in (FULL, PARTIAL):
        return FULL if creation == FULL else PARTIAL
    if runtime in (FULL, PARTIAL) and creation != MISMATCH:
        return PARTIAL
    return runtime if runtime == NO_CODE else MISMATCH


def _rpc_url(w3: Web3) -> str:
    if not isinstance(w3.provider, HTTPProvider) or not w3.provider.endpoint_uri:
        raise DeployError(VERIFIER_FAILED, "source verification needs a Web3 on an HTTP JSON-RPC endpoint")
    return str(w3.provider.endpoint_uri)


def reference_job(dc: DeployedContract, art: Artifact, root: Path = REPO_ROOT) -> ReferenceJob:
    """What lib-sourcify (and a Sourcify server) is given for one deployed contract."""
    metadata = json.loads(art.metadata)
    return ReferenceJob(
        address=dc.address,
        contract_identifier=art.fully_qualified_name,
        compiler_version=str(metadata["compiler"]["version"]),
        std_input=sourcify_input(metadata, root),
        creation_tx_hash=dc.tx_hash or None,
    )


def _failed(dc: DeployedContract, error: str) -> ContractVerification:
    return ContractVerification(
        dc.name, dc.address, MISMATCH, MISMATCH, MISMATCH, "", dc.constructor_args, details={"error": error}
    )


def _record(
    chain_id: int, dc: DeployedContract, job: ReferenceJob, ref: ReferenceResult, base: Path
) -> ContractVerification:
    """The verdict, plus the files explorers and Sourcify's repository take, written under `base`."""
    std_input = job.std_input
    details: dict[str, Any] = {"immutables": ref.immutables}
    if ref.error_code:
        details["error"] = f"{ref.error_code}: {ref.error_message}"
    res = ContractVerification(
        name=dc.name,
        address=dc.address,
        status=_overall(ref.runtime_match, ref.creation_match),
        runtime_match=ref.runtime_match,
        creation_match=ref.creation_match,
        compiler_version="v" + job.compiler_version,
        constructor_args=dc.constructor_args,
        details=details,
    )
    # Etherscan / Blockscout: standard JSON + "path:Name" + long version + constructor args (no 0x)
    ex = base / "explorer" / str(chain_id) / dc.name
    ex.mkdir(parents=True, exist_ok=True)
    (ex / "standard-input.json").write_text(json.dumps(std_input, indent=1) + "\n")
    (ex / "verification.json").write_text(
        json.dumps(
            {
                "address": dc.address,
                "contractname": job.contract_identifier,
                "compilerversion": res.compiler_version,
                "codeformat": "solidity-standard-json-input",
                "constructorArguments": dc.constructor_args[2:],
                "optimizationUsed": 1,
                "runs": std_input["settings"].get("optimizer", {}).get("runs", 200),
                "evmversion": std_input["settings"].get("evmVersion"),
                "status": res.status,
            },
            indent=2,
        )
        + "\n"
    )
    res.explorer_input = str(ex)
    if res.status in (FULL, PARTIAL) and ref.metadata is not None:
        kind = "full_match" if res.status == FULL else "partial_match"
        d = base / "sourcify" / "contracts" / kind / str(chain_id) / dc.address
        (d / "sources").mkdir(parents=True, exist_ok=True)
        (d / "metadata.json").write_text(ref.metadata)
        for path, src in std_input["sources"].items():
            f = d / "sources" / path
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(src["content"])
        (d / "constructor-args.txt").write_text(dc.constructor_args + "\n")
        (d / "creator-tx-hash.txt").write_text(dc.tx_hash + "\n")
        (d / "immutable-references.json").write_text(json.dumps(ref.immutable_references) + "\n")
        res.sourcify_dir = str(d)
    return res


def verify_contract(
    w3: Web3,
    chain_id: int,
    dc: DeployedContract,
    art: Artifact,
    root: Path = REPO_ROOT,
    out_dir: Path | None = None,
    timeout_s: float = REFERENCE_TIMEOUT_S,
) -> ContractVerification:
    job = reference_job(dc, art, root)
    [ref] = reference_match(_rpc_url(w3), chain_id, [job], timeout_s)
    return _record(chain_id, dc, job, ref, out_dir or deployments_dir())


def verify_manifest(
    w3: Web3,
    manifest: Manifest,
    root: Path = REPO_ROOT,
    out_dir: Path | None = None,
    artifacts: Mapping[str, Artifact] | None = None,
    timeout_s: float = REFERENCE_TIMEOUT_S,
) -> list[ContractVerification]:
    """Every contract of the manifest, in manifest order (one lib-sourcify run for all of them)."""
    try:
        arts = artifacts or compile_contracts(root)
    except DeployError as e:  # the working tree no longer compiles: nothing can match
        return [_failed(dc, str(e)) for dc in manifest.contracts.values()]
    verdicts: dict[str, ContractVerification] = {}
    jobs: dict[str, ReferenceJob] = {}
    for name, dc in manifest.contracts.items():
        art = arts.get(f"{dc.source_path}:{dc.solidity_name}")
        if art is None and not dc.source_path.startswith("contracts/"):
            # generated code outside contracts/src (e.g. build/recursion/ verifiers): compile that file
            src = root / dc.source_path
            try:
                art = compile_files({dc.source_path: src}).get(dc.solidity_name) if src.exists() else None
            except DeployError:
                art = None
        if art is None:
            verdicts[name] = _failed(
                dc, f"{name} ({dc.source_path}:{dc.solidity_name}) is no longer in the sources"
            )
        else:
            jobs[name] = reference_job(dc, art, root)
    refs = reference_match(_rpc_url(w3), manifest.chain_id, list(jobs.values()), timeout_s)
    base = out_dir or deployments_dir()
    for (name, job), ref in zip(jobs.items(), refs, strict=True):
        verdicts[name] = _record(manifest.chain_id, manifest.contracts[name], job, ref, base)
    return [verdicts[name] for name in manifest.contracts]
