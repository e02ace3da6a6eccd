"""SheafRegistry on a real anvil: attested aggregations signed with real eth-account keys, inclusion of
every leaf with paths from aggregator/merkle.py, and the recursive path through a real gnark-exported
Groth16 verifier (tests/fixtures/gnark/groth16_n3) behind Groth16AggregationAdapter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError

from aggregator.attestation import Aggregation, aggregation_digest, sign_aggregation
from aggregator.merkle import merkle_path, merkle_root
from deploy.anvil import ANVIL_DEV_KEYS
from deploy.api import configure_registry
from deploy.chain import deploy_contract, transact
from deploy.compile import Artifact, compile_files
from normalizers.statement import Scheme, keccak256, statement_hash

REPO = Path(__file__).resolve().parents[2]
GNARK_G16 = REPO / "tests" / "fixtures" / "gnark" / "groth16_n3"
DOMAIN = 1


def selector(sig: str) -> str:
    return "0x" + keccak256(sig.encode())[:4].hex()


def reverts_with(fn: Any, sender: str, error_sig: str) -> None:
    with pytest.raises((ContractCustomError, ContractLogicError)) as e:
        fn.call({"from": sender})
    data = getattr(e.value, "data", None) or str(e.value)
    assert selector(error_sig) in str(data), f"expected {error_sig}, got {data}"


@pytest.fixture(scope="module")
def operator_keys() -> list[str]:
    # two anvil dev keys and one freshly generated key (no funds needed: signing only)
    fresh = Account.create()
    return [ANVIL_DEV_KEYS[1], ANVIL_DEV_KEYS[2], "0x" + bytes(fresh.key).hex()]


@pytest.fixture(scope="module")
def reg(w3: Web3, owner: LocalAccount, artifacts: dict[str, Artifact], operator_keys: list[str]) -> Contract:
    sent = deploy_contract(w3, owner, artifacts["SheafRegistry"], [owner.address])
    assert sent.contract_address
    c = w3.eth.contract(
        address=Web3.to_checksum_address(sent.contract_address), abi=artifacts["SheafRegistry"].abi
    )
    ops = [Account.from_key(k).address for k in operator_keys]
    configure_registry(w3, owner, c, domains=[(DOMAIN, "")], operators=ops, threshold=2)
    # idempotent: a second run sends nothing
    assert configure_registry(w3, owner, c, domains=[(DOMAIN, "")], operators=ops, threshold=2) == []
    return c


def _deadline(w3: Web3, ttl_s: int = 600) -> int:
    """An attestation deadline ttl_s after the latest block's time (what the registry compares)."""
    return int(w3.eth.get_block("latest")["timestamp"]) + ttl_s


def _leaves(n: int, salt: int) -> list[bytes]:
    vk = keccak256(b"sheaf/test-vk")
    return [statement_hash(Scheme.GROTH16, vk, [(salt * 1000 + i).to_bytes(32, "big")]) for i in range(n)]


def test_attested_aggregations_and_inclusion_of_every_leaf(
    w3: Web3, owner: LocalAccount, reg: Contract, operator_keys: list[str]
) -> None:
    chain_id = int(w3.eth.chain_id)
    for agg_id, n in enumerate([1, 2, 5, 8, 33], start=1):
        assert reg.functions.nextAggregationId(DOMAIN).call() == agg_id
        leaves = _leaves(n, agg_id)
        root = merkle_root(leaves)
        agg = Aggregation(DOMAIN, agg_id, root, n, _deadline(w3))
        # the Python EIP-712 digest is the contract's
        assert reg.functions.aggregationDigest(
            DOMAIN, agg_id, root, n, agg.deadline
        ).call() == aggregation_digest(agg, chain_id, reg.address)
        sigs = sign_aggregation(agg, chain_id, reg.address, operator_keys[:2])
        fn = reg.functions.submitAttestedAggregation(
            DOMAIN, agg_id, root, n, agg.deadline, [s.signature for s in sigs]
        )
        sent = transact(w3, owner, fn, "submitAttestedAggregation")
        logs = reg.events.AggregationSubmitted().process_receipt(sent.receipt)
        assert [(x.args.aggregationId, x.args.root, x.args.leafCount, x.args.kind) for x in logs] == [
            (agg_id, root, n, 2)
        ]
        stored = reg.functions.getAggregation(DOMAIN, agg_id).call()
        assert tuple(stored) == (root, n, 2, sent.block_number)
        for i, leaf in enumerate(leaves):
            p = list(merkle_path(leaves, i).path)
            assert reg.functions.verifyProofAggregation(DOMAIN, agg_id, leaf, p, n, i).call() is True
            assert tuple(reg.functions.verifyProofAggregationKind(DOMAIN, agg_id, leaf, p, n, i).call()) == (
                True,
                2,
            )
            assert reg.functions.verifyProofAggregation(DOMAIN, agg_id, leaf, p, n + 1, i).call() is False
            if n > 1:
                assert (
                    reg.functions.verifyProofAggregation(DOMAIN, agg_id, leaf, p, n, (i + 1) % n).call()
                    is False
                )
        # replay of the same id fails
        reverts_with(fn, owner.address, "UnexpectedAggregationId(uint256,uint256,uint256)")


