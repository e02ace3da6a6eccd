"""EIP-712 attestation of an aggregation, as SheafRegistry.submitAttestedAggregation checks it.

Typed data: domain {name "Sheaf", version "1", chainId, verifyingContract = registry};
struct Aggregation(uint256 domainId,uint256 aggregationId,bytes32 root,uint256 leafCount).
Signatures are 65 bytes r || s || v (v in {27, 28}, low s) and the registry wants them ordered by
strictly ascending signer address: `sign_aggregation` returns them in that order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_account import Account

from sheaf.hashing import keccak256

DOMAIN_NAME = "Sheaf"
DOMAIN_VERSION = "1"
# secp256k1 group order
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


DOMAIN_TYPEHASH = keccak256(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
AGGREGATION_TYPEHASH = keccak256(
    b"Aggregation(uint256 domainId,uint256 aggregationId,bytes32 root,uint256 leafCount)"
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


def domain_separator(chain_id: int, registry: str) -> bytes:
    return keccak256(
        DOMAIN_TYPEHASH
        + keccak256(DOMAIN_NAME.encode())
        + keccak256(DOMAIN_VERSION.encode())
        + _u256("chain_id", chain_id)
        + b"\x00" * 12
        + _address("registry", registry)
    )


def struct_hash(agg: Aggregation) -> bytes:
    if len(agg.root) != 32:
        raise AttestationError("ATTEST_ROOT", f"root must be 32 bytes, got {len(agg.root)}")
    return keccak256(
        AGGREGATION_TYPEHASH
        + _u256("domain_id", agg.domain_id)
        + _u256("aggregation_id", agg.aggregation_id)
        + agg.root
        + _u256("leaf_count", agg.leaf_count)
    )


def aggregation_digest(agg: Aggregation, chain_id: int, registry: str) -> bytes:
    """The EIP-712 digest; equals SheafRegistry.aggregationDigest(...) on that chain and registry."""
    return keccak256(b"\x19\x01" + domain_separator(chain_id, registry) + struct_hash(agg))


def sign_digest(digest: bytes, private_key: str | bytes) -> Signature:
    signed = Account.unsafe_sign_hash(digest, private_key)
    r, s, v = int(signed.r), int(signed.s), int(signed.v)
    if s > SECP256K1_N // 2:  # eth-keys already produces low s; keep the invariant explicit
        s, v = SECP256K1_N - s, 55 - v
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])
    return Signature(Account.from_key(private_key).address, sig)


def sign_aggregation(
    agg: Aggregation, chain_id: int, registry: str, private_keys: Sequence[str | bytes]
) -> list[Signature]:
    """Signatures of every key, sorted by ascending signer address (the order the registry requires)."""
    digest = aggregation_digest(agg, chain_id, registry)
    sigs = [sign_digest(digest, k) for k in private_keys]
    signers = [s.signer.lower() for s in sigs]
    if len(set(signers)) != len(signers):
        raise AttestationError("ATTEST_DUPLICATE_SIGNER", "private_keys contains the same key twice")
    return sorted(sigs, key=lambda s: int(s.signer, 16))


def recover_signer(agg: Aggregation, chain_id: int, registry: str, signature: bytes) -> str:
    if len(signature) != 65:
        raise AttestationError("ATTEST_SIG_LENGTH", f"signature must be 65 bytes, got {len(signature)}")
    digest = aggregation_digest(agg, chain_id, registry)
    v = signature[64]
    if v not in (27, 28):
        raise AttestationError("ATTEST_SIG_V", f"signature v must be 27 or 28, got {v}")
    if int.from_bytes(signature[32:64], "big") > SECP256K1_N // 2:
        raise AttestationError("ATTEST_SIG_HIGH_S", "signature s is in the upper half (malleable)")
    return str(Account._recover_hash(digest, signature=signature))
