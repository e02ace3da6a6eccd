"""Prove a sliced ONNX model and (optionally) submit the slice proofs to the aggregator.

    run = run_model(Path("model.onnx"), Path("slices.toml"), Path("out/"))
    proofs = run.proofs                      # list[SliceProof] (prove_model returns just this)
    results = submit_and_wait(proofs, "127.0.0.1:50051", rpc_url="http://127.0.0.1:8545")

Data flow: tensors move between slices as floats (onnxruntime semantics). A gnark slice's
quantized output is also carried as integers, so the next gnark slice gets exactly the values
the previous one committed to and the MiMC commitments chain (out_commit(i) == in_commit(i+1)).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from aggregator.client import AggregatorError, Client
from normalizers.api import Normalizer, ProofInput
from provers import ezkl_backend, gnark_backend, quant
from provers.errors import ProverError
from provers.model import sample_input
from provers.slicer import (
    ProverConfig,
    Slice,
    dense_layers,
    load_config,
    load_model,
    require_supported,
    run_onnx,
    slice_model,
)
from sheaf.registry_abi import REGISTRY_ABI
from sheaf.v1 import aggregator_pb2 as pb

# Commitment schemes a slice's public inputs can carry; only equal schemes can chain.
MIMC = "mimc-bn254"
POSEIDON_EZKL = "poseidon-ezkl"  # provers/poseidon_ezkl.py; gnark slices can use it too


@dataclass(frozen=True)
class SliceProof:
    name: str
    backend: str  # ezkl | gnark-groth16 | gnark-plonk
    scheme: str  # aggregator scheme: halo2 | groth16 | plonk
    format: str  # aggregator producer format: ezkl | gnark
    proof: Path
    vk: Path
    public: Path | None  # gnark public witness (MarshalBinary); None for ezkl (instances are in proof.json)
    settings: Path | None  # ezkl settings.json
    public_inputs: tuple[bytes, ...]  # 32-byte big-endian scalars
    commitment: str | None  # MIMC / POSEIDON_EZKL / None (plain public values)
    in_commit: bytes | None
    out_commit: bytes | None
    input_tensor: str
    output_tensor: str
    prove_seconds: float
    setup_seconds: float
    keys_cached: bool
    error_bound: float | None  # max |proved output - float output| guaranteed (gnark slices)

    @property
    def proof_size(self) -> int:
        return self.proof.stat().st_size

    def read(self) -> dict[str, bytes | None]:
        """Raw files as the aggregator's SubmitProof wants them."""
        return {
            "proof": self.proof.read_bytes(),
            "vk": self.vk.read_bytes(),
            "public": self.public.read_bytes() if self.public else None,
            "settings": self.settings.read_bytes() if self.settings else None,
        }


@dataclass(frozen=True)
class ChainLink:
    prev: str
    next: str
    tensor: str
    commitment: str | None  # None when the two slices use different commitment schemes
    linked: bool  # True when the commitments were compared and are equal


@dataclass
class ModelRun:
    proofs: list[SliceProof]
    outputs: dict[str, np.ndarray]  # every tensor produced along the pipeline
    reference: dict[str, np.ndarray]  # onnxruntime on the whole model
    chain: list[ChainLink]
    slices: list[Slice] = field(repr=False)


Progress = Callable[[str], None]
# stage progress of one slice's proving: (slice tag, stage, stages done, stages in all); see
# ezkl_backend.STAGES
StageProgress = Callable[[str, str, int, int], None]


def _input_array(
    model: onnx.ModelProto, cfg: ProverConfig, given: np.ndarray | None
) -> tuple[str, np.ndarray]:
    inits = {t.name for t in model.graph.initializer}
    ins = [i for i in model.graph.input if i.name not in inits]
    if len(ins) != 1:
        raise ProverError(
            "PROVER_MODEL_INVALID", f"the prover feeds one input tensor; the model has {len(ins)}"
        )
    vi = ins[0]
    shape = [d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim]
    if given is not None:
        x = np.asarray(given, dtype=np.float32)
    elif cfg.input_values is not None:
        x = np.asarray(cfg.input_values, dtype=np.float32)
    else:
        x = sample_input(cfg.input_seed).reshape(-1)
        n = int(np.prod(shape))
        if x.size != n:
            x = np.random.default_rng(cfg.input_seed).uniform(-1, 1, n).astype(np.float32)
    if x.size != int(np.prod(shape)):
        raise ProverError(
            "PROVER_CONFIG_INVALID",
            f"input.values: {x.size} values, model input {vi.name!r} has shape {shape}",
        )
    return vi.name, x.reshape(shape)


