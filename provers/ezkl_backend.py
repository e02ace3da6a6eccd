"""ezkl (Halo2, KZG over BN254) slice proofs.

gen_settings (fixed scales, hashed input/output by default) -> calibrate (resources) ->
compile_circuit -> setup (cached) -> gen_witness -> prove -> verify. After calibration the
settings.json is rewritten in canonical form (`stable_settings`: no timestamp, the set-valued
`required_range_checks`/`required_lookups` sorted; ezkl's own order changes from run to run),
so the circuit, the key cache key and the vk hash are the same every time a model is proved.
Keys are cached in $SHEAF_CACHE/ezkl/<sha256(slice onnx || canonical settings)>. The SRS is the
one the aggregator uses by default (sheaf.paths.default_srs: $SHEAF_SRS, else the INSECURE k=17
dev SRS, generated once by provers.srs.ensure_dev_srs; ezkl downsizes it to the circuit's
logrows); its SRS id (sheaf.srs_id) is returned with every proof.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from normalizers.statement import BN254_R
from provers.errors import ProverError
from provers.slicer import EzklConfig
from provers.srs import cut_verifier_srs, ensure_dev_srs
from sheaf.paths import cache_dir, default_srs
from sheaf.srs_id import SrsError, srs_id


@dataclass(frozen=True)
class EzklProof:
    proof: Path  # proof.json
    vk: Path  # vk.key
    settings: Path  # settings.json
    compiled: Path  # network.ezkl
    instances: tuple[bytes, ...]  # public instances, 32-byte big-endian (converted from ezkl's LE hex)
    outputs: tuple[float, ...]  # dequantized outputs from the witness
    logrows: int
    keys_cached: bool
    setup_seconds: float
    prove_seconds: float
    srs_id: str = ""  # sheaf.srs_id of the SRS the keys were made with (every verifier needs it)


# settings fields ezkl fills from a hash set: listed in a different order on each run, but laid out
# in the circuit in the listed order (a proof does not verify with them permuted)
SET_SETTINGS = ("required_range_checks", "required_lookups")


def _canonical_json(v: Any) -> str:
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def stable_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` in canonical form: no `timestamp` (ezkl stamps every run), and the set-valued
    fields (`SET_SETTINGS`) sorted by each element's canonical JSON. Written to settings.json before
    `compile_circuit`, so the circuit, its keys and the aggregator's vk hash (which binds the
    settings, their order included: normalizers/halo2.py) are the same every time a model is proved."""
    out = {k: v for k, v in settings.items() if k != "timestamp"}
    for k in SET_SETTINGS:
        if isinstance(out.get(k), list):
            out[k] = sorted(out[k], key=_canonical_json)
    return out


