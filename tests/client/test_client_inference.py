"""sheaf_client.inference is the standalone twin of sheaf/inference.py (the spec of SheafInference.sol):
the same model id for every committed vector (valid or not), and the same receipt check, result or
refusal (error name and arguments), over random models, linked runs and tamperings."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
import sheaf_client as sc
from sheaf_client.inference import ReceiptSlice, verify_inference

from aggregator.merkle import all_paths
from sheaf import inference as spec
from sheaf.hashing import keccak256
from sheaf.statement import BN254_R

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "model_id.json"


def _to_sdk(s: spec.SliceSpec) -> sc.SliceSpec:
    return sc.SliceSpec(
        s.proven,
        s.scheme,
        "0x" + s.vk_hash.hex(),
        s.public_input_count,
        s.in_commit_index,
        s.out_commit_index,
        s.output_indices,
    )


def test_model_id_equals_the_spec_for_every_vector() -> None:
    cases = json.loads(VECTORS.read_text())["cases"]
    assert len(cases) >= 20
    for c in cases:
        slices = [spec.SliceSpec.from_json(d) for d in c["slices"]]
        assert sc.model_id([_to_sdk(s) for s in slices]) == c["model_id"], c["name"]
        assert sc.model_id([_to_sdk(s) for s in slices]) == "0x" + spec.model_id(slices).hex()


def _random_model(rng: random.Random) -> list[spec.SliceSpec]:
    n = rng.randint(1, 8)
    proven = [rng.random() < 0.8 for _ in range(n)]
    if not any(proven):
        proven[rng.randrange(n)] = True
    last = max(i for i in range(n) if proven[i])
    out: list[spec.SliceSpec] = []
    for i in range(n):
        if not proven[i]:
            out.append(spec.SliceSpec.unproven())
            continue
        count = rng.randint(2, 6)
        a, b = rng.sample(range(count), 2)
        outs = tuple(sorted(rng.sample(range(count), rng.randint(1, count)))) if i == last else ()
        out.append(spec.SliceSpec(True, rng.randint(1, 3), keccak256(bytes([i, n])), count, a, b, outs))
    spec.validate_model(out)
    return out


def _linked_run(rng: random.Random, model: list[spec.SliceSpec]) -> list[spec.SliceProof]:
    proofs: list[spec.SliceProof] = []
    prev: int | None = None
    for i, s in enumerate(model):
        if not s.proven:
            proofs.append(spec.SliceProof())
            prev = None
            continue
        pubs = [rng.randrange(BN254_R) for _ in range(s.public_input_count)]
        if prev is not None:
            pubs[s.in_commit_index] = prev
        prev = pubs[s.out_commit_index]
        proofs.append(spec.SliceProof(tuple(pubs), rng.randint(1, 9), (keccak256(bytes([i])),), 2, i % 2))
    return proofs


def _as_receipt(p: spec.SliceProof) -> ReceiptSlice:
    if not p.public_inputs and not p.merkle_path:
        return ReceiptSlice(False, aggregation_id=p.aggregation_id, leaf_count=p.leaf_count, index=p.index)
    return ReceiptSlice(
        True,
        "",
        p.public_inputs,
        p.aggregation_id,
        tuple("0x" + x.hex() for x in p.merkle_path),
        p.leaf_count,
        p.index,
    )


def _outcome(fn: object) -> tuple[object, ...]:
    try:
        r = fn()  # type: ignore[operator]
    except (spec.InferenceError, sc.InferenceError) as e:
        return ("refused", e.error, tuple(a if isinstance(a, int) else bytes(a) for a in e.args_))
    h = r.inference_hash if isinstance(r.inference_hash, str) else "0x" + r.inference_hash.hex()
    segs = tuple((s.first, s.last, s.in_commit, s.out_commit) for s in r.segments)
    return ("ok", h, r.output, r.output_slice, r.proven_mask, r.fully_proven, segs, r.kinds)


def _both(
    model: list[spec.SliceSpec], v: list[spec.SliceProof], kind: int, posted: dict[bytes, int]
) -> tuple[tuple[object, ...], tuple[object, ...]]:
    def included(_agg: int, leaf: bytes, _path: object, _n: int, _i: int) -> int:
        return posted.get(leaf, 0)

    sdk_model = [_to_sdk(s) for s in model]
    a = _outcome(lambda: spec.verify_inference(model, v, kind, included))
    b = _outcome(lambda: verify_inference(sdk_model, [_as_receipt(x) for x in v], kind, included))
    return a, b


def test_receipt_check_equals_the_spec_over_random_models_and_tamperings() -> None:
    rng = random.Random(17)
    compared = refused = 0
    for _ in range(150):
        model = _random_model(rng)
        proofs = _linked_run(rng, model)
        # the toy registry: a statement is included (with a per-aggregation kind) iff it was "posted"
        posted = {
            spec.statement_hash(s.scheme, s.vk_hash, p.public_inputs): rng.choice((1, 2))
            for s, p in zip(model, proofs, strict=True)
            if s.proven
        }

        variants = [proofs]
        k = rng.randrange(len(proofs))
        p = proofs[k]
        if p.public_inputs:
            j = rng.randrange(len(p.public_inputs))
            pubs = list(p.public_inputs)
            pubs[j] = (pubs[j] + 1) % BN254_R
            variants.append([*proofs[:k], replace(p, public_inputs=tuple(pubs)), *proofs[k + 1 :]])
            variants.append([*proofs[:k], replace(p, public_inputs=p.public_inputs[:-1]), *proofs[k + 1 :]])
            pubs[j] = BN254_R
            variants.append([*proofs[:k], replace(p, public_inputs=tuple(pubs)), *proofs[k + 1 :]])
        else:
            variants.append([*proofs[:k], replace(p, aggregation_id=1), *proofs[k + 1 :]])
        variants.append(proofs[:-1])
        variants.append(list(reversed(proofs)))
        for v in variants:
            for kind in (0, 1, 2, 3):
                a, b = _both(model, v, kind, posted)
                assert a == b, (model, v, kind)
                compared += 1
                refused += a[0] == "refused"
    assert compared == 150 * 4 * 4 or compared > 2000
    assert 0.3 < refused / compared < 0.95  # both outcomes are exercised


def test_receipt_roots_is_the_registry_merkle_check() -> None:
    leaves = [keccak256(bytes([i])) for i in range(5)]
    for i, pr in enumerate(all_paths(leaves)):
        assert sc.inference.merkle_verify(pr.root, leaves[i], pr.path, 5, i)
        assert not sc.inference.merkle_verify(pr.root, leaves[i], pr.path, 5, (i + 1) % 5)
        assert not sc.inference.merkle_verify(pr.root, leaves[(i + 1) % 5], pr.path, 5, i)


def test_receipt_from_another_model_is_refused() -> None:
    model = [sc.SliceSpec(True, 1, "0x" + "11" * 32, 2, 0, 1, (1,))]
    r = sc.InferenceReceipt("1-x", "0x" + "00" * 32, 1, "0x", (), (), 0, 0, "", 0)
    with pytest.raises(sc.InferenceError) as e:
        sc.verify_receipt(model, r)
    assert e.value.error == "ModelMismatch"
