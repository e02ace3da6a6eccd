"""gnark Groth16 / PLONK slice proofs through the Go side (gnark/slice), one process per proof.

The binary is `sheaf-gnark slice ...` when the main binary has the subcommand wired, else the
standalone `sheaf-slice` (same package). Both are built from the gnark/ Go module on demand.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from provers.errors import ProverError
from sheaf.paths import REPO_BIN, REPO_ROOT, BinaryNotFound, cache_dir, gnark_binary

GNARK_MODULE = REPO_ROOT / "gnark"


@dataclass(frozen=True)
class GnarkProof:
    backend: str  # "groth16" | "plonk"
    target: str  # "solidity" | "recursion"
    proof: Path  # gnark WriteRawTo
    vk: Path  # gnark WriteRawTo
    public_witness: Path  # gnark witness.MarshalBinary (public part)
    public_inputs: tuple[bytes, ...]  # [in_commit, out_commit], 32-byte big-endian
    output: tuple[int, ...]  # quantized output the proof commits to
    circuit_hash: str
    constraints: int
    keys_cached: bool
    setup_seconds: float
    prove_seconds: float

    @property
    def in_commit(self) -> bytes:
        return self.public_inputs[0]

    @property
    def out_commit(self) -> bytes:
        return self.public_inputs[1]


def _supports_slice(binary: Path) -> bool:
    r = subprocess.run([str(binary), "slice"], capture_output=True, text=True, timeout=60)
    return "unknown command" not in r.stderr


@cache
def slice_command() -> tuple[str, ...]:
    """argv prefix for the slice tool: $SHEAF_SLICE_BIN; else build/bin/sheaf-slice rebuilt by `go build`
    (incremental, so never stale against gnark/slice); else a sheaf-gnark that has `slice` wired."""
    if env := os.environ.get("SHEAF_SLICE_BIN"):
        return (env,)
    standalone = REPO_BIN.parent / "sheaf-slice"
    go = shutil.which("go")
    if go is not None:
        r = subprocess.run(
            [go, "build", "-o", str(standalone), "./slice/cmd/sheaf-slice"],
            cwd=GNARK_MODULE,
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            raise ProverError("PROVER_BACKEND_FAILED", f"go build sheaf-slice: {r.stderr.strip()}")
        return (str(standalone),)
    try:
        gnark_bin: Path | None = gnark_binary()
    except BinaryNotFound:
        gnark_bin = None  # not an error here: the standalone tool may still be there
    if gnark_bin is not None and _supports_slice(gnark_bin):
        return (str(gnark_bin), "slice")
    if standalone.exists():
        return (str(standalone),)
    raise ProverError(
        "PROVER_BACKEND_FAILED", "no slice binary (set SHEAF_SLICE_BIN) and no `go` to build one"
    )


def _code_of(stderr: str) -> str:
    if "SLICE_UNSATISFIED" in stderr:
        return "PROVER_UNSATISFIED"
    if "SLICE_RANGE" in stderr:
        return "PROVER_RANGE"
    return "PROVER_BACKEND_FAILED"


def prove(
    spec: dict[str, Any], backend: str, out_dir: Path, target: str = "solidity", cache: Path | None = None
) -> GnarkProof:
    """Prove one slice; `backend` is "groth16" or "plonk"."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spec_path = out_dir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    cache = cache or cache_dir() / "gnark-slice"
    cmd = [
        *slice_command(),
        "prove",
        "--spec",
        str(spec_path),
        "--backend",
        backend,
        "--target",
        target,
        "--out",
        str(out_dir),
        "--cache",
        str(cache),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise ProverError(_code_of(r.stderr), f"slice {spec.get('name')!r} ({backend}): {r.stderr.strip()}")
    # the result is the last stdout line: gnark/std package initialisers may log before main runs
    res = json.loads(r.stdout.strip().splitlines()[-1])
    want = spec.get("commitment") or "mimc-bn254"
    if res.get("commitment") != want:  # an outdated binary would silently ignore the field
        raise ProverError(
            "PROVER_BACKEND_FAILED",
            f"slice tool {slice_command()[0]} committed with {res.get('commitment')!r}, not {want!r}",
        )
    return GnarkProof(
        backend=res["backend"],
        target=res["target"],
        proof=Path(res["proof"]),
        vk=Path(res["vk"]),
        public_witness=Path(res["public_witness"]),
        public_inputs=tuple(bytes.fromhex(h.removeprefix("0x")) for h in res["public_inputs"]),
        output=tuple(int(v) for v in res["output"]),
        circuit_hash=res["circuit_hash"],
        constraints=int(res["constraints"]),
        keys_cached=bool(res["keys_cached"]),
        setup_seconds=float(res["setup_seconds"]),
        prove_seconds=float(res["prove_seconds"]),
    )


def verify(p: GnarkProof, public_witness: Path | None = None) -> bool:
    """Native gnark verification (True/False; tool errors raise)."""
    cmd = [
        *slice_command(),
        "verify",
        "--backend",
        p.backend,
        "--target",
        p.target,
        "--proof",
        str(p.proof),
        "--vk",
        str(p.vk),
        "--public",
        str(public_witness or p.public_witness),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode == 0:
        return True
    if "SLICE_REJECTED" in r.stderr:
        return False
    raise ProverError("PROVER_BACKEND_FAILED", r.stderr.strip())


def public_witness_bytes(public_inputs: tuple[bytes, ...]) -> bytes:
    """gnark public witness encoding: u32 nbPublic | u32 nbSecret(0) | u32 len | 32-byte BE elements."""
    n = len(public_inputs)
    return n.to_bytes(4, "big") + (0).to_bytes(4, "big") + n.to_bytes(4, "big") + b"".join(public_inputs)
