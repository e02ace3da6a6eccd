"""`sheaf-deploy recursive-tree`: the recursion tree's verifiers deployed through the CLI (issue 14).

In-process through `main(argv)` (the console script is `sys.exit(main())`). Refusals are coded
(`error: <CODE>: ...` on stderr, exit 2, no traceback) and checked before anything slow: a bad plan,
both plan spellings at once, an unreachable node, no manifest, no key, not the registry owner, no
sheaf-gnark. The deploy path runs on a real anvil with a stand-in `sheaf-gnark tree export-solidity`
($SHEAF_GNARK_BIN) that answers with the committed fixture verifiers of plan tree_k2_p1_f2_d1
(tests/fixtures/tree/, the ones tests/deploy/test_deploy_tree.py deploys) and, like the real binary
without keys, fails for a key cache that does not exist or another plan: no gnark compile or setup runs.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.anvil import ANVIL_DEV_KEYS, Anvil, free_port
from deploy.api import deploy_all, load_manifest, registry
from deploy.chain import connect
from deploy.cli import main
from sheaf.paths import REPO_ROOT

FIX = REPO_ROOT / "tests" / "fixtures" / "tree" / "tree_k2_p1_f2_d1"

EXPORT_STANDIN = """
import json, sys
from pathlib import Path

FIX = Path({fix!r})
args = sys.argv[1:]
Path({log!r}).open("a").write(json.dumps(args) + "\\n")
opts = dict(zip(args[2::2], args[3::2]))
plan = [opts.get(f) for f in ("--k", "--npub", "--fanin", "--levels")]
cache = opts.get("--cache")
keys = plan == ["2", "1", "2", "1"] and cache and Path(cache).is_dir()
if args[:2] != ["tree", "export-solidity"] or not keys:
    print(f"KEYS_MISSING: no keys for plan {{plan}} under {{cache}}", file=sys.stderr)
    sys.exit(1)
levels = []
for lv in json.loads((FIX / "proofs.json").read_text())["levels"]:
    dst = Path(opts["--out-dir"]) / f"Verifier_l{{lv['level']}}.sol"
    dst.write_text((FIX / lv["verifier"]).read_text().split("\\n", 2)[2])  # without export's header
    row = {{k: lv[k] for k in ("level", "circuit_hash", "nb_constraints")}}
    levels.append({{**row, "verifier": str(dst)}})
