"""`sheaf-deploy verify --submit sourcify|etherscan` against local servers speaking Sourcify's APIv2
(POST /v2/verify/{chainId}/{address}, GET /v2/verify/{verificationId}) whose verdicts come from the
same lib-sourcify run (deploy/sourcify_verify.mjs) against the real anvil: a submitted input that
verifies there is one Sourcify would verify. Plus a tampered input (refused, with lib-sourcify's
code), an unreachable API, a job that never completes, and the local runner's error codes; and the
same through an Etherscan-compatible API (verifysourcecode / checkverifystatus)."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from eth_typing import HexStr

from deploy.anvil import ANVIL_DEV_KEYS, Anvil, free_port
from deploy.api import ConsumerConfig, deploy_all, load_manifest
from deploy.chain import connect
from deploy.cli import main
from deploy.compile import compile_contracts
from deploy.errors import DeployError
from deploy.manifest import Manifest
from deploy.source_verify import (
    FULL,
    NO_CODE,
    PARTIAL,
    ReferenceJob,
    parse_reference_output,
    reference_job,
    reference_match,
)
from deploy.verify_api import EtherscanJob, submit_etherscan, submit_sourcify

MATCH = {FULL: "exact_match", PARTIAL: "match"}  # lib-sourcify's verdict as Sourcify's API words it


@dataclass
class SourcifyStub:
    """Sourcify APIv2's verification endpoints; each job is judged by lib-sourcify on `rpc_url`."""

    rpc_url: str
    hold: bool = False  # never complete a job (for the client's timeout)
    received: list[dict[str, Any]] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    verified: set[tuple[int, str]] = field(default_factory=set)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def post_verify(self, request: web.Request) -> web.Response:
        chain_id, address = int(request.match_info["chainId"]), request.match_info["address"]
        body = await request.json()
        missing = [k for k in ("stdJsonInput", "compilerVersion", "contractIdentifier") if k not in body]
        if missing:
            return web.json_response({"customCode": "missing_params", "message": f"{missing}"}, status=400)
        self.received.append({"chainId": chain_id, "address": address, **body})
        if (chain_id, address.lower()) in self.verified:
            msg = "The contract is already verified"
            return web.json_response({"customCode": "already_verified", "message": msg}, status=409)
        vid = str(uuid.uuid4())
        self.jobs[vid] = {"isJobCompleted": False, "verificationId": vid}
        job = ReferenceJob(
            address,
            body["contractIdentifier"],
            body["compilerVersion"],
            body["stdJsonInput"],
            body.get("creationTransactionHash"),
        )
        if not self.hold:
            task = asyncio.create_task(self._judge(vid, chain_id, job))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return web.json_response({"verificationId": vid}, status=202)

    async def _judge(self, vid: str, chain_id: int, job: ReferenceJob) -> None:
        [ref] = await asyncio.to_thread(reference_match, self.rpc_url, chain_id, [job])
        state = self.jobs[vid]
        runtime, creation = MATCH.get(ref.runtime_match), MATCH.get(ref.creation_match)
        if runtime or creation:
            best = "exact_match" if "exact_match" in (runtime, creation) else "match"
            state["contract"] = {
                "match": best,
                "runtimeMatch": runtime,
                "creationMatch": creation,
                "chainId": str(chain_id),
                "address": job.address,
            }
            self.verified.add((chain_id, job.address.lower()))
        else:
            code = ref.error_code or "no_match"
            state["error"] = {"customCode": code, "message": ref.error_message, "errorId": str(uuid.uuid4())}
        state["isJobCompleted"] = True

    async def get_job(self, request: web.Request) -> web.Response:
        state = self.jobs.get(request.match_info["verificationId"])
        if state is None:
            return web.json_response({"customCode": "job_not_found", "message": "no such job"}, status=404)
        return web.json_response(state)


