"""Source verification, with Sourcify's matching rules (@ethereum-sourcify/lib-sourcify), in Python.

For each deployed contract:
  1. Take the recompiled contract's metadata.json and rebuild the compiler input from it alone
     (its `sources`, read from the working tree, and its `settings` minus `compilationTarget`),
     exactly what Sourcify does, and compile that.
  2. Runtime: copy the immutable values from the on-chain code into the recompiled runtime at the
     `immutableReferences` offsets (Sourcify's "immutable" transformation). Equal bytes => full
     ("perfect") match. Otherwise, if the two differ only inside the trailing CBOR auxdata (the
     metadata hash), a partial match; else a mismatch.
  3. Creation: the creation transaction's input must be the recompiled creation code followed by the
     manifest's ABI-encoded constructor arguments (same full/partial rule, the auxdata being found
     inside the creation code).
Full and partial matches are written in Sourcify's repository layout, and per contract the
Etherscan/Blockscout inputs (standard JSON, long compiler version, constructor args).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_typing import HexStr
from web3 import Web3

from deploy.compile import (
    OUTPUTS,
    Artifact,
    compile_contracts,
    compile_files,
    compile_standard_json,
)
from deploy.errors import DeployError
from deploy.manifest import DeployedContract, Manifest, deployments_dir
from sheaf.paths import REPO_ROOT

FULL = "full"
PARTIAL = "partial"
MISMATCH = "mismatch"
NO_CODE = "no_code"


def split_auxdata(code: bytes) -> tuple[bytes, bytes]:
    """(executable part, CBOR auxdata incl. its 2-byte length); no auxdata => (code, b"")."""
    if len(code) < 2:
        return code, b""
    n = int.from_bytes(code[-2:], "big")
    if n == 0 or n + 2 > len(code):
        return code, b""
    aux = code[-(n + 2) :]
    # solc's CBOR map starts with 0xa1..0xa5 (a map of 1-5 entries)
    if not 0xA1 <= aux[0] <= 0xA5:
        return code, b""
    return code[: -(n + 2)], aux


def fill_immutables(
    recompiled: bytes, onchain: bytes, refs: Mapping[str, list[dict[str, int]]]
) -> tuple[bytes, dict[str, str]]:
    out = bytearray(recompiled)
    values: dict[str, str] = {}
    for ast_id, places in refs.items():
        for p in places:
            s, n = int(p["start"]), int(p["length"])
            if s + n > len(onchain):
                continue
            out[s : s + n] = onchain[s : s + n]
            values[ast_id] = "0x" + onchain[s : s + n].hex()
    return bytes(out), values


def match_runtime(
    recompiled: bytes, onchain: bytes, refs: Mapping[str, list[dict[str, int]]]
) -> tuple[str, dict[str, Any]]:
    if not onchain:
        return NO_CODE, {}
    populated, imm = fill_immutables(recompiled, onchain, refs)
    info: dict[str, Any] = {"immutables": imm}
    if populated == onchain:
        return FULL, info
    exe_a, aux_a = split_auxdata(populated)
    exe_b, aux_b = split_auxdata(onchain)
    if aux_a and aux_b and exe_a == exe_b and len(aux_a) == len(aux_b):
        info["cborAuxdata"] = {"recompiled": "0x" + aux_a.hex(), "onchain": "0x" + aux_b.hex()}
        return PARTIAL, info
    return MISMATCH, info


def match_creation(
    recompiled_creation: bytes, runtime_aux: bytes, tx_input: bytes, constructor_args: bytes
) -> str:
    if tx_input == recompiled_creation + constructor_args:
        return FULL
    if len(tx_input) != len(recompiled_creation) + len(constructor_args):
        return MISMATCH
    if not runtime_aux:
        return MISMATCH
    # blank the runtime's auxdata (embedded in the creation code) on both sides
    masked_a, masked_b = bytearray(recompiled_creation), bytearray(tx_input[: len(recompiled_creation)])
    start = recompiled_creation.find(runtime_aux)
    while start >= 0:
        masked_a[start : start + len(runtime_aux)] = b"\0" * len(runtime_aux)
        masked_b[start : start + len(runtime_aux)] = b"\0" * len(runtime_aux)
        start = recompiled_creation.find(runtime_aux, start + 1)
    if tx_input[len(recompiled_creation) :] != constructor_args:
        return MISMATCH
    _, own_aux = split_auxdata(recompiled_creation)
    if own_aux:  # creation code's own trailing auxdata (same metadata hash)
        n = len(own_aux)
        masked_a[-n:] = b"\0" * n
        masked_b[-n:] = b"\0" * n
    return PARTIAL if bytes(masked_a) == bytes(masked_b) else MISMATCH


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


def verify_contract(
    w3: Web3,
    chain_id: int,
    dc: DeployedContract,
    art: Artifact,
    root: Path = REPO_ROOT,
    out_dir: Path | None = None,
) -> ContractVerification:
    metadata = json.loads(art.metadata)
    std_input = sourcify_input(metadata, root)
    try:
        recompiled = compile_standard_json(std_input)[f"{art.source_path}:{art.name}"]
    except (DeployError, KeyError) as e:  # e.g. a source file was deleted or no longer compiles
        return ContractVerification(
            dc.name,
            dc.address,
            MISMATCH,
            MISMATCH,
            MISMATCH,
            "",
            dc.constructor_args,
            details={"error": str(e)},
        )
    onchain = bytes(w3.eth.get_code(Web3.to_checksum_address(dc.address)))
    runtime, info = match_runtime(recompiled.runtime, onchain, recompiled.immutable_references)
    tx = w3.eth.get_transaction(HexStr(dc.tx_hash))
    tx_input = bytes(tx["input"])
    args = bytes.fromhex(dc.constructor_args[2:])
    _, runtime_aux = split_auxdata(recompiled.runtime)
    creation = match_creation(recompiled.bytecode, runtime_aux, tx_input, args)
    res = ContractVerification(
        name=dc.name,
        address=dc.address,
        status=_overall(runtime, creation),
        runtime_match=runtime,
        creation_match=creation,
        compiler_version=recompiled.compiler_version,
        constructor_args=dc.constructor_args,
        details=info,
    )
    base = out_dir or deployments_dir()
    # Etherscan / Blockscout: standard JSON + "path:Name" + long version + constructor args (no 0x)
    ex = base / "explorer" / str(chain_id) / dc.name
    ex.mkdir(parents=True, exist_ok=True)
    (ex / "standard-input.json").write_text(json.dumps(std_input, indent=1) + "\n")
    (ex / "verification.json").write_text(
        json.dumps(
            {
                "address": dc.address,
                "contractname": f"{art.source_path}:{art.name}",
                "compilerversion": recompiled.compiler_version,
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
    if res.status in (FULL, PARTIAL):
        kind = "full_match" if res.status == FULL else "partial_match"
        d = base / "sourcify" / "contracts" / kind / str(chain_id) / dc.address
        (d / "sources").mkdir(parents=True, exist_ok=True)
        (d / "metadata.json").write_text(recompiled.metadata)
        for path, src in std_input["sources"].items():
            f = d / "sources" / path
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(src["content"])
        (d / "constructor-args.txt").write_text(dc.constructor_args + "\n")
        (d / "creator-tx-hash.txt").write_text(dc.tx_hash + "\n")
        (d / "immutable-references.json").write_text(json.dumps(recompiled.immutable_references) + "\n")
        res.sourcify_dir = str(d)
    return res


def verify_manifest(
    w3: Web3,
    manifest: Manifest,
    root: Path = REPO_ROOT,
    out_dir: Path | None = None,
    artifacts: Mapping[str, Artifact] | None = None,
) -> list[ContractVerification]:
    out: list[ContractVerification] = []
    try:
        arts = artifacts or compile_contracts(root)
    except DeployError as e:  # the working tree no longer compiles: nothing can match
        for dc in manifest.contracts.values():
            bad = ContractVerification(
                dc.name, dc.address, MISMATCH, MISMATCH, MISMATCH, "", dc.constructor_args
            )
            bad.details["error"] = str(e)
            out.append(bad)
        return out
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
            missing = {"error": f"{name} ({dc.source_path}:{dc.solidity_name}) is no longer in the sources"}
            out.append(
                ContractVerification(
                    name, dc.address, MISMATCH, MISMATCH, MISMATCH, "", dc.constructor_args, details=missing
                )
            )
            continue
        out.append(verify_contract(w3, manifest.chain_id, dc, art, root, out_dir))
    return out
