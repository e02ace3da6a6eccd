"""A prover run as one whole inference (docs/inference.md, docs/prover.md): the model spec derived from
the run's slices, registered with the aggregator (and optionally on-chain), every proven slice submitted
in one SubmitInference, followed to FINALIZED, and the receipt checked off-chain with the SDK.

Model spec per slice, in the config's order: an unproven slice (onnxruntime) is `proven=false`; a
proven one has its scheme byte, the vk hash the aggregator computes (the normalizer's), its number of
public inputs and the positions of its input and output commitments among them (gnark slices:
[in, out]; ezkl with hashed input/output: its instances' positions). The output slice (the last
proven one) exposes its output commitment as the model's output: the sample model's outputs are not
public values, so an app compares the commitment of the output it claims (docs/inference.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sheaf_client as sc
from web3 import Web3

from normalizers.api import Normalizer, ProofInput
from provers.errors import ProverError
from provers.pipeline import SliceProof
from sheaf.inference import InferenceError, SliceSpec, model_id, validate_model
from sheaf.registry_abi import REGISTRY_ABI
from sheaf.schemes import Scheme

Progress = Callable[[str], None]


def _position(p: SliceProof, value: bytes | None, what: str) -> int:
    if value is None or p.public_inputs.count(value) != 1:
        raise ProverError(
            "PROVER_MODEL_SPEC",
            f"slice {p.name!r}: its {what} commitment is not exactly one of its public inputs "
            "(whole-inference verification needs both commitments public: hashed ezkl visibility or a "
            "gnark slice)",
        )
    return p.public_inputs.index(value)


def model_spec(
    slices: Sequence[tuple[str, bool]], proofs: Sequence[SliceProof], vk_hashes: Sequence[bytes]
) -> list[SliceSpec]:
    """The SliceSpec list of a run: `slices` = (name, proven) for every slice in order, `proofs` and
    `vk_hashes` for the proven ones in the same order."""
    by_name = {p.name: (p, h) for p, h in zip(proofs, vk_hashes, strict=True)}
    last = max((i for i, (_, proven) in enumerate(slices) if proven), default=-1)
    out: list[SliceSpec] = []
    for i, (name, proven) in enumerate(slices):
        if not proven:
            out.append(SliceSpec.unproven())
            continue
        if name not in by_name:
            raise ProverError("PROVER_MODEL_SPEC", f"slice {name!r} is proven in the config but has no proof")
        p, vk_hash = by_name[name]
        out_idx = _position(p, p.out_commit, "output")
        out.append(
            SliceSpec(
                proven=True,
                scheme=int(Scheme.parse(p.scheme)),
                vk_hash=vk_hash,
                public_input_count=len(p.public_inputs),
                in_commit_index=_position(p, p.in_commit, "input"),
                out_commit_index=out_idx,
                output_indices=(out_idx,) if i == last else (),
            )
        )
    try:
        validate_model(out)
    except InferenceError as e:
        raise ProverError("PROVER_MODEL_SPEC", f"the derived model spec is invalid: {e}") from e
    return out


def vk_hashes(proofs: Sequence[SliceProof]) -> list[bytes]:
    """The vk hash of each slice proof as the aggregator computes it (native verification)."""
    out = []
    with Normalizer() as n:
        for p in proofs:
            raw = p.read()
            env = n.normalize(
                ProofInput(
                    p.scheme, p.format, raw["proof"] or b"", raw["vk"] or b"", raw["public"], raw["settings"]
                )
            )
            out.append(bytes(env.vk_hash))
    return out


def registry_check(rpc_url: str, registry: str, domain_id: int) -> sc.inference.InclusionCheck:
    """Inclusion asked from the chain: the registry's verifyProofAggregationKind in `domain_id`."""
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    reg = w3.eth.contract(address=Web3.to_checksum_address(registry), abi=REGISTRY_ABI)

    def check(agg: int, leaf: bytes, path: Sequence[bytes], n: int, index: int) -> int:
        ok, kind = reg.functions.verifyProofAggregationKind(domain_id, agg, leaf, list(path), n, index).call()
        return int(kind) if ok else 0

    return check


def _sdk_spec(s: SliceSpec) -> sc.SliceSpec:
    return sc.SliceSpec(
        s.proven,
        s.scheme,
        "0x" + s.vk_hash.hex(),
        s.public_input_count,
        s.in_commit_index,
        s.out_commit_index,
        s.output_indices,
    )