print(json.dumps({{"levels": levels, "insecure": True}}))
"""


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse: --help, usage errors
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _refused(capsys: pytest.CaptureFixture[str], code: str, *argv: str) -> str:
    rc, _, err = _run(capsys, *argv)
    assert rc == 2 and err.startswith(f"error: {code}: "), (rc, err)
    return err


def test_help_documents_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(capsys, "--help")
    assert rc == 0 and "sheaf-deploy recursive-tree" in out
    rc, out, _ = _run(capsys, "recursive-tree", "--help")
    assert rc == 0 and "error: <CODE>: <message>" in out
    for flag in ("--plan", "--k", "--npub", "--fanin", "--levels", "--cache", "--out", "--no-configure"):
        assert flag in out, flag


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--plan", "tree_k3_p1_f2_d1"], "power of two"),
        (["--plan", "k2_p1"], "not a tree plan name"),
        (["--fanin", "6"], "power of two"),
        (["--levels", "9"], "levels in [0, 8]"),
        (["--plan", "k2_p1_f2_d1", "--k", "4"], "not both"),
    ],
)
def test_bad_plans_are_refused_before_anything_runs(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    # the node named does not exist: a plan refusal comes first
    err = _refused(capsys, "CONFIG_INVALID", "recursive-tree", "--rpc-url", "http://127.0.0.1:1", *argv)
    assert needle in err


def test_unreachable_node_and_bad_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    _refused(capsys, "RPC_UNREACHABLE", "recursive-tree", "--plan", "k2_p1_f2_d1", "--rpc-url", url)
    rc, _, err = _run(capsys, "recursive-tree", "--k", "two")
    assert rc == 2 and "invalid int value" in err


@pytest.fixture(scope="module")
def node() -> Iterator[Anvil]:
    with Anvil() as n:
        yield n


def test_deploys_the_tree_through_the_cli(
    node: Anvil, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "gnark-calls.jsonl"
    binary = tmp_path / "sheaf-gnark"
    binary.write_text(f"#!{sys.executable}\n" + EXPORT_STANDIN.format(fix=str(FIX), log=str(log)))
    binary.chmod(0o755)
    monkeypatch.setenv("SHEAF_GNARK_BIN", str(binary))
    monkeypatch.setenv("SHEAF_DEPLOYER_KEY", ANVIL_DEV_KEYS[0])
    keys = tmp_path / "tree-keys"
    keys.mkdir()
    gen = REPO_ROOT / "build" / "recursion" / f"test-cli-{os.getpid()}"
    out = tmp_path / "deployments"
    base = ["--deployments-dir", str(out), "recursive-tree", "--rpc-url", node.rpc_url]
    ok = [*base, "--plan", "k2_p1_f2_d1", "--cache", str(keys), "--out", str(gen / "tree_k2_p1_f2_d1")]
    try:
        # before `sheaf-deploy deploy`: no manifest, refused before the (minutes long) export
        _refused(capsys, "MANIFEST_MISSING", *ok)
        deploy_all(node.rpc_url, ANVIL_DEV_KEYS[0], out_dir=out)
        monkeypatch.delenv("SHEAF_DEPLOYER_KEY")
        _refused(capsys, "NO_KEY", *ok)
        monkeypatch.setenv("SHEAF_DEPLOYER_KEY", ANVIL_DEV_KEYS[1])  # not the registry's owner
        assert "--no-configure" in _refused(capsys, "NOT_OWNER", *ok)
        monkeypatch.setenv("SHEAF_DEPLOYER_KEY", ANVIL_DEV_KEYS[0])
        monkeypatch.setenv("SHEAF_GNARK_BIN", str(tmp_path / "missing"))
        _refused(capsys, "GNARK_MISSING", *ok)
        assert not log.exists()  # every refusal so far came before the export
        monkeypatch.setenv("SHEAF_GNARK_BIN", str(binary))
        # the binary has no keys for them: sheaf-gnark's own code travels in the message
        err = _refused(capsys, "RECURSION_SETUP_FAILED", *ok[:-4], "--cache", str(tmp_path / "none"))
        assert "KEYS_MISSING" in err
        assert not (load_manifest(31337, out).recursive.get("kind") == "tree")

        rc, stdout, _ = _run(capsys, *ok)
        assert rc == 0, stdout
        calls = [json.loads(x) for x in log.read_text().splitlines()]
        assert calls[-1][:10] == [
            "tree",
            "export-solidity",
            "--k",
            "2",
            "--npub",
            "1",
            "--fanin",
            "2",
            "--levels",
            "1",
        ]
        assert calls[-1][10:12] == ["--cache", str(keys)]
        m = load_manifest(31337, out)
        reg = registry(connect(node.rpc_url), m)
        adapter = m.recursive["adapter"]
        assert m.recursive["kind"] == "tree" and m.recursive["active"] == "tree_k2_p1_f2_d1"
        assert reg.functions.aggregationVerifier().call() == adapter
        assert f"adapter {adapter}; registry set (tx 0x" in stdout and "capacity 4" in stdout
        for lv, addr in enumerate(m.recursive["verifiers"]):
            assert f"level {lv}: verifier {addr}" in stdout
            assert (
                (gen / "tree_k2_p1_f2_d1" / f"Verifier_l{lv}.sol").read_text().startswith("// Generated by")
            )

        # again, the plan spelled by its dimensions: nothing redeployed, the registry already set
        block = connect(node.rpc_url).eth.block_number
        dims = ["--k", "2", "--npub", "1", "--fanin", "2", "--levels", "1"]
        rc, stdout, _ = _run(
            capsys, *base, *dims, "--cache", str(keys), "--out", str(gen / "tree_k2_p1_f2_d1")
        )
        assert rc == 0 and "registry already set" in stdout and f"adapter {adapter}" in stdout
        assert connect(node.rpc_url).eth.block_number == block
        # a plan the binary has no keys for
        err = _refused(capsys, "RECURSION_SETUP_FAILED", *base, "--levels", "2", "--cache", str(keys))
        assert "KEYS_MISSING" in err and load_manifest(31337, out).recursive["adapter"] == adapter
    finally:
        shutil.rmtree(gen, ignore_errors=True)
