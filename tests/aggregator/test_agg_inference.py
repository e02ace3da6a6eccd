"""Whole inferences in the aggregator over real gRPC (and HTTP), real chained Groth16 proofs
(agg_inference_helpers), one anvil + registry for the module:

- model registration (id = the spec's, = SheafInference.modelIdOf), SubmitInference refusals with
  their stable codes before anything is stored, one id and one status, idempotent resubmission;
- end to end: three slices submitted as one inference with the SDK, attested by 2 of 3 operator
  processes, posted to the registry; the receipt checked off-chain by the SDK (inclusion asked from
  the deployed registry) and by the spec, accepted on-chain by SheafInference.verifyInference and
  ExampleInferenceConsumer (gas printed with -s), and every refusal the issue lists refused by the
  SDK, the spec and the chain alike (the bad variants' slices are genuinely proven and aggregated)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sheaf_client as sc
from agg_helpers import OPERATOR_KEYS, OWNER_KEY, ChainEnv, registry_artifact, start_operator, stop_process
from agg_inference_helpers import INPUT, OUTPUT, Chain, chain
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractCustomError

from aggregator.app import App
from aggregator.inference import error_code
from aggregator.records import NewProof
from deploy.chain import deploy_contract, transact
from deploy.compile import compile_contracts
from sheaf import inference as spec
from sheaf.hashing import keccak256


@pytest.fixture(scope="module")
def ch() -> Chain:
    return chain()


def _sdk_spec(s: spec.SliceSpec) -> sc.SliceSpec:
    return sc.SliceSpec(
        s.proven,
        s.scheme,
        "0x" + s.vk_hash.hex(),
        s.public_input_count,
        s.in_commit_index,
        s.out_commit_index,
        s.output_indices,
    )


def _in(ch: Chain, name: str) -> sc.SliceInput:
    p = ch.proofs[name]
    return sc.SliceInput(p.format, p.proof, vk=p.vk, public=p.public)


async def _refused(
    c: sc.AsyncClient, mid: str, slices: list[sc.SliceInput | None], **kw: object
) -> sc.SheafError:
    with pytest.raises(sc.SheafError) as e:
        await c.submit_inference(mid, slices, **kw)  # type: ignore[arg-type]
    return e.value


async def test_model_registration_grpc_and_http(app: App, ch: Chain) -> None:
    model = [_sdk_spec(s) for s in ch.model]
    expect = "0x" + spec.model_id(ch.model).hex()
    async with sc.AsyncClient(f"127.0.0.1:{app.grpc.port}", retry=sc.NO_RETRY) as c:
        assert sc.model_id(model) == expect  # the SDK's own id
        assert await c.register_model(model) == expect
        assert await c.register_model(model) == expect  # idempotent
        assert await c.model(expect) == tuple(model)
        # a partial model: an unproven slice round-trips with an all-zero vk hash
        partial = [model[0], sc.SliceSpec.unproven(), model[2]]
        pid = await c.register_model(partial)
        assert pid == sc.model_id(partial) != expect
        assert await c.model(pid) == tuple(partial)
        # invalid specs: the contract's error as a code, naming the slice
        no_output = [model[0], model[1], replace(model[2], output_indices=())]
        with pytest.raises(sc.SheafError) as e:
            await c.register_model(no_output)
        assert (e.value.code, e.value.field) == ("NO_OUTPUT", "slices[2]")
        with pytest.raises(sc.SheafError) as e:
            await c.register_model([replace(model[0], scheme=7)])
        assert (e.value.code, e.value.field) == ("INVALID_SCHEME", "slices[0]")
        with pytest.raises(sc.SheafError) as e:
            await c.register_model([])
        assert e.value.code == "NO_SLICES"
        with pytest.raises(sc.SheafError) as e:
            await c.model("0x" + "11" * 32)
        assert e.value.code == "UNKNOWN_MODEL"
    # HTTP: the same id for the same spec (JSON form of tests/vectors/model_id.json)
    body = {"slices": [s.to_json() for s in ch.model]}
    async with aiohttp.ClientSession() as s:
        url = f"http://127.0.0.1:{app.http.port}/v1/models"
        async with s.post(url, json=body) as r:
            assert r.status == 200, await r.text()
            got = await r.json()
        assert got == {"model_id": expect, "duplicate": True}
        async with s.get(f"{url}/{expect}") as r:
            assert (await r.json())["slices"] == body["slices"]
        bad = {"slices": [dict(body["slices"][0], in_commit_index=0, out_commit_index=0)]}
        async with s.post(url, json=bad) as r:
            assert r.status == 400
            assert (await r.json())["error"]["code"] == "SAME_IN_OUT_COMMIT"


async def test_submit_inference_refusals_then_one_unit(app: App, ch: Chain) -> None:
    mid = await _register(app, ch)
    s0, s1, s2 = (_in(ch, n) for n in ("s0", "s1", "s2"))
    async with sc.AsyncClient(f"127.0.0.1:{app.grpc.port}", retry=sc.NO_RETRY) as c:
        cases: list[tuple[str, list[sc.SliceInput | None], dict[str, object], str, str]] = [
            ("missing slice (short)", [s0, s1], {}, "SLICE_COUNT_MISMATCH", "slices"),
            ("missing slice (empty entry)", [s0, None, s2], {}, "MISSING_SLICE", "slices[1]"),
            (
                "slice of another model",
                [s0, _in(ch, "s1_other_model"), s2],
                {},
                "SLICE_VK_MISMATCH",
                "slices[1].vk",
            ),
            ("reordered slices", [s1, s0, s2], {}, "SLICE_VK_MISMATCH", "slices[0].vk"),
            (
                "slice proven on another input",
                [s0, _in(ch, "s1_other_input"), s2],
                {},
                "BROKEN_LINK",
                "slices[1]",
            ),
            (
                "inference on another input",
                [_in(ch, "s0_other_input"), s1, s2],
                {},
                "BROKEN_LINK",
                "slices[1]",
            ),
            ("kind the app refuses", [s0, s1, s2], {"required_kind": 1}, "SLICE_WRONG_KIND", "slices[0]"),
            (
                "another scheme",
                [replace(s0, scheme="plonk"), s1, s2],
                {},
                "SLICE_SCHEME_MISMATCH",
                "slices[0].scheme",
            ),
            ("another domain", [s0, s1, s2], {"domain_id": 2**63}, "MALFORMED", "slices[0].domain_id"),
            ("bad proof", [replace(s0, proof=ch.proofs["s2"].proof), s1, s2], {}, "", "slices[0]"),
        ]
        for what, slices, kw, code, field in cases:
            err = await _refused(c, mid, slices, **kw)
            if code:
                assert (err.code, err.field) == (code, field), what
            else:  # the normalizer's own code, scoped to the slice
                assert err.field.startswith(field), (what, err)
        err = await _refused(c, "0x" + "22" * 32, [s0, s1, s2])
        assert err.code == "UNKNOWN_MODEL"
        # nothing of a refused inference was stored
        for n in ("s0", "s1_other_model", "s1_other_input", "s0_other_input"):
            pubs = [int(x) for x in json.loads(ch.proofs[n].public or b"[]")]
            sh = sc.statement_hash(1, ch.vk_hash["b" if n == "s1_other_input" else "a"], pubs)
            with pytest.raises(sc.SheafError) as e:
                await c.status(f"{app.cfg.default_domain}-{sh[2:]}")
            assert e.value.code == "UNKNOWN_PROOF", n
        # a slice stored before under another kind than the one required is refused, not re-routed:
        # slice 1's statement already in the store as a RECURSIVE proof (through the Store protocol)
        p1 = ch.proofs["s1"]
        stmt1 = spec.statement_hash(1, ch.vk_hash["b"], [int(x) for x in json.loads(p1.public or b"")])
        db = app.service.db
        old = NewProof(
            app.cfg.default_domain,
            stmt1,
            ch.vk_hash["b"],
            "recursive",
            "groth16",
            "snarkjs",
            p1.proof,
            p1.vk,
            p1.public,
            None,
        )
        await db.run(db.store.insert_proofs, [old])
        err = await _refused(c, mid, [s0, s1, s2], required_kind=2)
        assert (err.code, err.field) == ("SLICE_WRONG_KIND", "slices[1]")

        # the honest inference: one id (the on-chain inference hash), one status, every slice queued
        def submitted(result: str) -> float:
            return app.metrics.counter_value("sheaf_submissions_total", result=result)

        before = submitted("accepted"), submitted("duplicate")
        r = await c.submit_inference(mid, [s0, s1, s2])
        # each slice counts as a submission: slices 0 and 2 are new, slice 1 was stored above
        assert (submitted("accepted") - before[0], submitted("duplicate") - before[1]) == (2, 1)
        stmts = [
            spec.statement_hash(1, ch.vk_hash[k], [int(x) for x in json.loads(ch.proofs[n].public or b"")])
            for n, k in (("s0", "a"), ("s1", "b"), ("s2", "a"))
        ]
        ih = spec.inference_hash(spec.model_id(ch.model), stmts)
        assert (
            r.inference_id == f"{app.cfg.default_domain}-{ih.hex()}" and r.inference_hash == "0x" + ih.hex()
        )
        assert not r.duplicate and r.status is sc.ProofStatus.QUEUED
        assert r.proof_ids == tuple(f"{app.cfg.default_domain}-{h.hex()}" for h in stmts)
        again = await c.submit_inference(mid, [s0, s1, s2])
        assert again.duplicate and again.inference_id == r.inference_id
        assert (submitted("accepted") - before[0], submitted("duplicate") - before[1]) == (2, 4)
        st = await c.inference_status(r.inference_id)
        assert st.model_id == mid and st.status is sc.ProofStatus.QUEUED
        assert [u.proof_id for u in st.slices if u] == list(r.proof_ids)
        with pytest.raises(sc.SheafError) as e:
            await c.get_inference_receipt(r.inference_id)
        assert e.value.code == "NOT_FINALIZED"
        with pytest.raises(sc.SheafError) as e:
            await c.inference_status("1-00")
        assert e.value.code == "UNKNOWN_INFERENCE"
    # POST /v1/inferences: the same unit over HTTP (same id), the same refusals as codes
    subs = [_json_sub(ch, n) for n in ("s0", "s1", "s2")]
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{app.http.port}/v1/inferences"
        for body, status, code, field in (
            ({"model_id": mid, "slices": subs}, 200, "", ""),
            ({"model_id": mid, "slices": [subs[0], None, subs[2]]}, 400, "MISSING_SLICE", "slices[1]"),
            (
                {"model_id": mid, "slices": [subs[1], subs[0], subs[2]]},
                400,
                "SLICE_VK_MISMATCH",
                "slices[0].vk",
            ),
            (
                {"model_id": mid, "slices": [dict(subs[0], proof="%%"), subs[1], subs[2]]},
                400,
                "MALFORMED",
                "slices[0].proof",
            ),
            ({"model_id": mid, "slices": subs, "extra": 1}, 400, "MALFORMED", "extra"),
            ({"model_id": "0x" + "33" * 32, "slices": subs}, 404, "UNKNOWN_MODEL", "model_id"),
        ):
            async with http.post(url, json=body) as resp:
                got = await resp.json()
                assert resp.status == status, got
            if status == 200:
                assert got["inference_id"] == r.inference_id and got["duplicate"] is True
                assert got["proof_ids"] == list(r.proof_ids)
            else:
                assert (got["error"]["code"], got["error"]["field"]) == (code, field)
    # the same codes as the contract's errors, where the contract has one
    assert (
        error_code("BrokenLink") == "BROKEN_LINK"
        and error_code("SliceCountMismatch") == "SLICE_COUNT_MISMATCH"
    )


def _json_sub(ch: Chain, name: str) -> dict[str, object]:
    p = ch.proofs[name]
    b64 = base64.b64encode
    return {
        "scheme": p.scheme,
        "format": p.format,
        "proof": b64(p.proof).decode(),
        "vk": b64(p.vk).decode(),
        "public": b64(p.public or b"").decode(),
    }


async def _register(app: App, ch: Chain) -> str:
    async with sc.AsyncClient(f"127.0.0.1:{app.grpc.port}") as c:
        return await c.register_model([_sdk_spec(s) for s in ch.model])


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
            model = [_sdk_spec(s) for s in ch.model]
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

    # the HTTP view of the same inference and receipt
    async with aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{app.http.port}/v1/inferences/{sub.inference_id}"
        async with http.get(base) as resp:
            assert (await resp.json())["status"] == "FINALIZED"
        async with http.get(base + "/receipt") as resp:
            hr = await resp.json()
    assert hr["inference_hash"] == receipt.inference_hash and hr["output"] == [hex(OUTPUT)]
    assert [[int(v, 16) for v in x["public_inputs"]] for x in hr["slices"]] == [
        list(x.public_inputs) for x in receipt.slices
    ]
    assert [x["merkle_path"] for x in hr["slices"]] == [list(x.merkle_path) for x in receipt.slices]
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
