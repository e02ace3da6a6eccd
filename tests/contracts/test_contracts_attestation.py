"""aggregator/attestation.py: EIP-712 digest (checked against the registry on anvil elsewhere), signing
order and the checks the registry applies (low s, v in {27, 28}, distinct signers)."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from aggregator.attestation import (
    SECP256K1_N,
    Aggregation,
    AttestationError,
    aggregation_digest,
    recover_signer,
    sign_aggregation,
)
from deploy.anvil import ANVIL_DEV_KEYS

REG = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
AGG = Aggregation(domain_id=3, aggregation_id=9, root=bytes(range(32)), leaf_count=17, deadline=1_900_000_000)


def test_digest_matches_eth_account_typed_data() -> None:
    typed = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Aggregation": [
                {"name": "domainId", "type": "uint256"},
                {"name": "aggregationId", "type": "uint256"},
                {"name": "root", "type": "bytes32"},
                {"name": "leafCount", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Aggregation",
        "domain": {"name": "Sheaf", "version": "1", "chainId": 31337, "verifyingContract": REG},
        "message": {
            "domainId": 3,
            "aggregationId": 9,
            "root": AGG.root,
            "leafCount": 17,
            "deadline": 1_900_000_000,
        },
    }
    signed = Account.sign_message(encode_typed_data(full_message=typed), ANVIL_DEV_KEYS[0])
    assert bytes(signed.message_hash) == aggregation_digest(AGG, 31337, REG)
    # and any field change changes the digest
    for other in (
        Aggregation(4, 9, AGG.root, 17, AGG.deadline),
        Aggregation(3, 10, AGG.root, 17, AGG.deadline),
        Aggregation(3, 9, bytes(32), 17, AGG.deadline),
        Aggregation(3, 9, AGG.root, 18, AGG.deadline),
        Aggregation(3, 9, AGG.root, 17, AGG.deadline + 1),
    ):
        assert aggregation_digest(other, 31337, REG) != aggregation_digest(AGG, 31337, REG)
    assert aggregation_digest(AGG, 1, REG) != aggregation_digest(AGG, 31337, REG)


def test_signatures_sorted_low_s_and_recoverable() -> None:
    sigs = sign_aggregation(AGG, 31337, REG, ANVIL_DEV_KEYS)
    assert [int(s.signer, 16) for s in sigs] == sorted(int(s.signer, 16) for s in sigs)
    for s in sigs:
        assert len(s.signature) == 65 and s.signature[64] in (27, 28)
        assert int.from_bytes(s.signature[32:64], "big") <= SECP256K1_N // 2
        assert recover_signer(AGG, 31337, REG, s.signature) == s.signer
    assert {s.signer for s in sigs} == {Account.from_key(k).address for k in ANVIL_DEV_KEYS}


def test_rejections() -> None:
    with pytest.raises(AttestationError) as e:
        sign_aggregation(AGG, 31337, REG, [ANVIL_DEV_KEYS[0], ANVIL_DEV_KEYS[0]])
    assert e.value.code == "ATTEST_DUPLICATE_SIGNER"
    sig = sign_aggregation(AGG, 31337, REG, [ANVIL_DEV_KEYS[0]])[0].signature
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    with pytest.raises(AttestationError) as e:
        recover_signer(AGG, 31337, REG, twin)
    assert e.value.code == "ATTEST_SIG_HIGH_S"
    with pytest.raises(AttestationError) as e:
        recover_signer(AGG, 31337, REG, sig[:64] + bytes([sig[64] - 27]))
    assert e.value.code == "ATTEST_SIG_V"
    with pytest.raises(AttestationError) as e:
        recover_signer(AGG, 31337, REG, sig[:64])
    assert e.value.code == "ATTEST_SIG_LENGTH"
    with pytest.raises(AttestationError) as e:
        aggregation_digest(Aggregation(1, 1, b"\0" * 31, 1, 1), 31337, REG)
    assert e.value.code == "ATTEST_ROOT"
    with pytest.raises(AttestationError) as e:
        aggregation_digest(AGG, 31337, "0x1234")
    assert e.value.code == "ATTEST_ADDRESS" and "registry" in str(e.value)
    with pytest.raises(AttestationError) as e:
        aggregation_digest(Aggregation(-1, 1, AGG.root, 1, 1), 31337, REG)
    assert e.value.code == "ATTEST_RANGE" and "domain_id" in str(e.value)