def _gnark_slice(
    s: Slice,
    cfg: ProverConfig,
    env: dict[str, np.ndarray],
    ints: dict[str, list[int]],
    errs: dict[str, np.ndarray | None],
    out_dir: Path,
    claimed: Sequence[int] | None = None,
) -> SliceProof:
    layers = dense_layers(s.model, s.config.name)
    tin, tout = s.config.inputs[0], s.config.outputs[0]
    sb = cfg.scale_bits
    if tin in ints:
        x_int, in_err = ints[tin], errs.get(tin)
    else:
        x_int = quant.quantize_tensor(env[tin], sb)
        prev = errs.get(tin)
        in_err = None if prev is None else prev + 0.5 / (1 << sb)
    qs = quant.quantize_layers(s.config.name, layers, sb, cfg.q_bits)
    y_int = quant.evaluate(qs, x_int)
    bk = "groth16" if s.config.backend == "gnark-groth16" else "plonk"
    spec = quant.spec_json(qs, x_int, claimed, cfg.commitment)
    p = gnark_backend.prove(spec, bk, out_dir, s.config.plonk_target)
    if claimed is None and list(p.output) != y_int:
        raise ProverError(
            "PROVER_BACKEND_FAILED",
            f"slice {s.config.name!r}: Go and Python integer semantics disagree: {list(p.output)} != {y_int}",
        )
    out_shape = [
        d.dim_value if d.HasField("dim_value") else 1
        for d in s.model.graph.output[0].type.tensor_type.shape.dim
    ]
    env[tout] = quant.dequantize(p.output, sb).astype(np.float32).reshape(out_shape)
    ints[tout] = list(p.output)
    bound = None if in_err is None else quant.error_bound(layers, qs, x_int, in_err)
    errs[tout] = bound
    return SliceProof(
        name=s.config.name,
        backend=s.config.backend,
        scheme=bk,
        format="gnark",
        proof=p.proof,
        vk=p.vk,
        public=p.public_witness,
        settings=None,
        public_inputs=p.public_inputs,
        commitment=cfg.commitment,
        in_commit=p.in_commit,
        out_commit=p.out_commit,
        input_tensor=tin,
        output_tensor=tout,
        prove_seconds=p.prove_seconds,
        setup_seconds=p.setup_seconds,
        keys_cached=p.keys_cached,
        error_bound=None if bound is None else float(np.max(bound)),
    )


def _ezkl_slice(
    s: Slice,
    cfg: ProverConfig,
    env: dict[str, np.ndarray],
    out_dir: Path,
    on_stage: ezkl_backend.OnStage | None = None,
) -> SliceProof:
    p = ezkl_backend.prove(s.model, [env[t] for t in s.config.inputs], cfg.ezkl, out_dir, on_stage=on_stage)
    ref = run_onnx(s.model, env)
    hashed_in = cfg.ezkl.input_visibility == "hashed"
    hashed_out = cfg.ezkl.output_visibility == "hashed"
    # instance layout with hashed input and output: [poseidon(input), poseidon(output)]
    in_c = p.instances[0] if hashed_in and p.instances else None
    out_c = p.instances[-1] if hashed_out and p.instances else None
    if p.outputs and len(s.config.outputs) == 1:
        env[s.config.outputs[0]] = np.asarray(p.outputs, dtype=np.float32).reshape(
            ref[s.config.outputs[0]].shape
        )
    else:
        env.update(ref)
    return SliceProof(
        name=s.config.name,
        backend="ezkl",
        scheme="halo2",
        format="ezkl",
        proof=p.proof,
        vk=p.vk,
        public=None,
        settings=p.settings,
        public_inputs=p.instances,
        commitment=POSEIDON_EZKL if (hashed_in or hashed_out) else None,
        in_commit=in_c,
        out_commit=out_c,
        input_tensor=s.config.inputs[0],
        output_tensor=s.config.outputs[0],
        prove_seconds=p.prove_seconds,
        setup_seconds=p.setup_seconds,
        keys_cached=p.keys_cached,
        error_bound=None,
    )


