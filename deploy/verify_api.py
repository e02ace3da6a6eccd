"""Submit source verification to a Sourcify-compatible (APIv2) or Etherscan-compatible API.

`POST {api}/v2/verify/{chainId}/{address}` with the standard-JSON input that `sheaf-deploy verify`
writes (deploy/source_verify.py: `stdJsonInput`, `compilerVersion`, `contractIdentifier`,
`creationTransactionHash`) answers 202 with a `verificationId`; the job is then polled at
`GET {api}/v2/verify/{verificationId}` until `isJobCompleted`. A completed job carries either
`contract.match` ("exact_match" | "match") or `error` ({customCode, message}). A contract that is
already verified is answered 409 with customCode "already_verified" (not an error for us).

Etherscan (and Blockscout's Etherscan-compatible API): `POST {api}?chainid=N` with the form
`module=contract&action=verifysourcecode`, `codeformat=solidity-standard-json-input`, the same
standard JSON as `sourceCode`, `contractname` (path:Name), `compilerversion` (v-prefixed) and the
ABI-encoded constructor arguments without 0x; it answers `{"status": "1", "result": <guid>}`, and
`GET {api}?chainid=N&module=contract&action=checkverifystatus&guid=...` is polled while its result
is "Pending in queue" / "In progress"; "Pass - Verified" (or "Already Verified") is success.

aiohttp is the HTTP client: it is already a pinned direct dependency (the aggregator's HTTP side).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from deploy.errors import VERIFY_API_REJECTED, VERIFY_API_TIMEOUT, VERIFY_API_UNREACHABLE, DeployError
from deploy.source_verify import ReferenceJob

T = TypeVar("T")
R = TypeVar("R")

API_TIMEOUT_S = 300.0  # per contract, submission + verification job (Sourcify compiles on its side)
POLL_INTERVAL_S = 0.5


@dataclass(frozen=True)
class EtherscanJob:
    job: ReferenceJob
    constructor_args: str  # ABI-encoded, hex without 0x (what Etherscan asks for)


@dataclass(frozen=True)
class EtherscanSubmission:
    address: str
    guid: str  # "" when the API said it was already verified
    result: str  # the API's last words, e.g. "Pass - Verified"


@dataclass(frozen=True)
class SourcifySubmission:
    address: str
    verification_id: str  # "" when the API said it was already verified
    match: str  # "exact_match" | "match" | "already_verified"
    runtime_match: str | None = None
    creation_match: str | None = None


def _error_text(body: Any) -> str:
    """Sourcify's error body is {customCode, message, errorId}; anything else is shown as is."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and ("customCode" in err or "message" in err):
            return f"{err.get('customCode', '?')}: {err.get('message', '')}".strip()
    return str(body)[:300]


async def _json(resp: aiohttp.ClientResponse, url: str) -> Any:
    try:
        return await resp.json(content_type=None)
    except ValueError:
        text = (await resp.text())[:200]
        raise DeployError(
            VERIFY_API_REJECTED, f"{url} answered HTTP {resp.status} with a body that is not JSON: {text!r}"
        ) from None


async def _submit_one(
    session: aiohttp.ClientSession, api: str, chain_id: int, job: ReferenceJob, poll_s: float
) -> SourcifySubmission:
    url = f"{api}/v2/verify/{chain_id}/{job.address}"
    body: dict[str, Any] = {
        "stdJsonInput": job.std_input,
        "compilerVersion": job.compiler_version,
        "contractIdentifier": job.contract_identifier,
    }
    if job.creation_tx_hash:
        body["creationTransactionHash"] = job.creation_tx_hash
    async with session.post(url, json=body) as resp:
        answer = await _json(resp, url)
        if resp.status == 409 and isinstance(answer, dict) and answer.get("customCode") == "already_verified":
            return SourcifySubmission(job.address, "", "already_verified")
        if resp.status != 202 or not isinstance(answer, dict) or "verificationId" not in answer:
            raise DeployError(
                VERIFY_API_REJECTED,
                f"{url} refused {job.contract_identifier}: HTTP {resp.status} {_error_text(answer)}",
            )
    vid = str(answer["verificationId"])
    status_url = f"{api}/v2/verify/{vid}"
    while True:
        async with session.get(status_url) as resp:
            state = await _json(resp, status_url)
            if resp.status != 200 or not isinstance(state, dict):
                raise DeployError(
                    VERIFY_API_REJECTED, f"{status_url}: HTTP {resp.status} {_error_text(state)}"
                )
        if state.get("isJobCompleted"):
            break
        await asyncio.sleep(poll_s)
    contract = state.get("contract") or {}
    match = contract.get("match")
    if state.get("error") or match not in ("exact_match", "match"):
        raise DeployError(
            VERIFY_API_REJECTED,
            f"{api} did not verify {job.contract_identifier} at {job.address} "
            f"(verification {vid}): {_error_text(state.get('error') or state)}",
        )
    return SourcifySubmission(
        job.address, vid, str(match), contract.get("runtimeMatch"), contract.get("creationMatch")
    )


_ETHERSCAN_PENDING = ("pending in queue", "in progress")
_ETHERSCAN_DONE = ("pass - verified", "already verified")


