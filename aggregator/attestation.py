"""EIP-712 attestation of an aggregation, as SheafRegistry.submitAttestedAggregation checks it, and the
EIP-712 refusal an operator signs instead (checked by the aggregator only).

Typed data: domain {name "Sheaf", version "1", chainId, verifyingContract = registry};
struct Aggregation(uint256 domainId,uint256 aggregationId,bytes32 root,uint256 leafCount,uint256 deadline):
the registry refuses it after block time `deadline` (AttestationExpired) or when the deadline is more
than MAX_ATTESTATION_TTL ahead. Refusal(uint256 batchId,uint256 domainId,uint256 aggregationId,
bytes32 root,uint256 leafCount,uint256 deadline,string code,bytes32 badHash) in the same domain: a
refusal is bound to one chain, one registry and one exact batch (a re-used aggregation id has another
root or deadline), so it cannot be replayed against another.
Encoding, hashing, signing and recovery are eth_account's (`encode_typed_data`, `sign_message`,
`recover_message`); the tests hold the digest equal to the contract's `aggregationDigest`.
Signatures are 65 bytes r || s || v (v in {27, 28}, low s) and the registry wants them ordered by
strictly ascending signer address: `sign_aggregation` returns them so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data

from sheaf.hashing import keccak256

DOMAIN_NAME = "Sheaf"
DOMAIN_VERSION = "1"
# secp256k1 group order
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
# SheafRegistry.MAX_ATTESTATION_TTL: a deadline further ahead than this is refused on chain
MAX_ATTESTATION_TTL_S = 86_400


DOMAIN_TYPEHASH = keccak256(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
AGGREGATION_TYPE = [
    {"name": "domainId", "type": "uint256"},
    {"name": "aggregationId", "type": "uint256"},
    {"name": "root", "type": "bytes32"},
    {"name": "leafCount", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]
REFUSAL_TYPE = [
    {"name": "batchId", "type": "uint256"},
    {"name": "domainId", "type": "uint256"},
    {"name": "aggregationId", "type": "uint256"},
    {"name": "root", "type": "bytes32"},
    {"name": "leafCount", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
    {"name": "code", "type": "string"},
    {"name": "badHash", "type": "bytes32"},
]
AGGREGATION_TYPEHASH = keccak256(
    b"Aggregation(uint256 domainId,uint256 aggregationId,bytes32 root,uint256 leafCount,uint256 deadline)"
)


class AttestationError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class Aggregation:
    domain_id: int
    aggregation_id: int
    root: bytes
    leaf_count: int
    deadline: int  # unix seconds (block time) after which the registry refuses the attestation


@dataclass(frozen=True)
class Signature:
    signer: str  # checksummed address
    signature: bytes  # 65 bytes r || s || v


def _u256(name: str, v: int) -> bytes:
    if not 0 <= v < 2**256:
        raise AttestationError("ATTEST_RANGE", f"{name} must be a uint256, got {v}")
    return v.to_bytes(32, "big")


def _address(name: str, addr: str) -> bytes:
    h = addr[2:] if addr.startswith(("0x", "0X")) else addr
    try:
        raw = bytes.fromhex(h)
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise AttestationError("ATTEST_ADDRESS", f"{name} must be a 20-byte hex address, got {addr!r}")
    return raw


def _domain(chain_id: int, registry: str) -> dict[str, Any]:
    _u256("chain_id", chain_id)
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": "0x" + _address("registry", registry).hex(),
    }


def _checked(agg: Aggregation) -> dict[str, Any]:
    if len(agg.root) != 32:
        raise AttestationError("ATTEST_ROOT", f"root must be 32 bytes, got {len(agg.root)}")
    for name, v in (
        ("domain_id", agg.domain_id),
        ("aggregation_id", agg.aggregation_id),
        ("leaf_count", agg.leaf_count),
        ("deadline", agg.deadline),
    ):
        _u256(name, v)
    return {
        "domainId": agg.domain_id,
        "aggregationId": agg.aggregation_id,
        "root": agg.root,
        "leafCount": agg.leaf_count,
        "deadline": agg.deadline,
    }


def _typed(
    chain_id: int, registry: str, primary: str, fields: list[dict[str, str]], msg: dict[str, Any]
) -> SignableMessage:
    return encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                primary: fields,
            },
            "primaryType": primary,
            "domain": _domain(chain_id, registry),
            "message": msg,
        }
    )


def _digest(m: SignableMessage) -> bytes:
    return keccak256(b"\x19" + bytes(m.version) + bytes(m.header) + bytes(m.body))


def domain_separator(chain_id: int, registry: str) -> bytes:
    return bytes(
        _typed(
            chain_id,
            registry,
            "Aggregation",
            AGGREGATION_TYPE,
            {"domainId": 0, "aggregationId": 0, "root": bytes(32), "leafCount": 0, "deadline": 0},
        ).header
    )


def aggregation_message(agg: Aggregation, chain_id: int, registry: str) -> SignableMessage:
    return _typed(chain_id, registry, "Aggregation", AGGREGATION_TYPE, _checked(agg))


def aggregation_digest(agg: Aggregation, chain_id: int, registry: str) -> bytes:
    """The EIP-712 digest; equals SheafRegistry.aggregationDigest(...) on that chain and registry."""
    return _digest(aggregation_message(agg, chain_id, registry))


def sign_message(message: SignableMessage, private_key: str | bytes) -> Signature:
    """eth_account's signature of an EIP-712 message as the registry takes it (r | s | v, low s)."""
    signed = Account.sign_message(message, private_key)
    r, s, v = int(signed.r), int(signed.s), int(signed.v)
    if s > SECP256K1_N // 2:  # eth-keys already produces low s; keep the invariant explicit
        s, v = SECP256K1_N - s, 55 - v
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])
    return Signature(Account.from_key(private_key).address, sig)


