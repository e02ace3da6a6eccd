"""sheaf_client against a real aggregator (in-process App, real anvil + registry, real proofs)."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import grpc
import pytest
from agg_helpers import (
    OPERATOR_KEYS,
    SUBMITTER_KEY,
    ChainEnv,
    Input,
    make_config,
    registry_artifact,
    start_operator,
    stop_process,
)
from eth_account import Account
from eth_account.messages import encode_defunct
from sheaf_client import (
    AggregationKind,
    AsyncClient,
    Client,
    InclusionProof,
    ProofStatus,
    ProverAuth,
    Retry,
    Scheme,
    SheafError,
    StatusUpdate,
    WaitTimeout,
    statement_hash,
    submission_digest,
)
from web3 import Web3

from aggregator.app import App

FAST = Retry(attempts=30, initial=0.05, max_delay=0.4)


def _sub(i: Input) -> dict[str, object]:
    return dict(scheme=i.scheme, format=i.format, proof=i.proof, vk=i.vk, public=i.public)


def _pubs(i: Input) -> list[int]:
    return [int(x) for x in json.loads(i.public or b"[]")]


async def test_submit_and_wait_finalized_typed_and_on_chain(
    target: str, g16: list[Input], operators: Any, chain_env: ChainEnv
) -> None:
    i = g16[0]
    operators.start()
    async with AsyncClient(target) as c:
        final = await c.submit_and_wait(i.scheme, i.format, i.proof, vk=i.vk, public=i.public, timeout=120)
        assert isinstance(final, StatusUpdate)
        assert final.status is ProofStatus.FINALIZED and final.terminal, final
        assert final.scheme is Scheme.GROTH16 and final.aggregation_id > 0 and final.domain_id == 1
        assert final.tx_hash is not None and len(final.tx_hash) == 66 and final.tx_hash.startswith("0x")
        assert final.vk_hash is not None
        # the statement hash computed locally equals the aggregator's leaf
        local = statement_hash(Scheme.GROTH16, final.vk_hash, _pubs(i))
        inc = await c.inclusion(final.proof_id)
        assert isinstance(inc, InclusionProof)
        assert inc.leaf == local and inc.kind is AggregationKind.ATTESTED
        assert (
            inc.aggregation_id == final.aggregation_id and inc.registry.lower() == chain_env.registry.lower()
        )
        agg = await c.aggregation(inc.aggregation_id, inc.domain_id)
        assert agg.kind is AggregationKind.ATTESTED and agg.root == inc.root and local in agg.leaves
        assert agg.leaf_count == inc.leaf_count == len(agg.leaves)
    # the receipt is what the registry takes
    w3 = Web3(Web3.HTTPProvider(chain_env.node.rpc_url))
    reg = w3.eth.contract(address=Web3.to_checksum_address(inc.registry), abi=registry_artifact()[0])
    assert reg.functions.verifyProofAggregation(*inc.registry_args()).call() is True
    bad = list(inc.registry_args())
    bad[2] = "0x" + "11" * 32
    assert reg.functions.verifyProofAggregation(*bad).call() is False


async def test_sync_and_async_give_equal_results(target: str, g16: list[Input], operators: Any) -> None:
    i = g16[1]
    async with AsyncClient(target) as ac:
        a = await ac.submit(**_sub(i))  # type: ignore[arg-type]
        with Client(target) as sc:
            s = await asyncio.to_thread(sc.submit, **_sub(i))
            assert s.duplicate and not a.duplicate
            assert (s.proof_id, s.statement_hash) == (a.proof_id, a.statement_hash)
            operators.start()
            fin_s = await asyncio.to_thread(sc.wait, a.proof_id, timeout=120)
            fin_a = await ac.wait(a.proof_id, timeout=120)
            assert fin_s == fin_a and fin_a.status is ProofStatus.FINALIZED
            assert await asyncio.to_thread(sc.status, a.proof_id) == await ac.status(a.proof_id)
            inc_s = await asyncio.to_thread(sc.inclusion, a.proof_id)
            assert inc_s == await ac.inclusion(a.proof_id)
            agg_s = await asyncio.to_thread(sc.aggregation, inc_s.aggregation_id)
            assert agg_s == await ac.aggregation(inc_s.aggregation_id)
            hist_s = await asyncio.to_thread(lambda: list(sc.watch(a.proof_id, replay=True)))
            hist_a = [u async for u in ac.watch(a.proof_id, replay=True)]
            assert hist_s == hist_a and hist_a[-1].status is ProofStatus.FINALIZED
            assert [u.status for u in hist_a][:1] == [ProofStatus.RECEIVED]
            with pytest.raises(SheafError) as es:
                await asyncio.to_thread(sc.status, "1-" + "00" * 32)
            with pytest.raises(SheafError) as ea:
                await ac.status("1-" + "00" * 32)
            assert (es.value.status, es.value.code) == (ea.value.status, ea.value.code)
            assert es.value.status == grpc.StatusCode.NOT_FOUND and es.value.code


async def test_errors_carry_codes_and_are_not_retried(target: str, g16: list[Input]) -> None:
    i = g16[0]
    retries: list[SheafError] = []
    async with AsyncClient(target, retry=FAST, on_retry=lambda e, n, d: retries.append(e)) as c:
        with pytest.raises(SheafError) as e:  # a real proof against other public inputs
            await c.submit(i.scheme, i.format, i.proof, vk=i.vk, public=b'["1"]')
        assert (e.value.status, e.value.code) == (grpc.StatusCode.INVALID_ARGUMENT, "VERIFICATION_FAILED")
        assert not e.value.retryable
        with pytest.raises(SheafError) as e:
            await c.submit(i.scheme, i.format, b"%%% not json", vk=i.vk, public=i.public)
        assert (e.value.code, e.value.field) == ("MALFORMED", "proof") and e.value.message
        with pytest.raises(SheafError) as e:
            await c.inclusion("1-" + "ab" * 32)
        assert e.value.status == grpc.StatusCode.NOT_FOUND
        r = await c.submit(**_sub(i))  # type: ignore[arg-type]
        with pytest.raises(SheafError) as e:  # not finalized yet (no operators run here)
            await c.inclusion(r.proof_id)
        assert e.value.code == "NOT_FINALIZED"
    assert retries == []  # INVALID_ARGUMENT / NOT_FOUND are final


async def test_watch_without_replay_gets_only_new_events(
    target: str, g16: list[Input], operators: Any
) -> None:
    i = g16[2]
    async with AsyncClient(target) as c:
        r = await c.submit(**_sub(i))  # type: ignore[arg-type]
        # no operators yet: the proof settles in a batch awaiting attestation
        for _ in range(100):
            cur = await c.status(r.proof_id)
            if cur.status is ProofStatus.AGGREGATING:
                break
            await asyncio.sleep(0.1)
        assert cur.status is ProofStatus.AGGREGATING, cur
        history = []
        async for u in c.watch(r.proof_id, replay=True):
            history.append(u.status)
            if u.status is ProofStatus.AGGREGATING:
                break
        assert history[0] is ProofStatus.RECEIVED and ProofStatus.QUEUED in history

        got: list[StatusUpdate] = []

        async def follow() -> None:
            async for u in c.watch(r.proof_id):
                got.append(u)

        task = asyncio.create_task(follow())
        await asyncio.sleep(1.5)
        assert got == []  # nothing new happened: nothing is replayed
        operators.start()
        await asyncio.wait_for(task, 120)
        statuses = [u.status for u in got]
        assert statuses and statuses[-1] is ProofStatus.FINALIZED, statuses
        assert all(s > ProofStatus.AGGREGATING for s in statuses), statuses


async def test_wait_timeout_carries_the_proof_id(target: str, g16: list[Input]) -> None:
    i = g16[3]
    async with AsyncClient(target) as c:
        with pytest.raises(WaitTimeout) as e:
            await c.submit_and_wait(i.scheme, i.format, i.proof, vk=i.vk, public=i.public, timeout=1.0)
    err = e.value
    assert isinstance(err, SheafError) and err.code == "WAIT_TIMEOUT" and err.proof_id
    assert err.last is not None and not err.last.terminal
    assert f"watch({err.proof_id!r})" in err.message


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_retries_unavailable_until_the_server_comes_up(
    chain_env: ChainEnv, g16: list[Input], tmp_path: Path
) -> None:
    port = _free_port()
    seen: list[SheafError] = []
    i = g16[0]
    async with AsyncClient(f"127.0.0.1:{port}", retry=FAST, on_retry=lambda e, n, d: seen.append(e)) as c:
        call = asyncio.create_task(c.submit(**_sub(i)))  # type: ignore[arg-type]
        await asyncio.sleep(0.8)
        assert not call.done() and seen  # the server isn't there yet: retrying
        assert {e.status for e in seen} == {grpc.StatusCode.UNAVAILABLE}
        a = App(
            make_config(chain_env, tmp_path / "late.db", grpc_listen=f"127.0.0.1:{port}"),
            submitter_key=SUBMITTER_KEY,
        )
        await a.start()
        try:
            r = await asyncio.wait_for(call, 30)
            assert r.status in (ProofStatus.QUEUED, ProofStatus.VALID) and not r.duplicate
        finally:
            await a.stop()
    # and with retries off, the same situation is one UNAVAILABLE error
    async with AsyncClient(f"127.0.0.1:{port}", retry=Retry(attempts=1)) as c:
        with pytest.raises(SheafError) as e:
            await c.status(r.proof_id)
        assert e.value.status == grpc.StatusCode.UNAVAILABLE and e.value.retryable


async def test_rate_limited_submission_is_retried(
    chain_env: ChainEnv, g16: list[Input], tmp_path: Path
) -> None:
    """RESOURCE_EXHAUSTED/RATE_LIMITED (a real token bucket, signed submissions) is retried; the
    signature is over the client's submission_digest, which the aggregator checks."""
    a = App(make_config(chain_env, tmp_path / "rl.db", rate_per_s=1.0, burst=1), submitter_key=SUBMITTER_KEY)
    await a.start()
    key = Account.create().key.hex()
    prover = Account.from_key(key).address
    seen: list[SheafError] = []
    try:
        async with AsyncClient(
            f"127.0.0.1:{a.grpc.port}",
            retry=Retry(attempts=20, initial=0.1, max_delay=0.5),
            on_retry=lambda e, n, d: seen.append(e),
        ) as c:
            for n, i in enumerate(g16[:2], start=1):
                vk_hash = await c.register_vk(i.scheme, i.format, i.vk)
                stmt = statement_hash(Scheme.GROTH16, vk_hash, _pubs(i))
                sig = Account.sign_message(encode_defunct(submission_digest(1, stmt, n)), key).signature
                r = await c.submit(
                    i.scheme,
                    i.format,
                    i.proof,
                    vk_hash=vk_hash,
                    public=i.public,
                    domain_id=1,
                    auth=ProverAuth(prover, bytes(sig), n),
                )
                assert r.statement_hash == stmt
    finally:
        await a.stop()
    assert seen and {(e.status, e.code) for e in seen} == {
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED")
    }


