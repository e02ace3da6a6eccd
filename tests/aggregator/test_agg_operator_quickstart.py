"""Issue 13 failure 8: the quick start of docs/operations.md, run as written.

The ```sh block under "Quick start (local, anvil)" is taken from the document itself and run by bash
in a scratch directory (`tests/` and `provers/` linked in, so its relative paths resolve), with only
what a reader fills in or a shared machine needs changed:
- `0x<anvil dev key N>` becomes that key (deploy.anvil.ANVIL_DEV_KEYS);
- the ports 8545, 50051 and 8080 become free ones (other tests run beside this one), and
  `aggregator run` is told those (`--rpc-url --grpc --http`, the flags the doc lists as overrides),
  the CLI's default target through its own $SHEAF_AGGREGATOR;
- `... (same flags)` is the previous operator's flags; the two lines with placeholders for output
  (`aggregator status 1-0x...`, `aggregator normalize ...`) are left out;
- after a line that starts a server in the background, the script waits until it answers (what a
  reader does by reading its log); a server that exits fails the run;
- the deployment manifest goes to the scratch directory (SHEAF_DEPLOYMENTS_DIR), not the checkout.
Every other line runs as written, under `set -euo pipefail`: the Groth16 submission and the fresh
Halo2 (ezkl) proof from `prover` must both reach FINALIZED (`prover submit` exits 1 otherwise) and
the registry address the doc names must be the one `sheaf-deploy` wrote.

Minutes of ezkl setup on a 2-core box, so it runs only with SHEAF_TEST_QUICKSTART=1 (outside the
`make test` budget; `make bench` does not run it either: run it after changing the quick start, the
prover or the SRS handling).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.anvil import ANVIL_DEV_KEYS, free_port

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operations.md"

SLOW = pytest.mark.skipif(
    os.environ.get("SHEAF_TEST_QUICKSTART") != "1",
    reason="the documented quick start with a fresh ezkl proof takes minutes: SHEAF_TEST_QUICKSTART=1",
)


def quickstart_block(doc: str) -> str:
    section = doc.split("## Quick start (local, anvil)", 1)[1].split("\n## ", 1)[0]
    m = re.search(r"```sh\n(.*?)```", section, re.S)
    assert m, "no ```sh block in the quick start"
    return m.group(1)


def _logical_lines(block: str) -> list[str]:
    out: list[str] = []
    cur = ""
    for line in block.splitlines():
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        out.append(cur + line)
        cur = ""
    return out


def runnable(block: str, rpc: int, grpc_port: int, http: int) -> str:
    lines: list[str] = []
    operator_flags = ""
    in_heredoc = False
    for line in _logical_lines(block):
        line = re.sub(r"0x<anvil dev key (\d)>", lambda m: ANVIL_DEV_KEYS[int(m.group(1))], line)
        line = line.replace("8545", str(rpc)).replace("50051", str(grpc_port)).replace("8080", str(http))
        code = line.split(" #", 1)[0].rstrip() if not in_heredoc else line
        if code.startswith("cat > ") and "<<" in code:
            in_heredoc = True
        elif in_heredoc and code.strip() == "TOML":
            in_heredoc = False
        if in_heredoc or not code.strip() or code.lstrip().startswith("#"):
            lines.append(line)
            continue
        if "1-0x..." in code or code.startswith("aggregator normalize"):
            continue  # placeholders for a value printed earlier
        if " aggregator operator --target" in code:
            operator_flags = code.split("aggregator operator", 1)[1].rsplit("&", 1)[0]
        if "aggregator operator ... (same flags)" in code:
            assert operator_flags, "the doc's second operator refers to flags never given"
            code = code.replace("... (same flags)", operator_flags.strip())
        if re.search(r"\baggregator run\b", code):
            code = code.replace(
                "aggregator run ",
                f"aggregator run --rpc-url http://127.0.0.1:{rpc} --grpc 127.0.0.1:{grpc_port} "
                f"--http 127.0.0.1:{http} ",
            )
        lines.append(code)
        if code.startswith("anvil "):
            lines.append(
                f"until curl -sf -H 'Content-Type: application/json' -d "
                f'\'{{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}}\' '
                f"http://127.0.0.1:{rpc} >/dev/null; do sleep 0.2; done"
            )
        if re.search(r"\baggregator run\b", code):
            lines.append("AGG_PID=$!")
            lines.append(
                f"until curl -sf http://127.0.0.1:{http}/healthz >/dev/null; do "
                "kill -0 $AGG_PID || { echo 'aggregator run exited' >&2; exit 3; }; sleep 0.5; done"
            )
    return "\n".join(["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT", *lines, ""])


def test_transform_keeps_every_documented_command() -> None:
    """Runs always (no ezkl): the quick start parses and every command survives the transform."""
    block = quickstart_block(DOC.read_text())
    script = runnable(block, 18545, 150051, 18080)
    for must in (
        "sheaf-deploy deploy",
        "sheaf-deploy configure",
        "aggregator run --rpc-url http://127.0.0.1:18545",
        "prover prove --config provers/examples/slices.toml --slices layer1",
        "prover submit --proofs proofs/proofs.json --aggregator 127.0.0.1:150051",
    ):
        assert must in script, must
    assert script.count("aggregator operator --target 127.0.0.1:150051") == 2
    assert "<anvil dev key" not in script and "(same flags)" not in script


@SLOW
def test_quickstart_as_documented(tmp_path: Path) -> None:
    block = quickstart_block(DOC.read_text())
    rpc, grpc_port, http = free_port(), free_port(), free_port()
    script = runnable(block, rpc, grpc_port, http)
    for name in ("tests", "provers"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "quickstart.sh").write_text(script)
    env = dict(os.environ)
    bins = [
        ROOT / "tools",
        ROOT / "node_modules" / ".bin",
        Path(sys.executable).parent,
        ROOT / "build" / "bin",
    ]
    env["PATH"] = os.pathsep.join([*(str(b) for b in bins), env.get("PATH", "")])
    env.pop("SHEAF_SRS", None)  # the doc: "leave SHEAF_SRS unset here"
    # sheaf-deploy writes the manifest under the repo (deploy.manifest); the aggregator reads
    # ./deployments: the same place when run from the repo root as the doc says; here both are
    # pointed at the scratch directory so the shared checkout is left alone
    env["SHEAF_DEPLOYMENTS_DIR"] = str(tmp_path / "deployments")
    env["SHEAF_AGGREGATOR"] = f"127.0.0.1:{grpc_port}"  # commands that rely on the default :50051
    r = subprocess.run(
        ["bash", "quickstart.sh"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=3600
    )
    log = tmp_path / "quickstart.log"
    log.write_text(f"--- script\n{script}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}")
    assert r.returncode == 0, f"the quick start failed (exit {r.returncode}); see {log}\n{r.stderr[-4000:]}"
    assert '"FINALIZED"' in r.stdout and '"verified_on_chain": true' in r.stdout  # aggregator submit
    # prover submit's table: the fresh ezkl proof, aggregated and included on chain (it exits 1
    # unless every proof is FINALIZED and included)
    assert re.search(r"^layer1\s+ezkl\s.*\b(ATTESTED|RECURSIVE)\b.*\byes\s*$", r.stdout, re.M), r.stdout[
        -3000:
    ]
    manifest = json.loads((tmp_path / "deployments" / "31337.json").read_text())
    named = re.search(r"--registry (0x[0-9a-fA-F]{40})", block)
    assert named and json.dumps(manifest).lower().count(named.group(1).lower()) >= 1, (
        "the registry address in the doc is not the one sheaf-deploy wrote"
    )
