"""Whole inference end to end over real gRPC and anvil: three real chained Groth16 slice proofs submitted
as one inference with the SDK, attested by 2 of 3 operator processes, posted to the real registry;
the receipt checked off-chain by the SDK (inclusion asked from the deployed registry) and by the
spec, accepted on-chain by SheafInference.verifyInference and ExampleInferenceConsumer (gas
printed with -s), and every refusal the issue lists refused by the SDK, the spec and the chain alike
(the slices of the bad variants are genuinely proven and aggregated)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sheaf_client as sc
from agg_helpers import OPERATOR_KEYS, OWNER_KEY, ChainEnv, registry_artifact, start_operator, stop_process
from agg_inference_helpers import INPUT, OUTPUT, Chain, chain
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractCustomError

from aggregator.app import App
from deploy.chain import deploy_contract, transact
from deploy.compile import compile_contracts
from sheaf import inference as spec
from sheaf.hashing import keccak256


@pytest.fixture(scope="module")
def ch() -> Chain:
    return chain()


def _sdk_model(ch: Chain) -> list[sc.SliceSpec]:
    return [
        sc.SliceSpec(
            s.proven,
            s.scheme,
            "0x" + s.vk_hash.hex(),
            s.public_input_count,
            s.in_commit_index,
            s.out_commit_index,
            s.output_indices,
        )
        for s in ch.model
    ]


def _in(ch: Chain, name: str) -> sc.SliceInput:
    p = ch.proofs[name]
    return sc.SliceInput(p.format, p.proof, vk=p.vk, public=p.public)


def _pubs(ch: Chain, name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in json.loads(ch.proofs[name].public or b"[]"))


def _as_slice(inc: sc.InclusionProof, pubs: tuple[int, ...]) -> sc.ReceiptSlice:
    return sc.ReceiptSlice(
        True,
        inc.proof_id,
        pubs,
        inc.aggregation_id,
        inc.merkle_path,
        inc.leaf_count,
        inc.index,
        inc.kind,
        inc.leaf,
        inc.root,
    )


def _spec_proofs(slices: Sequence[sc.ReceiptSlice]) -> list[spec.SliceProof]:
    return [
        spec.SliceProof(
            s.public_inputs,
            s.aggregation_id,
            tuple(bytes.fromhex(p[2:]) for p in s.merkle_path),
            s.leaf_count,
            s.index,
        )
        for s in slices
    ]


async def test_whole_inference_end_to_end(app: App, chain_env: ChainEnv, ch: Chain, tmp_path: Path) -> None:
    target = f"127.0.0.1:{app.grpc.port}"
    w3 = Web3(Web3.HTTPProvider(chain_env.node.rpc_url))
    acct = Account.from_key(OWNER_KEY)
    arts = compile_contracts()
    inf_addr = deploy_contract(w3, acct, arts["SheafInference"], [chain_env.registry]).contract_address
    assert inf_addr is not None
    inf = w3.eth.contract(address=Web3.to_checksum_address(inf_addr), abi=arts["SheafInference"].abi)
    reg = w3.eth.contract(address=Web3.to_checksum_address(chain_env.registry), abi=registry_artifact()[0])
    mid = spec.model_id(ch.model)
    transact(w3, acct, inf.functions.registerModel([s.abi() for s in ch.model]), "registerModel")
    domain = app.cfg.default_domain
    consumer_addr = deploy_contract(
        w3, acct, arts["ExampleInferenceConsumer"], [inf.address, mid, domain, 2, True]
    ).contract_address
    assert consumer_addr is not None
    consumer = w3.eth.contract(address=consumer_addr, abi=arts["ExampleInferenceConsumer"].abi)

    ops = [
        start_operator(target, k, tmp_path / f"op{i}.log", chain_env.registry)
        for i, k in enumerate(OPERATOR_KEYS[:2])
    ]
    try:
        async with sc.AsyncClient(target) as c:
            model = _sdk_model(ch)
            assert await c.register_model(model) == "0x" + mid.hex()
            sub = await c.submit_inference("0x" + mid.hex(), [_in(ch, "s0"), _in(ch, "s1"), _in(ch, "s2")])
            # the bad variants' slices, genuinely proven and aggregated on their own (SubmitProof)
            others = {
                n: await c.submit(
                    "groth16", "snarkjs", ch.proofs[n].proof, vk=ch.proofs[n].vk, public=ch.proofs[n].public
                )
                for n in ("s1_other_input", "s1_other_model")
            }
            st = await c.wait_inference(sub.inference_id, timeout=180)
            assert st.status is sc.ProofStatus.FINALIZED, st
            assert all(u is not None and u.status is sc.ProofStatus.FINALIZED for u in st.slices)
            receipt = await c.get_inference_receipt(sub.inference_id)
            extra = {}
            for n, r in others.items():
                assert (await c.wait(r.proof_id, timeout=180)).status is sc.ProofStatus.FINALIZED
                extra[n] = _as_slice(await c.inclusion(r.proof_id), _pubs(ch, n))
    finally:
        for p in ops:
            stop_process(p)

    assert receipt.model_id == "0x" + mid.hex() and receipt.inference_hash == sub.inference_hash
    assert receipt.output == (OUTPUT,) and receipt.input_commitment == INPUT and receipt.output_slice == 2
    assert [s.proof_id for s in receipt.slices] == list(sub.proof_ids)
    assert all(s.kind is sc.AggregationKind.ATTESTED for s in receipt.slices)

    def on_chain(agg: int, leaf: bytes, path: Sequence[bytes], n: int, index: int) -> int:
        ok, kind = reg.functions.verifyProofAggregationKind(domain, agg, leaf, list(path), n, index).call()
        return int(kind) if ok else 0

    # the SDK, asking the deployed registry for inclusion; the spec; the contract: one answer
    got = sc.verify_receipt(
        model, receipt, required_kind=2, input_commitment=INPUT, expected_output=[OUTPUT], included=on_chain
    )
    assert got.inference_hash == receipt.inference_hash and got.output == (OUTPUT,) and got.fully_proven
    ref = spec.verify_inference(ch.model, _spec_proofs(receipt.slices), 2, on_chain)
    assert "0x" + ref.inference_hash.hex() == got.inference_hash and ref.kinds == got.kinds == (2, 2, 2)
    res = inf.functions.verifyInference(mid, domain, 2, receipt.proofs_abi()).call()
    assert res[0] == ref.inference_hash and tuple(res[1]) == (OUTPUT,) and res[4] is True

    # the app: accepted once, with its gas; a replay refused
    fn = consumer.functions.acceptInference(INPUT, [OUTPUT], receipt.proofs_abi())
    sent = transact(w3, acct, fn, "acceptInference")
    direct = sent.gas_used
    print(f"\nacceptInference (3 slices, attested): {direct} gas")
    with pytest.raises(ContractCustomError) as e:
        consumer.functions.acceptInference(INPUT, [OUTPUT], receipt.proofs_abi()).call()
    assert _selector("AlreadyAccepted(bytes32)") in str(e.value)

    s = list(receipt.slices)
    cases: list[tuple[str, Callable[[], Any], str]] = [
        ("broken link", lambda: replace(receipt, slices=(s[0], extra["s1_other_input"], s[2])), "BrokenLink"),
        ("missing slice", lambda: replace(receipt, slices=(s[0], s[1])), "SliceCountMismatch"),
        (
            "slice of another model",
            lambda: replace(receipt, slices=(s[0], extra["s1_other_model"], s[2])),
            "SliceNotIncluded",
        ),
        ("reordered slices", lambda: replace(receipt, slices=(s[1], s[0], s[2])), "SliceNotIncluded"),
        (
            "claimed output the last slice did not produce",
            lambda: replace(receipt, slices=(s[0], s[1], replace(s[2], public_inputs=(120, 30)))),
            "SliceNotIncluded",
        ),
    ]
    for what, bad, name in cases:
        r = bad()
        with pytest.raises(sc.InferenceError) as ee:
            sc.verify_receipt(model, r, required_kind=2, included=on_chain)
        assert ee.value.error == name, what
        with pytest.raises(spec.InferenceError) as se:
            spec.verify_inference(ch.model, _spec_proofs(r.slices), 2, on_chain)
        assert se.value.error == name and se.value.args_ == ee.value.args_, what
        with pytest.raises(ContractCustomError) as ce:
            inf.functions.verifyInference(mid, domain, 2, r.proofs_abi()).call()
        assert ce.value.data == "0x" + se.value.revert_data().hex(), what
    assert _err(
        lambda: sc.verify_receipt(
            model, replace(receipt, slices=(s[0], extra["s1_other_input"], s[2])), included=on_chain
        )
    ).args_ == (1, 15, 16)
    # a kind the app refuses; another input; another claimed output: refused by the SDK and the app
    assert _err(lambda: sc.verify_receipt(model, receipt, required_kind=1, included=on_chain)).args_ == (
        0,
        1,
        2,
    )
    assert _err(lambda: sc.verify_receipt(model, receipt, input_commitment=4)).error == "InputMismatch"
    assert _err(lambda: sc.verify_receipt(model, receipt, expected_output=[120])).args_ == (0, 120, OUTPUT)
    for args, err in (
        ((4, [OUTPUT]), "InputMismatch(uint256,uint256)"),
        ((INPUT, [120]), "OutputMismatch(uint256,uint256,uint256)"),
    ):
        with pytest.raises(ContractCustomError) as e:
            consumer.functions.acceptInference(*args, receipt.proofs_abi()).call()
        assert _selector(err) in str(e.value)


def _err(fn: Callable[[], Any]) -> sc.InferenceError:
    with pytest.raises(sc.InferenceError) as e:
        fn()
    return e.value


def _selector(sig: str) -> str:
    return "0x" + keccak256(sig.encode())[:4].hex()