async def test_tls_client_does_not_fall_back_to_plaintext(target: str) -> None:
    async with AsyncClient(target, secure=True, retry=Retry(attempts=1), timeout=5) as c:
        with pytest.raises(SheafError) as e:
            await c.status("1-" + "00" * 32)
    assert e.value.status == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(ValueError):
        AsyncClient(target, root_certificates=b"pem")


async def test_watch_survives_an_aggregator_restart(
    chain_env: ChainEnv, g16: list[Input], tmp_path: Path
) -> None:
    """The stream closes when the aggregator stops; watch reopens it (backoff) against the restarted
    aggregator and yields only the events it hasn't yielded yet, up to FINALIZED."""
    port = _free_port()
    cfg = make_config(chain_env, tmp_path / "agg.db", grpc_listen=f"127.0.0.1:{port}")
    a = App(cfg, submitter_key=SUBMITTER_KEY)
    await a.start()
    seen: list[SheafError] = []
    got: list[StatusUpdate] = []
    ops = []
    try:
        async with AsyncClient(
            f"127.0.0.1:{port}", retry=Retry(attempts=200, initial=0.05, max_delay=0.3),
            on_retry=lambda e, n, d: seen.append(e),
        ) as c:  # fmt: skip
            r = await c.submit(**_sub(g16[0]))  # type: ignore[arg-type]
            for _ in range(100):
                if (await c.status(r.proof_id)).status is ProofStatus.AGGREGATING:
                    break
                await asyncio.sleep(0.1)

            async def follow() -> None:
                async for u in c.watch(r.proof_id):
                    got.append(u)

            task = asyncio.create_task(follow())
            await asyncio.sleep(0.5)
            await a.stop()
            await asyncio.sleep(1.0)
            assert not task.done() and seen, "the watch must be retrying while the aggregator is down"
            a = App(cfg, submitter_key=SUBMITTER_KEY)
            await a.start()
            ops = [
                start_operator(f"127.0.0.1:{port}", k, tmp_path / f"op{i}.log", chain_env.registry)
                for i, k in enumerate(OPERATOR_KEYS[:2])
            ]
            await asyncio.wait_for(task, 120)
    finally:
        for o in ops:
            stop_process(o)
        await a.stop()
    statuses = [u.status for u in got]
    assert statuses and statuses[-1] is ProofStatus.FINALIZED, statuses
    assert all(s > ProofStatus.AGGREGATING for s in statuses), statuses
    assert len(set(statuses)) == len(statuses), statuses  # nothing yielded twice
