"""sheaf-deploy and SheafInference on a real anvil: `deploy` puts SheafInference next to the registry
(manifest entry, constructor = the registry), `register-model` registers a model spec file once (the
on-chain id is the spec's, sheaf.inference.model_id) and deploys an ExampleInferenceConsumer pinned
to it into the manifest; a spec the contract would refuse is refused before sending (CONFIG_INVALID)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.anvil import ANVIL_DEV_KEYS, Anvil
from deploy.api import load_manifest
from deploy.chain import connect
from deploy.cli import main
from deploy.inference import inference_contract, save_model
from sheaf.inference import SliceSpec, model_id

MODEL = [
    SliceSpec(True, 1, b"\x11" * 32, 2, 1, 0),
    SliceSpec.unproven(),
    SliceSpec(True, 3, b"\x33" * 32, 3, 0, 1, (2,)),
]


@pytest.fixture(scope="module")
def node() -> Iterator[Anvil]:
    with Anvil() as n:
        yield n


def test_register_model_and_consumer(
    node: Anvil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHEAF_DEPLOYER_KEY", ANVIL_DEV_KEYS[0])
    out = tmp_path / "dep"
    assert main(["--deployments-dir", str(out), "deploy", "--rpc-url", node.rpc_url]) == 0
    m = load_manifest(31337, out)
    assert m.contracts["SheafInference"].constructor_args_decoded == [m.contracts["SheafRegistry"].address]
    spec = tmp_path / "model.json"
    save_model(spec, MODEL)
    base = ["--deployments-dir", str(out), "register-model", "--rpc-url", node.rpc_url, "--model", str(spec)]
    assert main([*base, "--consumer-domain", "1", "--consumer-kind", "2"]) == 0
    mid = model_id(MODEL)
    assert f"model 0x{mid.hex()}: registered" in capsys.readouterr().out
    w3 = connect(node.rpc_url)
    inf = inference_contract(w3, load_manifest(31337, out))
    assert inf.functions.isRegistered(mid).call()
    assert inf.functions.modelIdOf([s.abi() for s in MODEL]).call() == mid
    m2 = load_manifest(31337, out)
    consumer = m2.contracts["ExampleInferenceConsumer"]
    assert consumer.constructor_args_decoded == [
        m.contracts["SheafInference"].address,
        "0x" + mid.hex(),
        1,
        2,
        False,
    ]
    # again: nothing sent, the consumer reused
    block = w3.eth.block_number
    assert main([*base, "--consumer-domain", "1", "--consumer-kind", "2"]) == 0
    assert "already registered" in capsys.readouterr().out
    assert w3.eth.block_number == block and load_manifest(31337, out) == m2
    # a partial model cannot get a fully-proven consumer (the constructor refuses: nothing is sent)
    assert main([*base, "--consumer-domain", "1", "--fully-proven"]) == 2
    assert "TX_FAILED" in capsys.readouterr().err
    # a spec the contract would refuse: refused here, naming the contract's error
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"slices": [SliceSpec(True, 1, b"\x11" * 32, 2, 1, 1, (0,)).to_json()]}))
    assert main([*base[:-1], str(bad)]) == 2
    err = capsys.readouterr().err
    assert "CONFIG_INVALID" in err and "SameInOutCommit(0)" in err