def test_attested_rejections_with_real_keys(
    w3: Web3, owner: LocalAccount, reg: Contract, operator_keys: list[str]
) -> None:
    chain_id = int(w3.eth.chain_id)
    agg_id = reg.functions.nextAggregationId(DOMAIN).call()
    leaves = _leaves(4, 99)
    root = merkle_root(leaves)
    agg = Aggregation(DOMAIN, agg_id, root, 4, _deadline(w3))

    def submit(sigs: list[bytes], count: int = 4) -> Any:
        return reg.functions.submitAttestedAggregation(DOMAIN, agg_id, root, count, agg.deadline, sigs)

    good = [s.signature for s in sign_aggregation(agg, chain_id, reg.address, operator_keys[:2])]
    # below threshold
    reverts_with(submit(good[:1]), owner.address, "InsufficientSignatures(uint256,uint256)")
    # a non-operator (anvil dev key 4 is not an operator)
    outsider = sign_aggregation(agg, chain_id, reg.address, [operator_keys[0], ANVIL_DEV_KEYS[4]])
    reverts_with(submit([s.signature for s in outsider]), owner.address, "SignerNotOperator(uint256,address)")
    # duplicate signer
    reverts_with(submit([good[0], good[0]]), owner.address, "DuplicateSigner(uint256,address)")
    # signed for another chain id / another registry
    for other in (
        sign_aggregation(agg, chain_id + 1, reg.address, operator_keys[:2]),
        sign_aggregation(agg, chain_id, "0x" + "11" * 20, operator_keys[:2]),
    ):
        with pytest.raises((ContractCustomError, ContractLogicError)):
            submit([s.signature for s in other]).call({"from": owner.address})
    # malleable twin of a valid signature
    n_order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    r, s, v = good[0][:32], int.from_bytes(good[0][32:64], "big"), good[0][64]
    twin = r + (n_order - s).to_bytes(32, "big") + bytes([55 - v])
    reverts_with(submit([twin, good[1]]), owner.address, "MalleableSignature(uint256)")
    # v as 0/1
    reverts_with(
        submit([good[0][:64] + bytes([v - 27]), good[1]]), owner.address, "InvalidSignatureV(uint256,uint8)"
    )
    # the same signatures for a different leaf count
    with pytest.raises((ContractCustomError, ContractLogicError)):
        submit(good, 5).call({"from": owner.address})
    # and the good one still goes through
    transact(w3, owner, submit(good), "submit")
    assert reg.functions.nextAggregationId(DOMAIN).call() == agg_id + 1


@pytest.fixture(scope="module")
def gnark_verifier(w3: Web3, owner: LocalAccount) -> tuple[Contract, dict[str, Any]]:
    arts = compile_files({"tests/fixtures/gnark/groth16_n3/Verifier.sol": GNARK_G16 / "Verifier.sol"})
    sent = deploy_contract(w3, owner, arts["Verifier"])
    assert sent.contract_address
    v = w3.eth.contract(address=Web3.to_checksum_address(sent.contract_address), abi=arts["Verifier"].abi)
    return v, json.loads((GNARK_G16 / "calldata.json").read_text())