def cache_key(onnx_bytes: bytes, settings: dict[str, Any]) -> str:
    """Key for the pk/vk cache: the slice ONNX and the canonical settings (`stable_settings`): ezkl
    stamps every settings.json with the time and lists its range checks in a different order on
    every run, either of which would defeat the cache."""
    stable = stable_settings(settings)
    blob = onnx_bytes + b"\x00" + json.dumps(stable, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def prover_srs(srs: Path | None = None) -> Path:
    """`srs` if given, else the aggregator's default (sheaf.paths.default_srs), else the INSECURE
    k=17 dev SRS (generated once). Never a per-logrows dev SRS: that would be other toxic waste,
    and no aggregator or operator would verify its proofs."""
    if srs is not None:
        return srs
    d = default_srs()
    return Path(d) if d else ensure_dev_srs()


def prover_srs_id(srs: Path) -> str:
    """sheaf.srs_id of `srs`; PROVER_CONFIG_INVALID if it is not a readable halo2 KZG SRS."""
    try:
        return srs_id(srs)
    except SrsError as e:
        raise ProverError("PROVER_CONFIG_INVALID", f"{e.code}: {e.message}", "srs") from None


def _le_hex_to_be(h: str) -> bytes:
    return bytes.fromhex(h)[::-1]


# ezkl's proving stages in order, as `prove` reports them to `on_stage`
STAGES = ("settings", "calibrate", "compile", "setup", "witness", "prove", "verify")
# on_stage(stage, done, total): `stage` starts with `done` of `total` stages behind it; ("done",
# total, total) once the proof is verified
OnStage = Callable[[str, int, int], None]


def prove(
    model: onnx.ModelProto,
    inputs: list[np.ndarray],
    cfg: EzklConfig,
    out_dir: Path,
    srs: Path | None = None,
    on_stage: OnStage | None = None,
) -> EzklProof:
    import time

    def stage(name: str) -> None:
        if on_stage is not None:
            on_stage(name, STAGES.index(name) if name in STAGES else len(STAGES), len(STAGES))

    import ezkl as _ezkl  # heavy import

    ezkl: Any = _ezkl  # its bundled stubs disagree with 23.0.5's real signatures

    out_dir.mkdir(parents=True, exist_ok=True)
    srs = prover_srs(srs)
    sid = prover_srs_id(srs)
    onnx_path = out_dir / "network.onnx"
    onnx_path.write_bytes(model.SerializeToString())
    data = out_dir / "input.json"
    data.write_text(
        json.dumps({"input_data": [np.asarray(a, dtype=np.float64).reshape(-1).tolist() for a in inputs]})
    )
    args = ezkl.PyRunArgs()
    args.input_visibility = cfg.input_visibility
    args.output_visibility = cfg.output_visibility
    args.param_visibility = cfg.param_visibility
    args.input_scale = cfg.scale
    args.param_scale = cfg.scale
    args.scale_rebase_multiplier = cfg.rebase_multiplier
    settings = out_dir / "settings.json"
    try:
        stage("settings")
        if not ezkl.gen_settings(str(onnx_path), str(settings), py_run_args=args):
            raise ProverError("PROVER_BACKEND_FAILED", "ezkl gen_settings returned false")
        # calibrate only the lookup range/logrows; scales stay fixed so commitments can chain
        stage("calibrate")
        ezkl.calibrate_settings(
            str(data),
            str(onnx_path),
            str(settings),
            "resources",
            scales=[cfg.scale],
            scale_rebase_multiplier=[cfg.rebase_multiplier],
            max_logrows=cfg.logrows,
        )
        # canonical settings before anything is derived from them (circuit, keys, vk hash)
        # (keys sorted too: ezkl writes einsum_params' maps in hash order, so the file is byte-stable)
        settings.write_text(
            json.dumps(stable_settings(json.loads(settings.read_text())), indent=1, sort_keys=True)
        )
        compiled = out_dir / "network.ezkl"
        stage("compile")
        if not ezkl.compile_circuit(str(onnx_path), str(compiled), str(settings)):
            raise ProverError("PROVER_BACKEND_FAILED", "ezkl compile_circuit returned false")
        key = cache_key(onnx_path.read_bytes(), json.loads(settings.read_text()))
        kdir = cache_dir() / "ezkl" / key
        kdir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        cached = (kdir / "pk.key").exists() and (kdir / "vk.key").exists()
        stage("setup")  # instant when the keys are cached
        if not cached:
            tmp_vk, tmp_pk = kdir / f"vk.tmp{os.getpid()}", kdir / f"pk.tmp{os.getpid()}"
            if not ezkl.setup(str(compiled), str(tmp_vk), str(tmp_pk), str(srs)):
                raise ProverError("PROVER_BACKEND_FAILED", "ezkl setup returned false")
            os.replace(tmp_vk, kdir / "vk.key")
            os.replace(tmp_pk, kdir / "pk.key")
        setup_s = time.monotonic() - t0
        vk = out_dir / "vk.key"
        shutil.copy(kdir / "vk.key", vk)
        witness = out_dir / "witness.json"
        stage("witness")
        ezkl.gen_witness(str(data), str(compiled), str(witness), str(vk), str(srs))
        proof = out_dir / "proof.json"
        t0 = time.monotonic()
        stage("prove")
        ezkl.prove(str(witness), str(compiled), str(kdir / "pk.key"), str(proof), str(srs))
        prove_s = time.monotonic() - t0
        # a k=1 cut (same SRS id) verifies the same: a large SRS makes ezkl.verify downsize it, which
        # took ~1 min on a loaded 2-core box
        stage("verify")
        vsrs = cut_verifier_srs(srs, out_dir / "verifier-k1.srs")
        ezkl.verify(str(proof), str(settings), str(vk), str(vsrs))  # raises on failure
        stage("done")
    except ProverError:
        raise
    except Exception as e:  # ezkl raises RuntimeError/ValueError with its own messages
        raise ProverError("PROVER_BACKEND_FAILED", f"ezkl: {e}") from e
    pj = json.loads(proof.read_text())
    instances = tuple(_le_hex_to_be(h) for group in pj["instances"] for h in group)
    st = json.loads(settings.read_text())
    wit = json.loads(witness.read_text())
    outputs = _dequantized_outputs(wit, st)
    return EzklProof(
        proof,
        vk,
        settings,
        compiled,
        instances,
        outputs,
        int(st["run_args"]["logrows"]),
        cached,
        setup_s,
        prove_s,
        sid,
    )


def _dequantized_outputs(witness: dict[str, object], settings: dict[str, object]) -> tuple[float, ...]:
    outs = witness.get("outputs")
    scales = settings.get("model_output_scales")
    if not isinstance(outs, list) or not isinstance(scales, list):
        return ()
    vals: list[float] = []
    for tensor, scale in zip(outs, scales, strict=False):
        for h in tensor:
            v = int.from_bytes(bytes.fromhex(h), "little") if isinstance(h, str) else int(h)
            vals.append(_signed(v) / float(2 ** int(scale)))
    return tuple(vals)


def _signed(v: int) -> int:
    return v - BN254_R if v > BN254_R // 2 else v


def verify(p: EzklProof, srs: Path | None = None) -> bool:
    import ezkl as _ezkl

    ezkl: Any = _ezkl

    try:
        return bool(ezkl.verify(str(p.proof), str(p.settings), str(p.vk), str(prover_srs(srs))))
    except RuntimeError:
        return False


def evm_verifier(vk: Path, settings: Path, srs: Path, out_dir: Path) -> Path:
    """ezkl's single-circuit Solidity verifier for (vk, settings), as `out_dir/Halo2Verifier.sol`.

    ezkl 23 writes the .sol and then fails trying to download solc (offline here): that failure is
    expected and tolerated, any other is an error; the project compiles the file with tools/solc."""
    import asyncio

    import ezkl as _ezkl

    ez: Any = _ezkl  # its bundled stubs disagree with 23.0.5's signatures
    out_dir.mkdir(parents=True, exist_ok=True)
    sol = out_dir / "Halo2Verifier.sol"

    async def gen() -> None:
        try:
            await ez.create_evm_verifier(
                str(vk), str(settings), str(sol), str(out_dir / "abi.json"), str(srs), False
            )
        except RuntimeError as e:
            if "solc" not in str(e) and "svm" not in str(e):
                raise ProverError("PROVER_BACKEND_FAILED", f"ezkl create_evm_verifier: {e}") from e

    asyncio.run(gen())
    if not sol.exists():
        raise ProverError("PROVER_BACKEND_FAILED", f"ezkl create_evm_verifier wrote no {sol}")
    return sol


def evm_calldata(proof: Path, out_dir: Path) -> bytes:
    """verifyProof calldata for an ezkl proof.json (ezkl.encode_evm_calldata)."""
    import ezkl as _ezkl

    ez: Any = _ezkl
    return bytes(ez.encode_evm_calldata(str(proof), str(out_dir / "calldata.bin"), None))
