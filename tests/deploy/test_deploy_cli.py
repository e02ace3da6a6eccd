"""sheaf-deploy on a real anvil: deploy + verify (full match for every contract), idempotence,
--force, source changes reported, and the error codes for bad RPC / chain id / balance / key."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from deploy.anvil import ANVIL_DEV_KEYS, Anvil, free_port
from deploy.api import load_manifest, registry
from deploy.chain import connect
from deploy.cli import main
from deploy.errors import DeployError
from deploy.source_verify import FULL, MISMATCH, PARTIAL, verify_manifest

REPO = Path(__file__).resolve().parents[2]
VK = "0x" + "ab" * 32


@pytest.fixture(scope="module")
def node() -> Iterator[Anvil]:
    with Anvil() as n:
        yield n


@pytest.fixture
def env_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SHEAF_DEPLOYER_KEY", ANVIL_DEV_KEYS[0])
    return ANVIL_DEV_KEYS[0]


def _deploy(node: Anvil, out: Path, *extra: str) -> int:
    return main(
        ["--deployments-dir", str(out), "deploy", "--rpc-url", node.rpc_url, "--consumer-vk-hash", VK, *extra]
    )


def test_deploy_verify_idempotent_force(
    node: Anvil, tmp_path: Path, env_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _deploy(node, tmp_path, "--expect-chain-id", "31337") == 0
    m = load_manifest(31337, tmp_path)
    assert set(m.contracts) == {"SheafRegistry", "SheafInference", "ExampleConsumer"}
    assert m.compiler_version == "v0.8.30+commit.73712a01"
    reg = m.contracts["SheafRegistry"]
    owner = Account.from_key(env_key).address
    assert reg.constructor_args == "0x" + "00" * 12 + owner[2:].lower()
    assert m.contracts["ExampleConsumer"].constructor_args_decoded[0] == reg.address
    assert m.contracts["SheafInference"].constructor_args_decoded == [reg.address]

    # verify: full match for every contract, Sourcify layout and explorer inputs written
    assert main(["--deployments-dir", str(tmp_path), "verify", "--rpc-url", node.rpc_url]) == 0
    out = capsys.readouterr().out
    assert out.count(" full ") == 3, out
    for dc in m.contracts.values():
        d = tmp_path / "sourcify" / "contracts" / "full_match" / "31337" / dc.address
        meta = json.loads((d / "metadata.json").read_text())
        assert dc.source_path in meta["settings"]["compilationTarget"]
        for src in meta["sources"]:
            assert (d / "sources" / src).read_text() == (REPO / src).read_text()
        ex = json.loads((tmp_path / "explorer" / "31337" / dc.name / "verification.json").read_text())
        assert ex["compilerversion"] == "v0.8.30+commit.73712a01"
        assert ex["constructorArguments"] == dc.constructor_args[2:]
        assert ex["contractname"] == f"{dc.source_path}:{dc.name}"
        std = json.loads((tmp_path / "explorer" / "31337" / dc.name / "standard-input.json").read_text())
        assert std["settings"]["optimizer"] == {"enabled": True, "runs": 200}

    # idempotent: identical code+args at a live address are not redeployed (no new block either)
    w3 = connect(node.rpc_url)
    block = w3.eth.block_number
    assert _deploy(node, tmp_path) == 0
    assert "unchanged" in capsys.readouterr().out
    assert load_manifest(31337, tmp_path) == m
    assert w3.eth.block_number == block

    # --force redeploys
    assert _deploy(node, tmp_path, "--force") == 0
    m2 = load_manifest(31337, tmp_path)
    assert m2.contracts["SheafRegistry"].address != reg.address
    assert w3.eth.block_number > block


def test_source_changes_are_reported(node: Anvil, tmp_path: Path, env_key: str) -> None:
    assert _deploy(node, tmp_path / "dep") == 0
    m = load_manifest(31337, tmp_path / "dep")
    w3 = connect(node.rpc_url)
    root = tmp_path / "repo"
    shutil.copytree(REPO / "contracts" / "src", root / "contracts" / "src")
    # a comment-only change: same code, different metadata hash => partial match only
    p = root / "contracts" / "src" / "ExampleConsumer.sol"
    p.write_text(p.read_text().replace("/// @title ExampleConsumer", "/// @title ExampleConsumer (edited)"))
    # a code change => mismatch
    p = root / "contracts" / "src" / "SheafRegistry.sol"
    p.write_text(p.read_text().replace("MAX_LEAVES = 1 << 32", "MAX_LEAVES = 1 << 31"))
    res = {r.name: r for r in verify_manifest(w3, m, root=root, out_dir=tmp_path / "v")}
    assert res["ExampleConsumer"].status == PARTIAL
    assert res["ExampleConsumer"].runtime_match == PARTIAL
    assert res["SheafRegistry"].status == MISMATCH
    assert res["SheafRegistry"].sourcify_dir is None
    assert (tmp_path / "v" / "sourcify" / "contracts" / "partial_match" / "31337").exists()
    # a deleted contract source is a mismatch for that contract only; a broken tree for all
    (root / "contracts" / "src" / "ExampleConsumer.sol").unlink()
    (root / "contracts" / "src" / "SheafRegistry.sol").write_text(
        (REPO / "contracts/src/SheafRegistry.sol").read_text()
    )
    res = {r.name: r for r in verify_manifest(w3, m, root=root, out_dir=tmp_path / "v3")}
    assert (
        res["ExampleConsumer"].status == MISMATCH and "no longer" in res["ExampleConsumer"].details["error"]
    )
    assert res["SheafRegistry"].status == FULL
    (root / "contracts" / "src" / "Merkle.sol").write_text("this is not solidity")
    assert {r.status for r in verify_manifest(w3, m, root=root, out_dir=tmp_path / "v4")} == {MISMATCH}
    # unchanged sources still give a full match
    res2 = verify_manifest(w3, m, out_dir=tmp_path / "v2")
    assert all(r.status == FULL for r in res2)


def test_immutables_are_read_from_chain(node: Anvil, tmp_path: Path, env_key: str) -> None:
    assert _deploy(node, tmp_path) == 0
    m = load_manifest(31337, tmp_path)
    [r] = [
        r for r in verify_manifest(connect(node.rpc_url), m, out_dir=tmp_path) if r.name == "ExampleConsumer"
    ]
    # registry address, domain, kind, scheme, vk hash are immutables filled from the on-chain code
    values = set(r.details["immutables"].values())
    assert "0x" + VK[2:] in values
    assert "0x" + "00" * 12 + m.contracts["SheafRegistry"].address[2:].lower() in values


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err


def test_unreachable_rpc(tmp_path: Path, env_key: str, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["--deployments-dir", str(tmp_path), "deploy", "--rpc-url", url]) == 2
    err = _err(capsys)
    assert "RPC_UNREACHABLE" in err and url in err
    assert main(["--deployments-dir", str(tmp_path), "verify", "--rpc-url", url]) == 2
    assert "RPC_UNREACHABLE" in _err(capsys)


def test_wrong_chain_id(
    node: Anvil, tmp_path: Path, env_key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        ["--deployments-dir", str(tmp_path), "deploy", "--rpc-url", node.rpc_url, "--expect-chain-id", "1"]
    )
    assert rc == 2
    err = _err(capsys)
    assert "CHAIN_ID_MISMATCH" in err and "31337" in err
    assert not (tmp_path / "31337.json").exists()


def test_insufficient_balance(
    node: Anvil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    poor = Account.create()
    monkeypatch.setenv("SHEAF_DEPLOYER_KEY", "0x" + bytes(poor.key).hex())
    assert main(["--deployments-dir", str(tmp_path), "deploy", "--rpc-url", node.rpc_url]) == 2
    err = _err(capsys)
    assert "INSUFFICIENT_BALANCE" in err and poor.address in err


def test_missing_key_and_manifest(
    node: Anvil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SHEAF_DEPLOYER_KEY", raising=False)
    assert main(["--deployments-dir", str(tmp_path), "deploy", "--rpc-url", node.rpc_url]) == 2
    assert "NO_KEY" in _err(capsys)
    assert main(["--deployments-dir", str(tmp_path / "none"), "verify", "--rpc-url", node.rpc_url]) == 2
    assert "MANIFEST_MISSING" in _err(capsys)
    with pytest.raises(DeployError) as e:
        load_manifest(31337, tmp_path / "none")
    assert e.value.code == "MANIFEST_MISSING"


def test_keystore(node: Anvil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHEAF_DEPLOYER_KEY", raising=False)
    ks = tmp_path / "key.json"
    ks.write_text(json.dumps(Account.encrypt(ANVIL_DEV_KEYS[1], "pw", iterations=2)))
    monkeypatch.setenv("SHEAF_KEYSTORE_PASSWORD", "pw")
    assert (
        main(["--deployments-dir", str(tmp_path), "deploy", "--rpc-url", node.rpc_url, "--keystore", str(ks)])
        == 0
    )
    assert load_manifest(31337, tmp_path).deployer == Account.from_key(ANVIL_DEV_KEYS[1]).address
    monkeypatch.setenv("SHEAF_KEYSTORE_PASSWORD", "wrong")
    assert (
        main(["--deployments-dir", str(tmp_path), "deploy", "--rpc-url", node.rpc_url, "--keystore", str(ks)])
        == 2
    )


def test_console_script_compile(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "sheaf-deploy"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "deploy.cli"]
    r = subprocess.run([*cmd, "compile", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    art = json.loads((tmp_path / "SheafRegistry.json").read_text())
    assert art["compiler_version"] == "v0.8.30+commit.73712a01"
    assert (
        Web3.keccak(text="verifyProofAggregation(uint256,uint256,bytes32,bytes32[],uint256,uint256)")[
            :4
        ].hex()
        in (art["runtime"])
    )


def test_configure_registry_owner_setup(
    node: Anvil,
    tmp_path: Path,
    env_key: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`sheaf-deploy configure`: domains, operators and threshold on the deployed registry, idempotent;
    a non-owner key and an impossible threshold are refused before anything is sent."""
    out = tmp_path / "dep"
    assert main(["--deployments-dir", str(out), "deploy", "--rpc-url", node.rpc_url, "--force"]) == 0
    w3 = connect(node.rpc_url)
    m = load_manifest(31337, out)
    reg = registry(w3, m)
    ops = [Account.from_key(k).address for k in ANVIL_DEV_KEYS[2:4]]
    submitter = Account.from_key(ANVIL_DEV_KEYS[1]).address
    base = ["--deployments-dir", str(out), "configure", "--rpc-url", node.rpc_url]
    args = [*base, "--domain", "7", "--domain", f"8:{submitter}", "--operator", ops[0], "--operator", ops[1]]
    capsys.readouterr()
    assert main([*args, "--threshold", "2"]) == 0
    assert "5 transaction(s) sent" in capsys.readouterr().out  # 2 domains + 2 operators + threshold
    assert [reg.functions.isOperator(o).call() for o in ops] == [True, True]
    assert reg.functions.threshold().call() == 2
    assert reg.functions.getDomain(7).call()[0] and reg.functions.getDomain(8).call()[0]
    assert main([*args, "--threshold", "2"]) == 0
    assert "0 transaction(s) sent" in capsys.readouterr().out
    assert main([*base, "--threshold", "3"]) == 2
    assert "CONFIG_INVALID" in _err(capsys)
    assert reg.functions.threshold().call() == 2
    monkeypatch.setenv("SHEAF_DEPLOYER_KEY", ANVIL_DEV_KEYS[1])
    assert main([*base, "--threshold", "1"]) == 2
    assert "NOT_OWNER" in _err(capsys)
    assert reg.functions.threshold().call() == 2
    with pytest.raises(SystemExit):
        main([*base, "--operator", "0x1234"])