@dataclass
class EtherscanStub:
    """Etherscan's verifysourcecode + checkverifystatus. Like Etherscan, it finds the creation
    transaction itself (`creations`, from the manifest here), judges with lib-sourcify and checks
    that the submitted constructor arguments are the tail of that transaction's input."""

    rpc_url: str
    creations: dict[str, str]  # address (lower case) -> creation tx hash
    api_key: str = "test-key"
    received: list[dict[str, str]] = field(default_factory=list)
    results: dict[str, str] = field(default_factory=dict)  # guid -> checkverifystatus result
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, request: web.Request) -> web.Response:
        form = dict(await request.post()) if request.method == "POST" else dict(request.query)
        params = {**request.query, **{k: str(v) for k, v in form.items()}}
        if params.get("apikey") != self.api_key:
            return web.json_response({"status": "0", "message": "NOTOK", "result": "Invalid API Key"})
        if params.get("action") == "checkverifystatus":
            said = self.results.get(params.get("guid", ""), "Unable to locate GUID")
            ok = said == "Pass - Verified"
            return web.json_response({"status": "1" if ok else "0", "message": "OK", "result": said})
        self.received.append(params)
        guid = uuid.uuid4().hex
        self.results[guid] = "Pending in queue"
        task = asyncio.create_task(asyncio.to_thread(self._judge, guid, params))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return web.json_response({"status": "1", "message": "OK", "result": guid})

    def _judge(self, guid: str, p: dict[str, str]) -> None:
        address, tx = p["contractaddress"], self.creations[p["contractaddress"].lower()]
        job = ReferenceJob(
            address,
            p["contractname"],
            p["compilerversion"].removeprefix("v"),
            json.loads(p["sourceCode"]),
            tx,
        )
        [ref] = reference_match(self.rpc_url, int(p["chainid"]), [job])
        tx_input = bytes(connect(self.rpc_url).eth.get_transaction(HexStr(tx))["input"])
        args_ok = tx_input.endswith(bytes.fromhex(p["constructorArguements"]))
        matched = ref.runtime_match in (FULL, PARTIAL) and ref.creation_match in (FULL, PARTIAL)
        self.results[guid] = "Pass - Verified" if matched and args_ok else "Fail - Unable to verify"


@dataclass
class Served:
    stub: Any
    url: str


def _serve(stub: SourcifyStub | EtherscanStub) -> Iterator[Served]:
    app = web.Application()
    if isinstance(stub, SourcifyStub):
        app.router.add_post("/v2/verify/{chainId}/{address}", stub.post_verify)
        app.router.add_get("/v2/verify/{verificationId}", stub.get_job)
    else:
        app.router.add_route("*", "/api", stub.handle)
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    try:
        yield Served(stub, f"http://127.0.0.1:{port}")
    finally:
        loop.call_soon_threadsafe(loop.stop)
        t.join(timeout=10)
        loop.run_until_complete(runner.cleanup())
        loop.close()


@pytest.fixture(scope="module")
def node() -> Iterator[Anvil]:
    with Anvil() as n:
        yield n


