"""The commitment fixture (gnark Groth16 + one Pedersen commitment, keccak hash-to-field) verifies in
gnark's exported Solidity verifier on anvil, and `sheaf-gnark export-solidity` reproduces it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from deploy.anvil import ANVIL_DEV_KEYS, Anvil
from deploy.chain import deploy_contract
from deploy.compile import compile_files

ROOT = Path(__file__).resolve().parents[2]
D = ROOT / "tests" / "fixtures" / "gnark" / "groth16_commit_n2"
BIN = Path(os.environ.get("SHEAF_GNARK_BIN", ROOT / "build" / "bin" / "sheaf-gnark"))
REJECTED = (ContractCustomError, ContractLogicError, Web3RPCError)


@pytest.fixture(scope="module")
def w3() -> Iterator[Web3]:
    with Anvil() as node:
        yield Web3(Web3.HTTPProvider(node.rpc_url))


def deploy(w3: Web3, path: Path) -> Any:
    owner: LocalAccount = Account.from_key(ANVIL_DEV_KEYS[0])
    arts = compile_files({"fixtures/gnark/groth16_commit_n2/Verifier.sol": path})
    [art] = [a for k, a in arts.items() if ":" in k and a.bytecode]
    sent = deploy_contract(w3, owner, art)
    return w3.eth.contract(address=Web3.to_checksum_address(str(sent.contract_address)), abi=art.abi)


def test_commitment_proof_verifies_in_solidity(w3: Web3) -> None:
    v = deploy(w3, D / "Verifier.sol")
    cd = json.loads((D / "calldata.json").read_text())
    proof, pubs = bytes.fromhex(cd["proof"][2:]), [int(x, 16) for x in cd["public_inputs"]]
    assert len(proof) == 384  # A | B | C | D | PoK
    v.functions.verifyProof(proof, pubs).call()  # reverts on failure
    with pytest.raises(REJECTED):
        v.functions.verifyProof(proof, [pubs[0], pubs[1] + 1]).call()
    bad = bytearray(proof)
    bad[256:320] = proof[0:64]  # commitment D := A (a valid point, wrong commitment)
    with pytest.raises(REJECTED):
        v.functions.verifyProof(bytes(bad), pubs).call()


def test_export_solidity_cli_reproduces_fixture(tmp_path: Path) -> None:
    out = tmp_path / "V.sol"
    proc = subprocess.run(
        [
            str(BIN),
            "export-solidity",
            "--scheme",
            "groth16",
            "--vk",
            str(D / "vk.raw.bin"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == (D / "Verifier.sol").read_bytes()
    bad = subprocess.run(
        [str(BIN), "export-solidity", "--scheme", "plonk", "--vk", str(D / "vk.bin"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1 and "vk" in bad.stderr