def sign_aggregation(
    agg: Aggregation, chain_id: int, registry: str, private_keys: Sequence[str | bytes]
) -> list[Signature]:
    """Signatures of every key, sorted by ascending signer address (the order the registry requires)."""
    message = aggregation_message(agg, chain_id, registry)
    sigs = [sign_message(message, k) for k in private_keys]
    signers = [s.signer.lower() for s in sigs]
    if len(set(signers)) != len(signers):
        raise AttestationError("ATTEST_DUPLICATE_SIGNER", "private_keys contains the same key twice")
    return sorted(sigs, key=lambda s: int(s.signer, 16))


def _recover(message: SignableMessage, signature: bytes) -> str:
    if len(signature) != 65:
        raise AttestationError("ATTEST_SIG_LENGTH", f"signature must be 65 bytes, got {len(signature)}")
    v = signature[64]
    if v not in (27, 28):
        raise AttestationError("ATTEST_SIG_V", f"signature v must be 27 or 28, got {v}")
    if int.from_bytes(signature[32:64], "big") > SECP256K1_N // 2:
        raise AttestationError("ATTEST_SIG_HIGH_S", "signature s is in the upper half (malleable)")
    return str(Account.recover_message(message, signature=signature))


def recover_signer(agg: Aggregation, chain_id: int, registry: str, signature: bytes) -> str:
    return _recover(aggregation_message(agg, chain_id, registry), signature)


# -- refusals -------------------------------------------------------------------------------------


def refusal_message(
    batch_id: int, agg: Aggregation, code: str, bad: Sequence[bytes], chain_id: int, registry: str
) -> SignableMessage:
    """What an operator signs to refuse batch `batch_id` = `agg` (refusals fail batches, so they are
    authenticated like signatures, and bound to the chain, the registry and the batch's content)."""
    msg = _checked(agg) | {"batchId": _int(batch_id), "code": code, "badHash": keccak256(b"".join(bad))}
    return _typed(chain_id, registry, "Refusal", REFUSAL_TYPE, msg)


def _int(v: int) -> int:
    _u256("batch_id", v)
    return v


def sign_refusal(
    key: str | bytes,
    batch_id: int,
    agg: Aggregation,
    code: str,
    bad: Sequence[bytes],
    chain_id: int,
    registry: str,
) -> bytes:
    return sign_message(refusal_message(batch_id, agg, code, bad, chain_id, registry), key).signature


def recover_refusal(
    signature: bytes,
    batch_id: int,
    agg: Aggregation,
    code: str,
    bad: Sequence[bytes],
    chain_id: int,
    registry: str,
) -> str:
    return _recover(refusal_message(batch_id, agg, code, bad, chain_id, registry), signature)
