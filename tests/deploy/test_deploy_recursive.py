"""The recursive path end to end on a real anvil, with the real gnark/aggregation outer circuit.

`sheaf-deploy deploy --recursive-batch 1` exports the outer verifier (sheaf-gnark aggregate setup:
compile + INSECURE dev setup, or the cached keys), compiles it with the solc shim, deploys it with
Groth16AggregationAdapter and plugs it into SheafRegistry; `sheaf-deploy verify` source-verifies it
(full match, from build/recursion/AggregationVerifier_b1_p1.sol). A real snarkjs Groth16 proof is
aggregated by `sheaf-gnark aggregate prove --batch 1` and the outer proof is submitted to the
registry: accepted as RECURSIVE, its leaf included (path from aggregator/merkle.py), and rejected
for another leaf, extra leaves in either order, another leaf count, a tampered proof, a replay of
a used id and a replay by anyone but the domain's submitter.

Cost: with an empty $SHEAF_CACHE the batch-1 dev setup runs here (see docs/contracts.md for the
measured minutes); with cached keys the module takes ~2-3 min (circuit compile + key load + prove).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError

from aggregator.leaves import leaf_statement_hash, snarkjs_leaf
from aggregator.merkle import merkle_path, merkle_root, verify_path
from deploy.anvil import ANVIL_DEV_KEYS, Anvil
from deploy.api import configure_registry, deploy_all, deploy_recursive_verifier, load_manifest, registry
from deploy.chain import connect, transact
from deploy.cli import main
from deploy.compile import compile_contracts
from deploy.errors import DeployError
from deploy.recursive import ExportedVerifier, OuterProof, outer_cache_path, prove_outer, save_outer
from deploy.source_verify import FULL, verify_manifest
from normalizers.api import Normalizer, ProofInput
from normalizers.statement import keccak256
from sheaf.paths import REPO_ROOT

SNARKJS = REPO_ROOT / "tests" / "fixtures" / "snarkjs" / "mul1_groth16"
GNARK_BATCH = REPO_ROOT / "gnark" / "aggregation" / "testdata" / "batch_p1.json"
RECURSIVE = 1
D_OWN, D_OTHER, D_OPEN = 1, 2, 3  # submitter: the owner / another tenant / none (no recursive route)

GNARK_N3 = REPO_ROOT / "tests" / "fixtures" / "gnark" / "groth16_n3"  # 3 public inputs, like the outer
slow = pytest.mark.slow  # real outer-circuit setup (cold cache) and prove
outer_keys = pytest.mark.outer_keys  # uses the b1_p1 keys: runs last (tests/conftest.py)


def selector(sig: str) -> str:
    return "0x" + keccak256(sig.encode())[:4].hex()


def reverts_with(fn: Any, sender: str, error_sig: str) -> None:
    with pytest.raises((ContractCustomError, ContractLogicError)) as e:
        fn.call({"from": sender})
    data = getattr(e.value, "data", None) or str(e.value)
    assert selector(error_sig) in str(data), f"expected {error_sig}, got {data}"


def _snarkjs_leaf(i: int) -> dict[str, Any]:
    return snarkjs_leaf(
        (SNARKJS / "verification_key.json").read_bytes(),
        (SNARKJS / f"proof{i}.json").read_bytes(),
        (SNARKJS / f"public{i}.json").read_bytes(),
    )


@pytest.fixture(scope="module")
def node() -> Iterator[Anvil]:
    with Anvil() as n:
        yield n


@pytest.fixture(scope="module")
def owner() -> LocalAccount:
    acct: LocalAccount = Account.from_key(ANVIL_DEV_KEYS[0])
    return acct


@pytest.fixture(scope="module")
def base(node: Anvil, owner: LocalAccount, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Contract]:
    """Registry deployed (no recursive verifier yet), three domains."""
    out = tmp_path_factory.mktemp("deployments")
    deploy_all(node.rpc_url, ANVIL_DEV_KEYS[0], out_dir=out)
    w3 = connect(node.rpc_url)
    reg = registry(w3, load_manifest(31337, out))
    other = Account.from_key(ANVIL_DEV_KEYS[1]).address
    configure_registry(w3, owner, reg, domains=[(D_OWN, owner.address), (D_OTHER, other), (D_OPEN, "")])
    return out, reg


@pytest.fixture(scope="module")
def deployed(node: Anvil, base: tuple[Path, Contract]) -> tuple[Path, Contract]:
    out, reg = base
    assert reg.functions.aggregationVerifier().call() == "0x" + "00" * 20
    mp = pytest.MonkeyPatch()
    mp.setenv("SHEAF_DEPLOYER_KEY", ANVIL_DEV_KEYS[0])
    try:
        rc = main(
            ["--deployments-dir", str(out), "deploy", "--rpc-url", node.rpc_url, "--recursive-batch", "1"]
        )
    finally:
        mp.undo()
    assert rc == 0
    return out, reg


@pytest.fixture(scope="module")
def outer() -> OuterProof:
    leaves = [_snarkjs_leaf(0)]
    p = prove_outer(1, leaves)  # always proved here: this exercises the prover CLI
    print(f"\nouter prove b1: wall {p.wall_s}s prove {p.prove_s}s peak RSS {p.peak_rss_mib} MiB")
    save_outer(p, outer_cache_path(1, 1, p.circuit_hash, leaves))  # bench/gas.py reuses it
    return p


@slow
@outer_keys
def test_deploy_records_and_source_verifies_the_generated_verifier(
    node: Anvil, owner: LocalAccount, deployed: tuple[Path, Contract], capsys: pytest.CaptureFixture[str]
) -> None:
    out, reg = deployed
    m = load_manifest(31337, out)
    v, a = m.contracts["AggregationVerifier_b1_p1"], m.contracts["Groth16AggregationAdapter_b1_p1"]
    assert v.source_path == "build/recursion/AggregationVerifier_b1_p1.sol"
    assert v.solidity_name == "Verifier" and a.solidity_name == "Groth16AggregationAdapter"
    assert a.constructor_args_decoded == [v.address]
    assert v.extra["batch"] == 1 and v.extra["npub"] == 1 and v.extra["insecure_setup"] is True
    ch = v.extra["circuit_hash"]
    src = (REPO_ROOT / v.source_path).read_text()
    assert f"outer circuit {ch}" in src and "function verifyProof(" in src
    assert m.recursive["adapter"] == a.address and m.recursive["registry"] == reg.address
    assert reg.functions.aggregationVerifier().call() == a.address
    w3 = connect(node.rpc_url)
    adapter = w3.eth.contract(
        address=Web3.to_checksum_address(a.address), abi=compile_contracts()["Groth16AggregationAdapter"].abi
    )
    assert adapter.functions.verifier().call() == v.address

    # idempotent through the Python API: same code and args at live addresses, registry already set
    block = w3.eth.block_number
    r = deploy_recursive_verifier(node.rpc_url, ANVIL_DEV_KEYS[0], batch=1, out_dir=out)
    assert (r.verifier, r.adapter, r.configured_tx) == (v.address, a.address, None)
    assert w3.eth.block_number == block
    assert r.exported.circuit_hash == ch and not r.exported.keys_created
    # a registry-plan redeploy keeps the recursive entries it does not manage
    deploy_all(node.rpc_url, ANVIL_DEV_KEYS[0], out_dir=out)
    assert (
        load_manifest(31337, out).contracts["AggregationVerifier_b1_p1"]
        == r.manifest.contracts["AggregationVerifier_b1_p1"]
    )

    # source verification: the generated verifier is a full match too (sources read from build/recursion)
    res = {x.name: x for x in verify_manifest(w3, load_manifest(31337, out), out_dir=out)}
    assert {k: x.status for k, x in res.items()} == {
        "SheafRegistry": FULL,
        "SheafInference": FULL,
        "AggregationVerifier_b1_p1": FULL,
        "Groth16AggregationAdapter_b1_p1": FULL,
    }
    d = Path(str(res["AggregationVerifier_b1_p1"].sourcify_dir))
    assert (d / "sources" / v.source_path).read_text() == src
    ex = json.loads(
        (out / "explorer" / "31337" / "AggregationVerifier_b1_p1" / "verification.json").read_text()
    )
    assert ex["contractname"] == f"{v.source_path}:Verifier"
    assert main(["--deployments-dir", str(out), "verify", "--rpc-url", node.rpc_url]) == 0
    printed = capsys.readouterr().out.splitlines()
    for name in res:  # one line per contract of the manifest, each a full match
        assert any(ln.split()[:1] == [name] and " full " in ln for ln in printed), (name, printed)
    assert sum(" full " in ln for ln in printed) == len(res) == 4


def test_recursive_deploy_errors(
    node: Anvil,
    base: tuple[Path, Contract],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, _ = base
    # only the registry owner may plug in a verifier: refused before any setup work
    with pytest.raises(DeployError) as e:
        deploy_recursive_verifier(node.rpc_url, ANVIL_DEV_KEYS[2], batch=1, out_dir=out)
    assert e.value.code == "NOT_OWNER" and "owner" in e.value.message
    args = ["--deployments-dir", str(out), "deploy", "--rpc-url", node.rpc_url, "--recursive-batch", "1"]
    monkeypatch.setenv("SHEAF_DEPLOYER_KEY", ANVIL_DEV_KEYS[0])
    monkeypatch.setenv("SHEAF_GNARK_BIN", str(out / "no-such-binary"))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "error: GNARK_MISSING:" in err and "SHEAF_GNARK_BIN" in err
    assert main([*args[:-1], "0"]) == 2  # batch 0 is refused before running anything
    assert "error: RECURSION_SETUP_FAILED:" in capsys.readouterr().err


@slow
@outer_keys
def test_real_outer_proof_on_the_registry(
    node: Anvil, owner: LocalAccount, deployed: tuple[Path, Contract], outer: OuterProof
) -> None:
    out, reg = deployed
    w3 = connect(node.rpc_url)
    m = load_manifest(31337, out)
    assert outer.circuit_hash == m.contracts["AggregationVerifier_b1_p1"].extra["circuit_hash"]

    # the leaf the circuit committed to is the Sheaf statement hash the Python normalizer computes
    leaf0 = _snarkjs_leaf(0)
    n = Normalizer(groth16_backend="groth16py")
    try:
        env = n.normalize(
            ProofInput(
                "groth16",
                "snarkjs",
                (SNARKJS / "proof0.json").read_bytes(),
                (SNARKJS / "verification_key.json").read_bytes(),
                (SNARKJS / "public0.json").read_bytes(),
            )
        )
    finally:
        n.close()
    leaf = env.statement_hash
    assert outer.leaves == [leaf] == [leaf_statement_hash(leaf0)] and outer.count == 1
    assert outer.root == merkle_root([leaf])
    adapter_abi = compile_contracts()["Groth16AggregationAdapter"].abi
    adapter = w3.eth.contract(address=Web3.to_checksum_address(m.recursive["adapter"]), abi=adapter_abi)
    assert [int(x) for x in adapter.functions.publicInputs(outer.root, 1).call()] == outer.public_inputs
    assert len(outer.proof) == 384  # A|B|C + one BSB22 commitment + PoK

    # other real statements: another snarkjs proof of the same circuit, a gnark proof of another one
    other = leaf_statement_hash(_snarkjs_leaf(1))
    gnark_leaf = leaf_statement_hash(json.loads(GNARK_BATCH.read_text())["leaves"][0])
    assert len({leaf, other, gnark_leaf}) == 3
    bad_proof = bytearray(outer.proof)
    bad_proof[70] ^= 1  # inside B
    proof = outer.proof
    me = owner.address

    sub = reg.functions.submitRecursiveAggregation
    sub_root = reg.functions.submitRecursiveAggregationRoot
    for leaves in ([other], [gnark_leaf], [leaf, other], [other, leaf], [leaf, leaf]):
        reverts_with(sub(D_OWN, 1, leaves, proof), me, "ProofInvalid()")
    reverts_with(sub(D_OWN, 1, [leaf], bytes(bad_proof)), me, "ProofInvalid()")
    reverts_with(sub_root(D_OWN, 1, outer.root, 2, proof), me, "ProofInvalid()")  # another leaf count
    reverts_with(sub_root(D_OWN, 1, merkle_root([other]), 1, proof), me, "ProofInvalid()")
    with pytest.raises(ContractLogicError, match="invalid proof length"):  # commitment stripped
        sub(D_OWN, 1, [leaf], proof[:256]).call({"from": me})

    # accepted: RECURSIVE, leaf included with the Python path, nothing else included
    sent = transact(w3, owner, sub(D_OWN, 1, [leaf], proof), "submitRecursiveAggregation", gas=2_000_000)
    ev = reg.events.AggregationSubmitted().process_receipt(sent.receipt)[0].args
    assert (ev.domainId, ev.aggregationId, ev.root, ev.leafCount, ev.kind) == (
        D_OWN,
        1,
        outer.root,
        1,
        RECURSIVE,
    )
    assert tuple(reg.functions.getAggregation(D_OWN, 1).call())[:3] == (outer.root, 1, RECURSIVE)
    print(f"\nrecursive submission (real outer verifier, 1 leaf, leaves variant): {sent.gas_used} gas")
    mp = merkle_path([leaf], 0)
    assert verify_path(outer.root, leaf, list(mp.path), 1, 0)
    kind = reg.functions.verifyProofAggregationKind
    assert tuple(kind(D_OWN, 1, leaf, list(mp.path), 1, 0).call()) == (True, RECURSIVE)
    assert tuple(kind(D_OWN, 1, other, list(mp.path), 1, 0).call()) == (False, 0)
    assert tuple(kind(D_OWN, 1, leaf, list(mp.path), 2, 0).call()) == (False, 0)
    assert tuple(kind(D_OTHER, 1, leaf, list(mp.path), 1, 0).call()) == (False, 0)

    # replays: the used id again; the next id or another domain by anyone but that domain's submitter
    stranger = Account.from_key(ANVIL_DEV_KEYS[3]).address
    reverts_with(sub(D_OWN, 1, [leaf], proof), me, "UnexpectedAggregationId(uint256,uint256,uint256)")
    reverts_with(sub(D_OWN, 2, [leaf], proof), stranger, "NotSubmitter(uint256,address)")
    reverts_with(sub(D_OTHER, 1, [leaf], proof), me, "NotSubmitter(uint256,address)")
    reverts_with(sub_root(D_OTHER, 1, outer.root, 1, proof), me, "NotSubmitter(uint256,address)")
    # The outer proof binds (root, leafCount) only, not (chain, registry, domain, id): the domain's own
    # submitter can re-record the same proven leaves (sound, every leaf is still a verified statement,
    # but it burns an id); a domain without a submitter takes no recursive submission at all, from
    # anyone (issue 13, see docs/contracts.md).
    assert sub(D_OWN, 2, [leaf], proof).call({"from": me}) == outer.root
    reverts_with(sub(D_OPEN, 1, [leaf], proof), stranger, "SubmitterNotSet(uint256)")
    reverts_with(sub(D_OPEN, 1, [leaf], proof), me, "SubmitterNotSet(uint256)")


def test_generated_verifier_pipeline_with_a_pre_exported_gnark_verifier(
    node: Anvil, owner: LocalAccount, base: tuple[Path, Contract], tmp_path: Path
) -> None:
    """Fast twin of the slow tests: the same compile/deploy/configure/manifest/verify path, fed a real
    gnark-exported verifier with 3 public inputs (fixture groth16_n3) instead of the outer circuit's."""
    out, reg = base
    rel = Path("build") / "recursion" / f"test-{os.getpid()}" / "AggregationVerifier_fixture.sol"
    src = REPO_ROOT / rel
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text((GNARK_N3 / "Verifier.sol").read_text())
    try:
        ev = ExportedVerifier(
            batch=7,
            npub=1,
            circuit_hash="f" * 64,
            nb_constraints=0,
            keys_dir="",
            keys_created=False,
            insecure_setup=True,
            compile_s=0.0,
            setup_s=0.0,
            wall_s=0.0,
            source_path=str(rel),
        )
        r = deploy_recursive_verifier(node.rpc_url, ANVIL_DEV_KEYS[0], batch=7, exported=ev, out_dir=out)
        assert r.configured_tx is not None
        assert reg.functions.aggregationVerifier().call() == r.adapter
        m = load_manifest(31337, out)
        assert m.contracts["AggregationVerifier_b7_p1"].source_path == str(rel)
        assert m.recursive["active"] == "b7_p1" and m.recursive["set_tx"] == r.configured_tx

        # the fixture's public inputs read as [root_hi, root_lo, leafCount]: accepted as RECURSIVE
        cd = json.loads((GNARK_N3 / "calldata.json").read_text())
        pubs = [int(x, 16) for x in cd["public_inputs"]]
        root, count, proof = (
            ((pubs[0] << 128) | pubs[1]).to_bytes(32, "big"),
            pubs[2],
            bytes.fromhex(cd["proof"][2:]),
        )
        w3 = connect(node.rpc_url)
        dom = 9
        configure_registry(w3, owner, reg, domains=[(dom, owner.address)])
        sub_root = reg.functions.submitRecursiveAggregationRoot
        reverts_with(sub_root(dom, 1, root, count + 1, proof), owner.address, "ProofInvalid()")
        transact(w3, owner, sub_root(dom, 1, root, count, proof), "submit", gas=1_000_000)
        assert tuple(reg.functions.getAggregation(dom, 1).call())[:3] == (root, count, RECURSIVE)

        def status() -> dict[str, str]:
            return {x.name: x.status for x in verify_manifest(w3, load_manifest(31337, out), out_dir=out)}

        assert status()["AggregationVerifier_b7_p1"] == FULL
        src.write_text(src.read_text() + "\n// a comment changes only the metadata hash\n")
        assert status()["AggregationVerifier_b7_p1"] == "partial"
        src.write_text(src.read_text().replace("ALPHA_X = ", "ALPHA_X = 1 + ", 1))  # a code change
        assert status()["AggregationVerifier_b7_p1"] == "mismatch"
        src.unlink()
        assert status()["AggregationVerifier_b7_p1"] == "mismatch"  # deleted generated source
    finally:
        shutil.rmtree(src.parent, ignore_errors=True)