def check_chain(proofs: Sequence[SliceProof]) -> list[ChainLink]:
    """Compare commitments of consecutive proven slices joined by a tensor (pure).

    Raises PROVER_CHAIN_BROKEN when both sides commit with the same scheme and disagree."""
    links = []
    for a, b in itertools.pairwise(proofs):
        if a.output_tensor != b.input_tensor:
            continue
        if (
            a.commitment is None
            or a.commitment != b.commitment
            or a.out_commit is None
            or b.in_commit is None
        ):
            links.append(ChainLink(a.name, b.name, a.output_tensor, None, False))
            continue
        if a.out_commit != b.in_commit:
            raise ProverError(
                "PROVER_CHAIN_BROKEN",
                f"slice {b.name!r} input commitment 0x{b.in_commit.hex()} != slice {a.name!r} "
                f"output commitment 0x{a.out_commit.hex()} (tensor {a.output_tensor!r})",
            )
        links.append(ChainLink(a.name, b.name, a.output_tensor, a.commitment, True))
    return links


def restrict_slices(cfg: ProverConfig, only: Collection[str] | None) -> ProverConfig:
    """`cfg` with only the named slices proven (None: unchanged); unknown names are refused."""
    if only is None:
        return cfg
    names = {s.name for s in cfg.slices}
    unknown = sorted(set(only) - names)
    if unknown:
        raise ProverError(
            "PROVER_CONFIG_INVALID", f"--slices: no slice named {', '.join(unknown)} (have {sorted(names)})"
        )
    slices = tuple(dataclasses.replace(s, prove=s.prove and s.name in only) for s in cfg.slices)
    if not any(s.proven for s in slices):
        raise ProverError("PROVER_CONFIG_INVALID", "--slices: none of the selected slices is proven")
    return dataclasses.replace(cfg, slices=slices)


def run_model(
    model_path: Path | None,
    config_path: Path,
    out_dir: Path,
    *,
    x: np.ndarray | None = None,
    progress: Progress | None = None,
    only: Collection[str] | None = None,
    stages: StageProgress | None = None,
) -> ModelRun:
    """Prove the configured slices; with `only`, just those slices (by name) are proven and the
    others run on onnxruntime (a faster run of the same pipeline). `progress` gets a line per
    slice event, `stages` each ezkl proving stage."""
    say = progress or (lambda _m: None)
    cfg = restrict_slices(load_config(config_path), only)
    path = model_path or cfg.model_path
    if path is None:
        raise ProverError("PROVER_CONFIG_INVALID", "model.path: no model given (config or --model)")
    model = load_model(path)
    slices = slice_model(model, cfg)
    require_supported(slices)
    in_name, x_arr = _input_array(model, cfg, x)
    reference = run_onnx(model, {in_name: x_arr})
    env: dict[str, np.ndarray] = {in_name: x_arr}
    ints: dict[str, list[int]] = {}
    errs: dict[str, np.ndarray | None] = {in_name: np.zeros(x_arr.size)}
    proofs: list[SliceProof] = []
    for i, s in enumerate(slices):
        tag = f"[{i + 1}/{len(slices)}] {s.config.name}"
        sdir = out_dir / f"{i:02d}-{s.config.name}"
        t0 = time.monotonic()
        if not s.config.proven:
            say(f"{tag}: onnxruntime (not proven)")
            env.update(run_onnx(s.model, env))
            for t in s.config.outputs:
                ints.pop(t, None)
                errs[t] = None
            continue
        say(f"{tag}: proving with {s.config.backend} ...")
        if s.config.backend == "ezkl":
            srs = ezkl_backend.prover_srs()
            # the aggregator and every operator must verify with this SRS (or a cut: same id)
            say(f"{tag}: ezkl SRS {srs} (SRS id {ezkl_backend.prover_srs_id(srs)})")
            on_stage = None if stages is None else functools.partial(stages, tag)
            p = _ezkl_slice(s, cfg, env, sdir, on_stage)
            for t in s.config.outputs:
                ints.pop(t, None)
                errs[t] = None
        else:
            p = _gnark_slice(s, cfg, env, ints, errs, sdir)
        proofs.append(p)
        say(
            f"{tag}: done in {time.monotonic() - t0:.1f}s (prove {p.prove_seconds:.2f}s, "
            f"keys {'cached' if p.keys_cached else 'new'}, proof {p.proof_size} B)"
        )
    chain = check_chain(proofs)
    run = ModelRun(proofs, env, reference, chain, slices)
    write_run_manifest(run, out_dir / "proofs.json")
    return run