@pytest.fixture(scope="module")
def deployed(node: Anvil, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    out = tmp_path_factory.mktemp("dep")
    consumer = ConsumerConfig(domain_id=1, required_kind=0, scheme=1, vk_hash=b"\xab" * 32)
    deploy_all(node.rpc_url, ANVIL_DEV_KEYS[0], consumer=consumer, out_dir=out)
    return out, load_manifest(31337, out)


@pytest.fixture
def api(node: Anvil) -> Iterator[Served]:
    yield from _serve(SourcifyStub(node.rpc_url))


def _verify(out: Path, node: Anvil, *extra: str) -> int:
    return main(["--deployments-dir", str(out), "verify", "--rpc-url", node.rpc_url, *extra])


def test_submit_sends_the_written_input_and_it_verifies(
    node: Anvil, deployed: tuple[Path, Manifest], api: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    out, m = deployed
    assert _verify(out, node, "--submit", "sourcify", "--api", api.url + "/") == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(api.stub.received) == len(m.contracts) == 3
    for body in api.stub.received:
        dc = next(d for d in m.contracts.values() if d.address == body["address"])
        written = out / "explorer" / "31337" / dc.name / "standard-input.json"
        assert body["stdJsonInput"] == json.loads(written.read_text())
        assert body["contractIdentifier"] == f"{dc.source_path}:{dc.solidity_name}"
        assert body["compilerVersion"] == "0.8.30+commit.73712a01"
        assert body["creationTransactionHash"] == dc.tx_hash
        # the server's own lib-sourcify run found runtime and creation code perfect
        [state] = [s for s in api.stub.jobs.values() if s["contract"]["address"] == dc.address]
        assert (state["contract"]["runtimeMatch"], state["contract"]["creationMatch"]) == (
            "exact_match",
            "exact_match",
        )
        assert any(ln.startswith(dc.name) and "sourcify: exact_match (verification " in ln for ln in printed)
    # a second submission: the API says "already verified", which is reported, not an error
    assert _verify(out, node, "--submit", "sourcify", "--api", api.url) == 0
    assert capsys.readouterr().out.count("sourcify: already_verified") == 3


def test_tampered_input_is_refused_with_a_code(
    deployed: tuple[Path, Manifest], api: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    _, m = deployed
    dc = m.contracts["SheafRegistry"]
    job = reference_job(dc, compile_contracts()["SheafRegistry"])
    src = job.std_input["sources"][dc.source_path]["content"]
    # the same code edit as test_deploy_cli's (a shared solc cache entry): compiles, does not match
    tampered = json.loads(json.dumps(job.std_input))
    edited = src.replace("MAX_LEAVES = 1 << 32", "MAX_LEAVES = 1 << 31")
    tampered["sources"][dc.source_path]["content"] = edited
    assert tampered != job.std_input
    with pytest.raises(DeployError) as e:
        submit_sourcify(api.url, 31337, [replace(job, std_input=tampered)], poll_s=0.1)
    assert e.value.code == "VERIFY_API_REJECTED"
    # lib-sourcify's code for this edit (its early length check; other edits give no_match)
    assert "bytecode_length_mismatch" in e.value.message and dc.address in e.value.message
    assert api.stub.received[0]["stdJsonInput"] == tampered


def test_api_unreachable_or_missing_or_stuck(
    node: Anvil, deployed: tuple[Path, Manifest], capsys: pytest.CaptureFixture[str]
) -> None:
    out, m = deployed
    down = f"http://127.0.0.1:{free_port()}"
    assert _verify(out, node, "--submit", "sourcify", "--api", down) == 2
    err = capsys.readouterr().err
    assert "error: VERIFY_API_UNREACHABLE:" in err and down in err and "Traceback" not in err
    assert _verify(out, node, "--submit", "sourcify") == 2
    assert "error: CONFIG_INVALID: --submit sourcify needs --api" in capsys.readouterr().err
    job = reference_job(m.contracts["ExampleConsumer"], compile_contracts()["ExampleConsumer"])
    for served in _serve(SourcifyStub(node.rpc_url, hold=True)):
        with pytest.raises(DeployError) as e:
            submit_sourcify(served.url, 31337, [job], timeout_s=0.5, poll_s=0.05)
        assert e.value.code == "VERIFY_API_TIMEOUT"
        assert len(served.stub.received) == 1


def test_reference_runner_codes(
    node: Anvil, deployed: tuple[Path, Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, m = deployed
    job = reference_job(m.contracts["ExampleConsumer"], compile_contracts()["ExampleConsumer"])
    # lib-sourcify itself: an address without code is "no_code" (before any compile)
    [ref] = reference_match(node.rpc_url, 31337, [replace(job, address="0x" + "00" * 19 + "01")])
    assert (ref.runtime_match, ref.error_code) == (NO_CODE, "contract_not_deployed")
    with pytest.raises(DeployError) as e:
        reference_match(node.rpc_url, 31337, [job], timeout_s=0.01)
    assert e.value.code == "VERIFIER_TIMEOUT"
    with pytest.raises(DeployError) as e:
        parse_reference_output("Error: something else on stdout", [job])
    assert e.value.code == "VERIFIER_FAILED"
    with pytest.raises(DeployError) as e:
        parse_reference_output('{"results": []}', [job])
    assert e.value.code == "VERIFIER_FAILED"
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DeployError) as e:
        reference_match(node.rpc_url, 31337, [job])
    assert e.value.code == "VERIFIER_UNAVAILABLE"


def test_submit_to_an_etherscan_compatible_api(
    node: Anvil,
    deployed: tuple[Path, Manifest],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, m = deployed
    creations = {dc.address.lower(): dc.tx_hash for dc in m.contracts.values()}
    for served in _serve(EtherscanStub(node.rpc_url, creations)):
        url = served.url + "/api"
        submit = ("--submit", "etherscan", "--api", url, "--api-key-env", "SHEAF_TEST_SCAN_KEY")
        monkeypatch.delenv("SHEAF_TEST_SCAN_KEY", raising=False)
        assert _verify(out, node, *submit) == 2
        assert "error: CONFIG_INVALID: --submit etherscan reads the API key from $SHEAF_TEST_SCAN_KEY" in (
            capsys.readouterr().err
        )
        monkeypatch.setenv("SHEAF_TEST_SCAN_KEY", "test-key")
        assert _verify(out, node, *submit) == 0
        assert capsys.readouterr().out.count("etherscan: Pass - Verified (guid ") == 3
        for form in served.stub.received:
            dc = next(d for d in m.contracts.values() if d.address == form["contractaddress"])
            written = out / "explorer" / "31337" / dc.name / "standard-input.json"
            assert json.loads(form["sourceCode"]) == json.loads(written.read_text())
            assert (form["chainid"], form["codeformat"], form["compilerversion"]) == (
                "31337",
                "solidity-standard-json-input",
                "v0.8.30+commit.73712a01",
            )
            assert form["contractname"] == f"{dc.source_path}:{dc.solidity_name}"
            assert form["constructorArguements"] == dc.constructor_args[2:]
        # wrong constructor arguments: the API's job fails, a coded refusal
        dc = m.contracts["ExampleConsumer"]
        job = reference_job(dc, compile_contracts()["ExampleConsumer"])
        with pytest.raises(DeployError) as e:
            submit_etherscan(url, 31337, [EtherscanJob(job, "00" * 32)], "test-key", poll_s=0.1)
        assert e.value.code == "VERIFY_API_REJECTED" and "Fail - Unable to verify" in e.value.message
