"""Whole inferences in the aggregator over real gRPC (and HTTP): model registration (id = the spec's,
= SheafInference.modelIdOf), SubmitInference refusals with their stable codes before anything is
stored, one id and one status, idempotent resubmission. Real chained Groth16 proofs
(agg_inference_helpers); the on-chain end of it is test_agg_inference_e2e.py."""

from __future__ import annotations

import json
from dataclasses import replace

import aiohttp
import pytest
import sheaf_client as sc
from agg_inference_helpers import Chain, chain

from aggregator.app import App
from aggregator.inference import error_code
from sheaf import inference as spec


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
        # the honest inference: one id (the on-chain inference hash), one status, every slice queued
        r = await c.submit_inference(mid, [s0, s1, s2])
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
        st = await c.inference_status(r.inference_id)
        assert st.model_id == mid and st.status is sc.ProofStatus.QUEUED
        assert [u.proof_id for u in st.slices if u] == list(r.proof_ids)
        with pytest.raises(sc.SheafError) as e:
            await c.get_inference_receipt(r.inference_id)
        assert e.value.code == "NOT_FINALIZED"
        with pytest.raises(sc.SheafError) as e:
            await c.inference_status("1-00")
        assert e.value.code == "UNKNOWN_INFERENCE"
    # the same codes as the contract's errors, where the contract has one
    assert (
        error_code("BrokenLink") == "BROKEN_LINK"
        and error_code("SliceCountMismatch") == "SLICE_COUNT_MISMATCH"
    )


async def _register(app: App, ch: Chain) -> str:
    async with sc.AsyncClient(f"127.0.0.1:{app.grpc.port}") as c:
        return await c.register_model([_sdk_spec(s) for s in ch.model])