async def _etherscan_one(
    session: aiohttp.ClientSession, api: str, chain_id: int, ej: EtherscanJob, api_key: str, poll_s: float
) -> EtherscanSubmission:
    job = ej.job
    form = {
        "apikey": api_key,
        "module": "contract",
        "action": "verifysourcecode",
        "contractaddress": job.address,
        "sourceCode": json.dumps(job.std_input),
        "codeformat": "solidity-standard-json-input",
        "contractname": job.contract_identifier,
        "compilerversion": "v" + job.compiler_version.removeprefix("v"),
        # Etherscan's historical spelling; the corrected one is sent too (Blockscout reads either)
        "constructorArguements": ej.constructor_args,
        "constructorArguments": ej.constructor_args,
    }
    where = f"{api} (chain {chain_id})"
    async with session.post(api, params={"chainid": str(chain_id)}, data=form) as resp:
        answer = await _json(resp, api)
    result = str(answer.get("result", "")) if isinstance(answer, dict) else ""
    if isinstance(answer, dict) and "already verified" in result.lower():
        return EtherscanSubmission(job.address, "", result)
    if resp.status != 200 or not isinstance(answer, dict) or str(answer.get("status")) != "1" or not result:
        raise DeployError(
            VERIFY_API_REJECTED,
            f"{where} refused {job.contract_identifier}: HTTP {resp.status} {str(answer)[:300]}",
        )
    guid = result
    query = {
        "chainid": str(chain_id),
        "module": "contract",
        "action": "checkverifystatus",
        "guid": guid,
        "apikey": api_key,
    }
    while True:
        async with session.get(api, params=query) as resp:
            state = await _json(resp, api)
        said = str(state.get("result", "")) if isinstance(state, dict) else str(state)
        if resp.status == 200 and said.lower() in _ETHERSCAN_DONE:
            return EtherscanSubmission(job.address, guid, said)
        if resp.status != 200 or said.lower() not in _ETHERSCAN_PENDING:
            raise DeployError(
                VERIFY_API_REJECTED,
                f"{where} did not verify {job.contract_identifier} at {job.address} "
                f"(guid {guid}): {said[:300]}",
            )
        await asyncio.sleep(poll_s)


async def submit_sourcify_async(
    api: str,
    chain_id: int,
    jobs: Sequence[ReferenceJob],
    timeout_s: float = API_TIMEOUT_S,
    poll_s: float = POLL_INTERVAL_S,
) -> list[SourcifySubmission]:
    api = api.rstrip("/")

    async def one(session: aiohttp.ClientSession, job: ReferenceJob) -> SourcifySubmission:
        return await _submit_one(session, api, chain_id, job, poll_s)

    return await _each(api, jobs, lambda j: j.contract_identifier, one, timeout_s)


async def _each(
    api: str,
    items: Sequence[T],
    label: Callable[[T], str],
    submit: Callable[[aiohttp.ClientSession, T], Awaitable[R]],
    timeout_s: float,
) -> list[R]:
    """Submit one item after the other, each bounded by timeout_s; transport failures coded."""
    out: list[R] = []
    # connect/read bounds per request; the whole job (incl. polling) is bounded by timeout_s below
    per_request = aiohttp.ClientTimeout(total=min(timeout_s, 60.0), connect=10.0)
    async with aiohttp.ClientSession(timeout=per_request) as session:
        for item in items:
            try:
                async with asyncio.timeout(timeout_s):
                    out.append(await submit(session, item))
            except TimeoutError:
                raise DeployError(
                    VERIFY_API_TIMEOUT,
                    f"{api} did not finish verifying {label(item)} within {timeout_s:.0f} s; "
                    "its job may still complete: check it later or raise --api-timeout",
                ) from None
            except aiohttp.ClientError as e:
                raise DeployError(
                    VERIFY_API_UNREACHABLE,
                    f"cannot reach the verification API at --api {api} ({type(e).__name__}: {e}); "
                    "check the URL and that the service is up",
                ) from None
    return out


def submit_sourcify(
    api: str,
    chain_id: int,
    jobs: Sequence[ReferenceJob],
    timeout_s: float = API_TIMEOUT_S,
    poll_s: float = POLL_INTERVAL_S,
) -> list[SourcifySubmission]:
    """Submit each job to the Sourcify APIv2 at `api` and wait for its verdict (in order).

    Raises DeployError VERIFY_API_UNREACHABLE / VERIFY_API_REJECTED / VERIFY_API_TIMEOUT."""
    return asyncio.run(submit_sourcify_async(api, chain_id, jobs, timeout_s, poll_s))


def submit_etherscan(
    api: str,
    chain_id: int,
    jobs: Sequence[EtherscanJob],
    api_key: str,
    timeout_s: float = API_TIMEOUT_S,
    poll_s: float = POLL_INTERVAL_S,
) -> list[EtherscanSubmission]:
    """Submit each job to the Etherscan-compatible API at `api` (e.g. https://api.etherscan.io/v2/api)
    and wait for its verdict. Raises DeployError VERIFY_API_UNREACHABLE / REJECTED / TIMEOUT."""

    async def one(session: aiohttp.ClientSession, ej: EtherscanJob) -> EtherscanSubmission:
        return await _etherscan_one(session, api, chain_id, ej, api_key, poll_s)

    return asyncio.run(_each(api, jobs, lambda ej: ej.job.contract_identifier, one, timeout_s))
