"""Whole-inference verification (docs/inference.md): the Python spec (sheaf/inference.py) against its
vectors, eth-abi and the normalizer's statement hash; then SheafInference on a real anvil: model ids and
registration refusals equal the spec's, verifyInference returns what the spec's receipt check returns
(attested aggregations signed with real keys, paths from aggregator/merkle.py), refusals carry the
spec's revert data, and the gas of a whole-model acceptance vs one ExampleConsumer.acceptResult per slice
is measured from receipts.

Regenerate the vectors with `python -m tests.contracts.test_contracts_inference`."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError

from aggregator.attestation import Aggregation, sign_aggregation
from aggregator.merkle import merkle_path, merkle_root
from deploy.anvil import ANVIL_DEV_KEYS
from deploy.api import configure_registry
from deploy.chain import call_tx_gas, deploy_contract, exec_gas, transact
from deploy.compile import Artifact
from sheaf.hashing import keccak256
from sheaf.inference import (
    BN254_R,
    ERROR_SIGNATURES,
    INFERENCE_TAG,
    MODEL_ID_TAG,
    InferenceError,
    SliceProof,
    SliceSpec,
    encode_model,
    model_id,
    statement_hash,
    validate_model,
    verify_inference,
)

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "vectors" / "model_id.json"
SLICE_ABI = "(bool,uint8,bytes32,uint16,uint16,uint16,uint16[])"


# ---------------------------------------------------------------------------- the vectors


def vk(scheme: int, name: str) -> bytes:
    """A stand-in vk hash, computed like the real ones (keccak256("sheaf/vk" || u8 scheme || vk))."""
    return keccak256(b"sheaf/vk" + bytes([scheme]) + f"example-vk/{name}".encode())


def g16(name: str) -> SliceSpec:
    """A gnark slice: public inputs [in_commit, out_commit]."""
    return SliceSpec(True, 1, vk(1, name), 2, 0, 1)


def plonk(name: str) -> SliceSpec:
    return SliceSpec(True, 2, vk(2, name), 2, 0, 1)


def halo2_out(name: str, n_out: int = 3) -> SliceSpec:
    """An ezkl output slice: [poseidon(input), poseidon(output), output values...]."""
    return SliceSpec(True, 3, vk(3, name), 2 + n_out, 0, 1, tuple(range(2, 2 + n_out)))


def with_output(s: SliceSpec, outs: tuple[int, ...]) -> SliceSpec:
    return dataclasses.replace(s, output_indices=outs)


U = SliceSpec.unproven()
THREE = [g16("m3/0"), plonk("m3/1"), halo2_out("m3/2")]
EIGHT = [[g16, plonk][i % 2](f"m8/{i}") for i in range(7)] + [halo2_out("m8/7", 2)]
PARTIAL = [g16("p/0"), U, plonk("p/2"), with_output(g16("p/3"), (1,)), U]

VALID_CASES: list[tuple[str, list[SliceSpec]]] = [
    ("three_slices_mixed_schemes", THREE),
    ("eight_slices", EIGHT),
    ("single_slice_output_is_commitment", [with_output(g16("one"), (1,))]),
    ("dsperse_partial", PARTIAL),
    ("max_slices", [g16(f"max/{i}") for i in range(63)] + [with_output(g16("max/63"), (1,))]),
]


def _bad(i: int, **kw: Any) -> list[SliceSpec]:
    spec = list(THREE)
    spec[i] = dataclasses.replace(spec[i], **kw)
    return spec


INVALID_CASES: list[tuple[str, list[SliceSpec]]] = [
    ("no_slices", []),
    ("too_many_slices", [g16(f"big/{i}") for i in range(64)] + [with_output(g16("big/64"), (1,))]),
    ("no_proven_slice", [U, U]),
    ("scheme_zero", _bad(1, scheme=0)),
    ("scheme_four", _bad(0, scheme=4)),
    ("zero_vk_hash", _bad(1, vk_hash=bytes(32))),
    ("zero_public_input_count", _bad(0, public_input_count=0, out_commit_index=0)),
    ("in_commit_out_of_range", _bad(1, in_commit_index=2)),
    ("out_commit_out_of_range", _bad(2, out_commit_index=5)),
    ("same_in_out_commit", _bad(1, out_commit_index=0)),
    ("output_index_out_of_range", _bad(2, output_indices=(2, 3, 5))),
    ("output_indices_not_ascending", _bad(2, output_indices=(2, 4, 3))),
    ("output_indices_duplicate", _bad(2, output_indices=(2, 2))),
    ("output_on_non_output_slice", _bad(0, output_indices=(1,))),
    ("no_output", _bad(2, output_indices=())),
    (
        "unproven_with_vk",
        [g16("u/0"), dataclasses.replace(U, vk_hash=vk(1, "u")), with_output(g16("u/2"), (1,))],
    ),
    ("unproven_with_scheme", [dataclasses.replace(U, scheme=1), with_output(g16("u/2"), (1,))]),
    ("unproven_with_output", [with_output(g16("u/0"), (1,)), dataclasses.replace(U, output_indices=(0,))]),
    ("output_not_on_last_proven", [with_output(g16("o/0"), (1,)), g16("o/1")]),
]


def vectors() -> dict[str, Any]:
    cases: list[dict[str, Any]] = []
    for name, spec in VALID_CASES + INVALID_CASES:
        case: dict[str, Any] = {
            "name": name,
            "slice_count": len(spec),
            "slices": [s.to_json() for s in spec],
            "encoded": "0x" + encode_model(spec).hex(),
            "model_id": "0x" + model_id(spec).hex(),
        }
        try:
            out, segs, mask = validate_model(spec)
            case.update(valid=True, output_slice=out, segment_count=segs, proven_mask=mask, revert_data="0x")
        except InferenceError as e:
            case.update(valid=False, error=e.signature, revert_data="0x" + e.revert_data().hex())
        cases.append(case)
    return {
        "spec": "model_id = keccak256(abi.encode(MODEL_ID_TAG, SliceSpec[] slices)); "
        "MODEL_ID_TAG = keccak256('sheaf/model/v1'); SliceSpec = " + SLICE_ABI + " = (proven, scheme, "
        "vkHash, publicInputCount, inCommitIndex, outCommitIndex, outputIndices). Made by "
        "`python -m tests.contracts.test_contracts_inference` from sheaf/inference.py.",
        "model_id_tag": "0x" + MODEL_ID_TAG.hex(),
        "inference_tag": "0x" + INFERENCE_TAG.hex(),
        "cases": cases,
    }


def render() -> str:
    return json.dumps(vectors(), indent=1) + "\n"


# ---------------------------------------------------------------------------- the spec, offline


def test_vectors_file_is_what_the_spec_produces() -> None:
    assert VECTORS.read_text() == render(), "regenerate: python -m tests.contracts.test_contracts_inference"
    data = json.loads(VECTORS.read_text())
    assert sum(c["valid"] for c in data["cases"]) == len(VALID_CASES) >= 5
    for c in data["cases"]:  # the JSON form round-trips
        spec = [SliceSpec.from_json(x) for x in c["slices"]]
        assert [x.to_json() for x in spec] == c["slices"]
        assert "0x" + model_id(spec).hex() == c["model_id"]
    assert sum(not c["valid"] for c in data["cases"]) == len(INVALID_CASES) >= 15
    # every registration error of the contract has a vector but ModelAlreadyRegistered
    named = {c["error"].split("(")[0] for c in data["cases"] if not c["valid"]}
    assert named == {
        "NoSlices",
        "TooManySlices",
        "NoProvenSlice",
        "InvalidScheme",
        "ZeroVkHash",
        "ZeroPublicInputCount",
        "CommitIndexOutOfRange",
        "SameInOutCommit",
        "OutputIndexOutOfRange",
        "OutputIndicesNotAscending",
        "OutputOnNonOutputSlice",
        "NoOutput",
        "UnprovenSliceNotEmpty",
    }


@pytest.mark.parametrize(
    "name,spec", VALID_CASES + INVALID_CASES, ids=[n for n, _ in VALID_CASES + INVALID_CASES]
)
def test_encoding_is_abi_encode(name: str, spec: list[SliceSpec]) -> None:
    ref = abi_encode(["bytes32", SLICE_ABI + "[]"], [MODEL_ID_TAG, [s.abi() for s in spec]])
    assert encode_model(spec) == ref
    assert model_id(spec) == keccak256(ref)


def test_model_id_worked_vector() -> None:
    """The worked example of docs/inference.md."""
    spec = [SliceSpec(True, 1, bytes([0x11]) * 32, 2, 0, 1, (1,))]
    enc = encode_model(spec)
    assert len(enc) == 32 * 13
    assert enc[32:64] == (0x40).to_bytes(32, "big") and enc[64:96] == (1).to_bytes(32, "big")
    assert model_id(spec).hex() == "ae720c57f2bee48088da2d99f998fe1a27e5d251269878a071d31eb48527b88b"


def test_model_id_changes_with_any_field() -> None:
    base = THREE
    seen = {model_id(base)}
    for i in range(len(base)):
        s = base[i]
        for change in (
            {"proven": not s.proven},
            {"scheme": s.scheme % 3 + 1},
            {"vk_hash": keccak256(s.vk_hash)},
            {"public_input_count": s.public_input_count + 1},
            {"in_commit_index": s.in_commit_index + 1},
            {"out_commit_index": s.out_commit_index + 1},
            {"output_indices": (*s.output_indices, 9)},
        ):
            spec = list(base)
            spec[i] = dataclasses.replace(s, **change)
            mid = model_id(spec)
            assert mid not in seen, (i, change)
            seen.add(mid)
    # order, count
    for spec in (base[::-1], base[:2], [*base, U]):
        assert model_id(spec) not in seen
        seen.add(model_id(spec))


def test_statement_hash_is_the_normalizers() -> None:
    from normalizers.statement import Scheme
    from normalizers.statement import statement_hash as norm_statement_hash

    for scheme in Scheme:
        for pubs in ([], [0], [1, 2], [BN254_R - 1, 5, 7, 11]):
            v = vk(int(scheme), f"s{len(pubs)}")
            assert statement_hash(int(scheme), v, pubs) == norm_statement_hash(
                scheme, v, [p.to_bytes(32, "big") for p in pubs]
            )


# A toy registry for the receipt check: {aggregation_id: (kind, leaves)}; paths are not looked at.
class ToyRegistry:
    def __init__(self) -> None:
        self.aggs: dict[int, tuple[int, list[bytes]]] = {}

    def post(self, kind: int, leaves: list[bytes]) -> int:
        agg_id = len(self.aggs) + 1
        self.aggs[agg_id] = (kind, list(leaves))
        return agg_id

    def included(self, agg_id: int, leaf: bytes, path: Sequence[bytes], leaf_count: int, index: int) -> int:
        kind, leaves = self.aggs.get(agg_id, (0, []))
        ok = leaf_count == len(leaves) and 0 <= index < len(leaves) and leaves[index] == leaf
        return kind if ok else 0

    def proofs(
        self, spec: Sequence[SliceSpec], pubs: Sequence[Sequence[int]], agg_id: int
    ) -> list[SliceProof]:
        _, leaves = self.aggs[agg_id]
        out = []
        for s, p in zip(spec, pubs, strict=True):
            if not s.proven:
                out.append(SliceProof())
                continue
            stmt = statement_hash(s.scheme, s.vk_hash, p)
            out.append(SliceProof(tuple(p), agg_id, (), len(leaves), leaves.index(stmt)))
        return out


def chain_pubs(spec: Sequence[SliceSpec], seed: int, outputs: Sequence[int]) -> list[list[int]]:
    """Public inputs of a linked run: slice i commits c_i -> c_{i+1}; the output slice carries `outputs`."""
    c = [
        int.from_bytes(keccak256(f"commit/{seed}/{i}".encode()), "big") % BN254_R
        for i in range(len(spec) + 1)
    ]
    out: list[list[int]] = []
    for i, s in enumerate(spec):
        if not s.proven:
            out.append([])
            continue
        p = [0] * s.public_input_count
        p[s.in_commit_index], p[s.out_commit_index] = c[i], c[i + 1]
        for k, j in enumerate(s.output_indices):
            if j not in (s.in_commit_index, s.out_commit_index):
                p[j] = outputs[k]
        out.append(p)
    return out


def _stmts(spec: Sequence[SliceSpec], pubs: Sequence[Sequence[int]]) -> list[bytes]:
    return [statement_hash(s.scheme, s.vk_hash, p) for s, p in zip(spec, pubs, strict=True) if s.proven]


def test_receipt_check_accepts_and_refuses_like_the_contract() -> None:
    reg = ToyRegistry()
    pubs = chain_pubs(THREE, 1, [7, 8, 9])
    agg = reg.post(2, [keccak256(b"filler"), *_stmts(THREE, pubs)])
    proofs = reg.proofs(THREE, pubs, agg)
    r = verify_inference(THREE, proofs, 0, reg.included)
    assert r.output == (7, 8, 9) and r.output_slice == 2 and r.fully_proven and r.proven_mask == 0b111
    assert [(s.first, s.last, s.in_commit, s.out_commit) for s in r.segments] == [
        (0, 2, pubs[0][0], pubs[2][1])
    ]
    assert r.kinds == (2, 2, 2)
    assert r.inference_hash == keccak256(INFERENCE_TAG + model_id(THREE) + b"".join(_stmts(THREE, pubs)))
    assert verify_inference(THREE, proofs, 2, reg.included) == r

    def refused(proofs_: Sequence[SliceProof], kind: int = 0) -> tuple[Any, ...]:
        with pytest.raises(InferenceError) as e:
            verify_inference(THREE, proofs_, kind, reg.included)
        return (e.value.error, *e.value.args_)

    assert refused(proofs, 1) == ("SliceWrongKind", 0, 1, 2)
    assert refused(proofs, 3) == ("InvalidRequiredKind", 3)
    assert refused(proofs[:2]) == ("SliceCountMismatch", 3, 2)
    assert refused([proofs[1], proofs[0], proofs[2]])[:2] == ("SliceNotIncluded", 0)
    # slice 1 proven on another input (its statement is included): the link to slice 0 breaks
    other = list(pubs[1])
    other[0] += 1
    agg2 = reg.post(2, [statement_hash(2, THREE[1].vk_hash, other)])
    assert refused([proofs[0], SliceProof(tuple(other), agg2, (), 1, 0), proofs[2]]) == (
        "BrokenLink",
        1,
        pubs[0][1],
        other[0],
    )
    # a claimed output the last slice did not produce
    forged = list(pubs[2])
    forged[3] += 1
    assert refused([*proofs[:2], dataclasses.replace(proofs[2], public_inputs=tuple(forged))])[:2] == (
        "SliceNotIncluded",
        2,
    )
    assert refused([*proofs[:2], dataclasses.replace(proofs[2], public_inputs=(1, 2))]) == (
        "PublicInputCountMismatch",
        2,
        5,
        2,
    )
    big = list(pubs[0])
    big[1] = BN254_R
    assert refused([dataclasses.replace(proofs[0], public_inputs=tuple(big)), *proofs[1:]]) == (
        "NonCanonicalPublicInput",
        0,
        1,
    )


def test_receipt_check_partial_model_segments() -> None:
    reg = ToyRegistry()
    pubs = chain_pubs(PARTIAL, 2, [])
    # across the unproven slice 1 the commitments need not match: slice 2 starts a new segment
    pubs[2][0] = 12345
    agg = reg.post(1, _stmts(PARTIAL, pubs))
    proofs = reg.proofs(PARTIAL, pubs, agg)
    r = verify_inference(PARTIAL, proofs, 1, reg.included)
    assert [(s.first, s.last) for s in r.segments] == [(0, 0), (2, 3)]
    assert r.segments[1].in_commit == 12345 and not r.fully_proven and r.proven_mask == 0b01101
    assert r.output == (pubs[3][1],) and r.output_slice == 3 and r.kinds == (1, 0, 1, 1, 0)
    with pytest.raises(InferenceError) as e:
        verify_inference(PARTIAL, [*proofs[:4], SliceProof(aggregation_id=1)], 0, reg.included)
    assert (e.value.error, *e.value.args_) == ("UnprovenSliceHasProof", 4)


# ---------------------------------------------------------------------------- on a real anvil

DOMAIN = 1


def _spec_arg(spec: Sequence[SliceSpec]) -> list[Any]:
    return [s.abi() for s in spec]


def _proofs_arg(proofs: Sequence[SliceProof]) -> list[Any]:
    return [p.abi() for p in proofs]


def reverts_contain(fn: Any, error_sig: str) -> bool:
    return "0x" + keccak256(error_sig.encode())[:4].hex() in _revert_data(fn)


def _revert_data(fn: Any) -> str:
    with pytest.raises((ContractCustomError, ContractLogicError)) as e:
        fn.call()
    return str(getattr(e.value, "data", None) or e.value).lower()


@dataclasses.dataclass
class Chain:
    w3: Web3
    owner: LocalAccount
    arts: dict[str, Artifact]
    reg: Contract
    inf: Contract
    operator_keys: list[str]

    def contract(self, name: str, args: Sequence[Any]) -> Contract:
        sent = deploy_contract(self.w3, self.owner, self.arts[name], list(args))
        assert sent.contract_address
        return self.w3.eth.contract(
            address=Web3.to_checksum_address(sent.contract_address), abi=self.arts[name].abi
        )

    def attest(self, leaves: list[bytes]) -> int:
        agg_id = int(self.reg.functions.nextAggregationId(DOMAIN).call())
        root = merkle_root(leaves)
        dl = int(self.w3.eth.get_block("latest")["timestamp"]) + 600
        agg = Aggregation(DOMAIN, agg_id, root, len(leaves), dl)
        sigs = sign_aggregation(agg, int(self.w3.eth.chain_id), self.reg.address, self.operator_keys)
        fn = self.reg.functions.submitAttestedAggregation(
            DOMAIN, agg_id, root, len(leaves), dl, [x.signature for x in sigs]
        )
        transact(self.w3, self.owner, fn, "submitAttestedAggregation")
        return agg_id

    def included(self, agg_id: int, leaf: bytes, path: Sequence[bytes], leaf_count: int, index: int) -> int:
        ok, kind = self.reg.functions.verifyProofAggregationKind(
            DOMAIN, agg_id, leaf, list(path), leaf_count, index
        ).call()
        return int(kind) if ok else 0

    def post(self, spec: Sequence[SliceSpec], pubs: Sequence[Sequence[int]]) -> list[SliceProof]:
        leaves = [keccak256(b"filler/%d" % len(spec)), *_stmts(spec, pubs)]
        agg_id = self.attest(leaves)
        out = []
        for s, p in zip(spec, pubs, strict=True):
            if not s.proven:
                out.append(SliceProof())
                continue
            i = leaves.index(statement_hash(s.scheme, s.vk_hash, p))
            out.append(SliceProof(tuple(p), agg_id, merkle_path(leaves, i).path, len(leaves), i))
        return out


@pytest.fixture(scope="module")
def chain(w3: Web3, owner: LocalAccount, artifacts: dict[str, Artifact]) -> Chain:
    keys = [ANVIL_DEV_KEYS[1], ANVIL_DEV_KEYS[2]]
    sent = deploy_contract(w3, owner, artifacts["SheafRegistry"], [owner.address])
    assert sent.contract_address
    reg = w3.eth.contract(
        address=Web3.to_checksum_address(sent.contract_address), abi=artifacts["SheafRegistry"].abi
    )
    configure_registry(
        w3,
        owner,
        reg,
        domains=[(DOMAIN, "")],
        operators=[Account.from_key(k).address for k in keys],
        threshold=2,
    )
    c = Chain(w3, owner, artifacts, reg, reg, keys)
    c.inf = c.contract("SheafInference", [reg.address])
    return c


def test_onchain_model_ids_and_registration_checks_are_the_specs(chain: Chain) -> None:
    for case in json.loads(VECTORS.read_text())["cases"]:
        spec = [SliceSpec.from_json(s) for s in case["slices"]]
        assert "0x" + chain.inf.functions.modelIdOf(_spec_arg(spec)).call().hex() == case["model_id"], case[
            "name"
        ]
        fn = chain.inf.functions.validateModel(_spec_arg(spec))
        if case["valid"]:
            assert list(fn.call()) == [case["output_slice"], case["segment_count"], case["proven_mask"]]
        else:
            assert case["revert_data"][2:] in _revert_data(fn), case["name"]


def _check_result(onchain: Any, r: Any) -> None:
    h, output, output_slice, mask, full, segments, kinds = onchain
    assert h == r.inference_hash
    assert tuple(output) == r.output and output_slice == r.output_slice and mask == r.proven_mask
    assert full == r.fully_proven and tuple(kinds) == r.kinds
    assert [tuple(s) for s in segments] == [(s.first, s.last, s.in_commit, s.out_commit) for s in r.segments]


GAS: dict[str, int] = {}


@pytest.mark.parametrize("name", ["three", "eight", "partial"])
def test_onchain_verify_inference_is_the_receipt_check_and_its_gas(chain: Chain, name: str) -> None:
    w3, owner = chain.w3, chain.owner
    spec = {"three": THREE, "eight": EIGHT, "partial": PARTIAL}[name]
    n_out = len(spec[-1].output_indices) if spec[-1].proven else 1
    pubs = chain_pubs(spec, 10 + len(spec), [100 + k for k in range(n_out)])
    reg_tx = transact(w3, owner, chain.inf.functions.registerModel(_spec_arg(spec)), "registerModel")
    mid = model_id(spec)
    logs = chain.inf.events.ModelRegistered().process_receipt(reg_tx.receipt)
    assert [(x.args.modelId, x.args.registrant) for x in logs] == [(mid, owner.address)]
    assert reverts_contain(
        chain.inf.functions.registerModel(_spec_arg(spec)), "ModelAlreadyRegistered(bytes32)"
    )

    proofs = chain.post(spec, pubs)
    r = verify_inference(spec, proofs, 2, chain.included)  # the spec, asking the chain's registry
    call = chain.inf.functions.verifyInference(mid, DOMAIN, 2, _proofs_arg(proofs))
    _check_result(call.call(), r)

    # refusals carry the spec's revert data
    def same_refusal(bad: list[SliceProof], kind: int = 2) -> None:
        with pytest.raises(InferenceError) as e:
            verify_inference(spec, bad, kind, chain.included)
        fn = chain.inf.functions.verifyInference(mid, DOMAIN, kind, _proofs_arg(bad))
        assert e.value.revert_data().hex() in _revert_data(fn), e.value

    same_refusal(proofs, 1)  # an app demanding RECURSIVE
    same_refusal(proofs[:-1])
    last = len(spec) - 1 if spec[-1].proven else len(spec) - 2
    forged = list(proofs[last].public_inputs)
    forged[-1] = (forged[-1] + 1) % BN254_R
    same_refusal(
        [*proofs[:last], dataclasses.replace(proofs[last], public_inputs=tuple(forged)), *proofs[last + 1 :]]
    )
    same_refusal([proofs[2], proofs[1], proofs[0], *proofs[3:]])

    # gas, from receipts: the view as a transaction, the app pattern, and one ExampleConsumer per slice
    data = bytes.fromhex(chain.inf.encode_abi("verifyInference", [mid, DOMAIN, 2, _proofs_arg(proofs)])[2:])
    view_gas = call_tx_gas(w3, owner, chain.inf.address, data, "verifyInference")
    app = chain.contract("ExampleInferenceConsumer", [chain.inf.address, mid, DOMAIN, 2, name != "partial"])
    claimed_in, claimed = r.segments[0].in_commit, list(r.output)
    assert reverts_contain(
        app.functions.acceptInference(claimed_in + 1, claimed, _proofs_arg(proofs)),
        "InputMismatch(uint256,uint256)",
    )
    accepted = transact(
        w3, owner, app.functions.acceptInference(claimed_in, claimed, _proofs_arg(proofs)), "acceptInference"
    )
    ev = app.events.InferenceAccepted().process_receipt(accepted.receipt)
    assert [(x.args.inferenceHash, x.args.inputCommitment, tuple(x.args.output)) for x in ev] == [
        (r.inference_hash, claimed_in, r.output)
    ]
    assert app.functions.accepted(r.inference_hash).call() is True
    per_slice = 0
    for s, p in zip(spec, proofs, strict=True):
        if not s.proven:
            continue
        consumer = chain.contract("ExampleConsumer", [chain.reg.address, DOMAIN, 2, s.scheme, s.vk_hash])
        fn = consumer.functions.acceptResult(
            list(p.public_inputs), p.aggregation_id, list(p.merkle_path), p.leaf_count, p.index
        )
        per_slice += transact(w3, owner, fn, "acceptResult").gas_used
    n_proven = bin(r.proven_mask).count("1")
    GAS.update(
        {
            f"{name}: slices / proven": len(spec) * 100 + n_proven,
            f"{name}: registerModel tx": reg_tx.gas_used,
            f"{name}: verifyInference tx": view_gas,
            f"{name}: verifyInference execution": exec_gas(view_gas, data),
            f"{name}: acceptInference tx": accepted.gas_used,
            f"{name}: {n_proven} x acceptResult txs": per_slice,
        }
    )
    print(json.dumps({k: v for k, v in GAS.items() if k.startswith(name + ":")}, indent=1))
    # one call for the whole model is cheaper than one transaction per proven slice
    assert accepted.gas_used < per_slice


def random_spec(rng: random.Random) -> list[SliceSpec]:
    """1..8 slices, random proven pattern (>= 1), schemes, counts, commitment and output positions."""
    n = rng.randint(1, 8)
    proven = [rng.random() < 0.7 for _ in range(n)]
    if not any(proven):
        proven[rng.randrange(n)] = True
    last = max(i for i in range(n) if proven[i])
    spec = []
    for i in range(n):
        if not proven[i]:
            spec.append(U)
            continue
        count = rng.randint(2, 5)
        in_i, out_i = rng.sample(range(count), 2)
        outs = tuple(sorted(rng.sample(range(count), rng.randint(1, count)))) if i == last else ()
        v = keccak256(b"random-vk/%d" % rng.getrandbits(64))
        spec.append(SliceSpec(True, rng.randint(1, 3), v, count, in_i, out_i, outs))
    return spec


def test_onchain_random_models_agree_with_the_spec(chain: Chain) -> None:
    """Random models and runs: on-chain result == spec result; a random tamper: same revert data."""
    rng = random.Random(17)
    for _ in range(12):
        spec = random_spec(rng)
        validate_model(spec)
        transact(chain.w3, chain.owner, chain.inf.functions.registerModel(_spec_arg(spec)), "registerModel")
        pubs = [[rng.randrange(BN254_R) for _ in range(s.public_input_count)] for s in spec]
        for i in range(1, len(spec)):  # link adjacent proven slices
            if spec[i].proven and spec[i - 1].proven:
                pubs[i][spec[i].in_commit_index] = pubs[i - 1][spec[i - 1].out_commit_index]
        proofs = chain.post(spec, pubs)
        kind = rng.choice([0, 2])
        r = verify_inference(spec, proofs, kind, chain.included)
        _check_result(
            chain.inf.functions.verifyInference(model_id(spec), DOMAIN, kind, _proofs_arg(proofs)).call(), r
        )
        # tamper one public input of one proven slice
        i = rng.choice([k for k, s in enumerate(spec) if s.proven])
        bad_pubs = list(proofs[i].public_inputs)
        j = rng.randrange(len(bad_pubs))
        bad_pubs[j] = rng.randrange(BN254_R)
        bad = [*proofs[:i], dataclasses.replace(proofs[i], public_inputs=tuple(bad_pubs)), *proofs[i + 1 :]]
        with pytest.raises(InferenceError) as e:
            verify_inference(spec, bad, kind, chain.included)
        assert e.value.error == "SliceNotIncluded" and e.value.args_[0] == i
        fn = chain.inf.functions.verifyInference(model_id(spec), DOMAIN, kind, _proofs_arg(bad))
        assert e.value.revert_data().hex() in _revert_data(fn)


def test_spec_error_table_is_the_contracts(artifacts: dict[str, Artifact]) -> None:
    """Every custom error of SheafInference (but its constructor's ZeroAddress) is in ERROR_SIGNATURES."""
    sigs = {
        f"{e['name']}({','.join(i['type'] for i in e['inputs'])})"
        for e in artifacts["SheafInference"].abi
        if e["type"] == "error"
    }
    # StatementHash's errors cannot fire here: the public inputs are checked first, the version is 1
    assert sigs - {"ZeroAddress()", "NonCanonicalPublicInput(uint256)", "InvalidEnvelopeVersion()"} == set(
        ERROR_SIGNATURES.values()
    )
    assert all(ERROR_SIGNATURES[name].startswith(name + "(") for name in ERROR_SIGNATURES)


if __name__ == "__main__":
    VECTORS.write_text(render())
    print(f"wrote {VECTORS.relative_to(REPO)}")