def prove_model(
    model_path: Path | None, config_path: Path, out_dir: Path, progress: Progress | None = None
) -> list[SliceProof]:
    return run_model(model_path, config_path, out_dir, progress=progress).proofs


def _hex(b: bytes | None) -> str | None:
    return None if b is None else "0x" + b.hex()


def proof_to_dict(p: SliceProof) -> dict[str, Any]:
    return {
        "name": p.name,
        "backend": p.backend,
        "scheme": p.scheme,
        "format": p.format,
        "proof": str(p.proof),
        "vk": str(p.vk),
        "public": str(p.public) if p.public else None,
        "settings": str(p.settings) if p.settings else None,
        "public_inputs": [_hex(x) for x in p.public_inputs],
        "commitment": p.commitment,
        "in_commit": _hex(p.in_commit),
        "out_commit": _hex(p.out_commit),
        "input_tensor": p.input_tensor,
        "output_tensor": p.output_tensor,
        "prove_seconds": p.prove_seconds,
        "setup_seconds": p.setup_seconds,
        "keys_cached": p.keys_cached,
        "proof_size": p.proof_size,
        "error_bound": p.error_bound,
    }


def proof_from_dict(d: dict[str, Any]) -> SliceProof:
    def b(v: str | None) -> bytes | None:
        return None if v is None else bytes.fromhex(v.removeprefix("0x"))

    return SliceProof(
        name=d["name"],
        backend=d["backend"],
        scheme=d["scheme"],
        format=d["format"],
        proof=Path(d["proof"]),
        vk=Path(d["vk"]),
        public=Path(d["public"]) if d["public"] else None,
        settings=Path(d["settings"]) if d["settings"] else None,
        public_inputs=tuple(bytes.fromhex(x.removeprefix("0x")) for x in d["public_inputs"]),
        commitment=d["commitment"],
        in_commit=b(d["in_commit"]),
        out_commit=b(d["out_commit"]),
        input_tensor=d["input_tensor"],
        output_tensor=d["output_tensor"],
        prove_seconds=d["prove_seconds"],
        setup_seconds=d["setup_seconds"],
        keys_cached=d["keys_cached"],
        error_bound=d["error_bound"],
    )


