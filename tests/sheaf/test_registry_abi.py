"""sheaf/abi/SheafRegistry.json is exactly what contracts/src compiles to (regenerate with
`python -m deploy.compile --write-abi`), and the error table derived from it codes real reverts."""

from __future__ import annotations

from deploy.compile import compile_contracts
from sheaf.hashing import keccak256
from sheaf.registry_abi import REGISTRY_ABI, REGISTRY_ERRORS, signature


def test_committed_abi_is_the_compiled_one() -> None:
    assert REGISTRY_ABI == compile_contracts()["SheafRegistry"].abi, (
        "contracts/src changed: run `python -m deploy.compile --write-abi`"
    )


def test_signatures_and_error_selectors() -> None:
    by_name = {e["name"]: e for e in REGISTRY_ABI if e["type"] in ("function", "error")}
    assert signature(by_name["getAggregation"]) == "getAggregation(uint256,uint256)"
    assert signature(by_name["submitAttestedAggregation"]) == (
        "submitAttestedAggregation(uint256,uint256,bytes32,uint256,uint256,bytes[])"
    )
    # a struct argument is written as its components' tuple (none of today's inputs is one)
    pair = [{"type": "uint64"}, {"type": "bytes32"}]
    f = {"name": "f", "inputs": [{"type": "tuple[]", "components": pair}]}
    assert signature(f) == "f((uint64,bytes32)[])"
    sel = keccak256(b"SignerNotOperator(uint256,address)")[:4].hex()
    assert REGISTRY_ERRORS[sel] == "SignerNotOperator(uint256,address)"
    assert len(REGISTRY_ERRORS) == sum(e["type"] == "error" for e in REGISTRY_ABI) >= 30