@dataclass(frozen=True)
class InferenceRun:
    model: list[SliceSpec]
    model_id: bytes
    inference_id: str
    status: str
    receipt: sc.InferenceReceipt | None
    result: sc.InferenceResult | None
    seconds: float


def receipt_json(r: sc.InferenceReceipt) -> dict[str, Any]:
    """The receipt in JSON (0x-hex words): what an app passes to acceptInference."""
    return {
        "inference_id": r.inference_id,
        "model_id": r.model_id,
        "domain_id": r.domain_id,
        "inference_hash": r.inference_hash,
        "input_commitment": hex(r.input_commitment),
        "output": [hex(v) for v in r.output],
        "output_slice": r.output_slice,
        "registry": r.registry,
        "chain_id": r.chain_id,
        "proofs": [
            {
                "public_inputs": [hex(v) for v in s.public_inputs],
                "aggregation_id": s.aggregation_id,
                "merkle_path": list(s.merkle_path),
                "leaf_count": s.leaf_count,
                "index": s.index,
            }
            for s in r.slices
        ],
    }


def submit_inference(
    slices: Sequence[tuple[str, bool]],
    proofs: Sequence[SliceProof],
    target: str,
    *,
    domain_id: int = 0,
    timeout: float = 300.0,
    out_dir: Path | None = None,
    rpc_url: str | None = None,
    known_vk_hashes: Sequence[bytes] | None = None,
    progress: Progress | None = None,
) -> InferenceRun:
    """Register the run's model with the aggregator, submit every proven slice as one inference, wait,
    fetch the receipt and check it with the SDK (inclusion asked from the registry the aggregator
    names when `rpc_url` is given, else against the receipt's own roots). `known_vk_hashes`: the
    proofs' vk hashes if the caller normalized them already (else a Normalizer computes them).
    Writes model.json and receipt.json into `out_dir` when given."""
    say = progress or (lambda _m: None)
    t0 = time.monotonic()
    model = model_spec(slices, proofs, known_vk_hashes if known_vk_hashes is not None else vk_hashes(proofs))
    mid = model_id(model)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "model.json").write_text(
            json.dumps({"slices": [s.to_json() for s in model]}, indent=1) + "\n"
        )
    by_name = {p.name: p for p in proofs}
    inputs: list[sc.SliceInput | None] = []
    for name, proven in slices:
        if not proven:
            inputs.append(None)
            continue
        raw = by_name[name].read()
        inputs.append(
            sc.SliceInput(
                by_name[name].format,
                raw["proof"] or b"",
                vk=raw["vk"],
                public=raw["public"],
                settings=raw["settings"],
            )
        )
    try:
        with sc.Client(target) as c:
            got = c.register_model([_sdk_spec(s) for s in model])
            if got != "0x" + mid.hex():
                raise ProverError(
                    "PROVER_SUBMIT_FAILED", f"the aggregator derived model id {got}, not 0x{mid.hex()}"
                )
            say(
                f"model 0x{mid.hex()} registered "
                f"({sum(s.proven for s in model)} of {len(model)} slices proven)"
            )
            sub = c.submit_inference("0x" + mid.hex(), inputs, domain_id=domain_id)
            dup = " (duplicate)" if sub.duplicate else ""
            say(f"inference {sub.inference_id}: submitted, {sub.status.name}{dup}")
            st = c.wait_inference(sub.inference_id, timeout=timeout)
            if st.status is not sub.status:  # its slices may all be FINALIZED already
                say(f"inference {sub.inference_id}: {st.status.name}")
            if st.status is not sc.ProofStatus.FINALIZED:
                return InferenceRun(
                    model, mid, sub.inference_id, st.status.name, None, None, time.monotonic() - t0
                )
            receipt = c.get_inference_receipt(sub.inference_id)
    except sc.SheafError as e:
        raise ProverError("PROVER_SUBMIT_FAILED", f"inference: {e}") from e
    included = registry_check(rpc_url, receipt.registry, receipt.domain_id) if rpc_url else None
    try:
        result = sc.verify_receipt([_sdk_spec(s) for s in model], receipt, included=included)
    except sc.InferenceError as e:
        raise ProverError("PROVER_SUBMIT_FAILED", f"the receipt does not verify: {e}") from e
    if out_dir is not None:
        (out_dir / "receipt.json").write_text(json.dumps(receipt_json(receipt), indent=1) + "\n")
    return InferenceRun(model, mid, receipt.inference_id, "FINALIZED", receipt, result, time.monotonic() - t0)