def write_run_manifest(run: ModelRun, path: Path) -> None:
    """proofs.json of a prover run: its slice proofs and the commitment chain."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "proofs": [proof_to_dict(p) for p in run.proofs],
        # every slice in order, proven or not: the whole-inference model spec (provers/inference.py)
        "slices": [{"name": s.config.name, "proven": s.config.proven} for s in run.slices],
        "chain": [
            {
                "prev": c.prev,
                "next": c.next,
                "tensor": c.tensor,
                "commitment": c.commitment,
                "linked": c.linked,
            }
            for c in run.chain
        ],
    }
    path.write_text(json.dumps(doc, indent=2))


def load_run_manifest(path: Path) -> list[SliceProof]:
    """The slice proofs of a prover run's proofs.json (write_run_manifest)."""
    try:
        doc = json.loads(path.read_text())
        return [proof_from_dict(d) for d in doc["proofs"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ProverError("PROVER_CONFIG_INVALID", f"{path}: not a proofs.json manifest: {e}") from e


def load_run_slices(path: Path) -> list[tuple[str, bool]]:
    """(name, proven) of every slice of a run's proofs.json, in order (older manifests: its proofs)."""
    try:
        doc = json.loads(path.read_text())
        if "slices" in doc:
            return [(str(d["name"]), bool(d["proven"])) for d in doc["slices"]]
        return [(str(d["name"]), True) for d in doc["proofs"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ProverError("PROVER_CONFIG_INVALID", f"{path}: not a proofs.json manifest: {e}") from e


# ---------------------------------------------------------------- submission


@dataclass(frozen=True)
class SubmitResult:
    name: str
    proof_id: str
    statement_hash: bytes
    status: str
    reason: str
    aggregation_id: int | None
    kind: str | None  # RECURSIVE | ATTESTED
    tx_hash: bytes | None
    gas_used: int | None
    included_on_chain: bool | None  # registry.verifyProofAggregationKind(...) result


def check_inclusion_on_chain(rpc_url: str, inc: Any) -> tuple[bool, int, int | None]:
    """(ok, kind, gas used by the aggregation tx) straight from the chain, not the aggregator."""
    from hexbytes import HexBytes
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(rpc_url))
    reg = w3.eth.contract(address=Web3.to_checksum_address(inc.registry), abi=REGISTRY_ABI)
    ok, kind = reg.functions.verifyProofAggregationKind(
        int(inc.domain_id),
        int(inc.aggregation_id),
        bytes(inc.leaf),
        [bytes(p) for p in inc.merkle_path],
        int(inc.leaf_count),
        int(inc.index),
    ).call()
    gas = None
    if inc.tx_hash:
        gas = int(w3.eth.get_transaction_receipt(HexBytes(bytes(inc.tx_hash)))["gasUsed"])
    return bool(ok), int(kind), gas


def submit_and_wait(
    proofs: Sequence[SliceProof],
    target: str,
    *,
    rpc_url: str | None = None,
    prover_key: str | None = None,
    domain_id: int = 0,
    timeout: float = 300.0,
    progress: Progress | None = None,
) -> list[SubmitResult]:
    """Submit every slice proof over gRPC, follow each to a terminal status, then check inclusion
    on-chain (when rpc_url is given) against the registry the aggregator names."""
    say = progress or (lambda _m: None)
    results: list[SubmitResult] = []
    with Client(target) as c:
        submitted = []
        for p in proofs:
            raw = p.read()
            try:
                stmt = None
                if prover_key is not None:
                    with Normalizer() as n:
                        stmt = n.normalize(
                            ProofInput(
                                p.scheme,
                                p.format,
                                raw["proof"] or b"",
                                raw["vk"] or b"",
                                public=raw["public"],
                                settings=raw["settings"],
                            )
                        ).statement_hash
                r = c.submit(
                    p.scheme,
                    p.format,
                    raw["proof"] or b"",
                    vk=raw["vk"],
                    public=raw["public"],
                    settings=raw["settings"],
                    domain_id=domain_id,
                    prover_key=prover_key,
                    statement_hash=stmt,
                )
            except AggregatorError as e:
                raise ProverError("PROVER_SUBMIT_FAILED", f"slice {p.name!r}: {e}") from e
            say(
                f"{p.name}: submitted, proof_id {r.proof_id} ({pb.ProofStatus.Name(r.status)}"
                f"{', duplicate' if r.duplicate else ''})"
            )
            submitted.append((p, r))
        for p, r in submitted:
            st = c.wait_finalized(r.proof_id, timeout)
            status = pb.ProofStatus.Name(st.status)
            say(f"{p.name}: {status}{' ' + st.reason_code if st.reason_code else ''}")
            agg_id = kind = tx = gas = ok = None
            if st.status == pb.FINALIZED:
                inc = c.inclusion(r.proof_id)
                agg_id, tx = int(inc.aggregation_id), bytes(inc.tx_hash) or None
                kind = pb.AggregationKind.Name(inc.kind)
                if rpc_url is not None:
                    ok, kind_num, gas = check_inclusion_on_chain(rpc_url, inc)
                    if ok:
                        kind = pb.AggregationKind.Name(kind_num)  # type: ignore[arg-type]
                    say(f"{p.name}: on-chain inclusion {'OK' if ok else 'NOT FOUND'}")
            results.append(
                SubmitResult(
                    p.name,
                    r.proof_id,
                    bytes(r.statement_hash),
                    status,
                    st.reason_code,
                    agg_id,
                    kind,
                    tx,
                    gas,
                    ok,
                )
            )
    return results