def test_recursive_path_with_real_gnark_groth16_verifier(
    w3: Web3,
    owner: LocalAccount,
    reg: Contract,
    artifacts: dict[str, Artifact],
    gnark_verifier: tuple[Contract, dict[str, Any]],
) -> None:
    verifier, cd = gnark_verifier
    proof = bytes.fromhex(cd["proof"][2:])
    pubs = [int(x, 16) for x in cd["public_inputs"]]
    verifier.functions.verifyProof(proof, pubs).call()  # the fixture itself verifies
    sent = deploy_contract(w3, owner, artifacts["Groth16AggregationAdapter"], [verifier.address])
    assert sent.contract_address
    adapter = w3.eth.contract(
        address=Web3.to_checksum_address(sent.contract_address),
        abi=artifacts["Groth16AggregationAdapter"].abi,
    )
    configure_registry(w3, owner, reg, domains=[(2, owner.address)], verifier=adapter.address)
    # the fixture's public inputs read as the adapter's layout [root_hi, root_lo, leafCount]
    root = ((pubs[0] << 128) | pubs[1]).to_bytes(32, "big")
    leaf_count = pubs[2]
    assert [int(x) for x in adapter.functions.publicInputs(root, leaf_count).call()] == pubs

    # a tampered proof, another root or another leaf count: the gnark verifier reverts
    bad = bytearray(proof)
    bad[40] ^= 1
    for args in (
        (root, leaf_count, bytes(bad)),
        (keccak256(root), leaf_count, proof),
        (root, leaf_count + 1, proof),
    ):
        with pytest.raises((ContractCustomError, ContractLogicError)):
            reg.functions.submitRecursiveAggregationRoot(2, 1, *args).call({"from": owner.address})
    # only the domain's submitter may submit recursive aggregations
    reverts_with(
        reg.functions.submitRecursiveAggregationRoot(2, 1, root, leaf_count, proof),
        Account.from_key(ANVIL_DEV_KEYS[3]).address,
        "NotSubmitter(uint256,address)",
    )
    # a domain without submitter (DOMAIN, configured with "") is ATTESTED-only: the same valid proof is
    # refused there from anyone, the owner included (issue 13: the proof binds only root, leafCount)
    nxt = reg.functions.nextAggregationId(DOMAIN).call()
    for sender in (owner.address, Account.from_key(ANVIL_DEV_KEYS[3]).address):
        reverts_with(
            reg.functions.submitRecursiveAggregationRoot(DOMAIN, nxt, root, leaf_count, proof),
            sender,
            "SubmitterNotSet(uint256)",
        )
    fn = reg.functions.submitRecursiveAggregationRoot(2, 1, root, leaf_count, proof)
    done = transact(w3, owner, fn, "submitRecursiveAggregationRoot")
    assert tuple(reg.functions.getAggregation(2, 1).call())[:3] == (root, leaf_count, 1)
    logs = reg.events.AggregationSubmitted().process_receipt(done.receipt)
    assert logs[0].args.kind == 1


def test_example_consumer_accepts_python_statement_hash(
    w3: Web3, owner: LocalAccount, reg: Contract, artifacts: dict[str, Artifact], operator_keys: list[str]
) -> None:
    """The app pattern on chain: the consumer recomputes the statement hash in Solidity from the public
    inputs; it must equal normalizers.statement's, be included, and be of the required kind."""
    vk = keccak256(b"sheaf/consumer-test-vk")
    pubs = [7, 2**200 + 3, 0]
    stmt = statement_hash(Scheme.PLONK, vk, [p.to_bytes(32, "big") for p in pubs])
    leaves = _leaves(6, 500)
    leaves[4] = stmt
    root = merkle_root(leaves)
    chain_id = int(w3.eth.chain_id)
    agg_id = reg.functions.nextAggregationId(DOMAIN).call()
    dl = _deadline(w3)
    sigs = sign_aggregation(
        Aggregation(DOMAIN, agg_id, root, 6, dl), chain_id, reg.address, operator_keys[1:]
    )
    fn = reg.functions.submitAttestedAggregation(DOMAIN, agg_id, root, 6, dl, [s.signature for s in sigs])
    transact(w3, owner, fn, "attest")
    path = list(merkle_path(leaves, 4).path)

    def consumer(kind: int) -> Contract:
        art = artifacts["ExampleConsumer"]
        sent = deploy_contract(w3, owner, art, [reg.address, DOMAIN, kind, int(Scheme.PLONK), vk])
        return w3.eth.contract(address=Web3.to_checksum_address(str(sent.contract_address)), abi=art.abi)

    recursive_only = consumer(1)
    reverts_with(
        recursive_only.functions.acceptResult(pubs, agg_id, path, 6, 4),
        owner.address,
        "WrongKind(uint8,uint8)",
    )
    app = consumer(2)
    done = transact(w3, owner, app.functions.acceptResult(pubs, agg_id, path, 6, 4), "acceptResult")
    [ev] = app.events.ResultAccepted().process_receipt(done.receipt)
    assert ev.args.statementHash == stmt and ev.args.kind == 2
    assert app.functions.accepted(stmt).call() is True
    # another output value is another statement: not included
    reverts_with(
        app.functions.acceptResult([7, 2**200 + 3, 1], agg_id, path, 6, 4),
        owner.address,
        "NotIncluded(bytes32)",
    )
