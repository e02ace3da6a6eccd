"""The Solidity package as a dapp uses it: a fresh Foundry project with this repository at lib/sheaf
(what `forge install` makes) and the documented remapping compiles docs/sdk.md's example consumer."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORGE = ROOT / "node_modules" / ".bin" / "forge"


def test_docs_example_consumer_compiles_from_lib_sheaf(tmp_path: Path) -> None:
    blocks = re.findall(r"^```solidity\n(.*?)^```", (ROOT / "docs" / "sdk.md").read_text(), re.S | re.M)
    assert len(blocks) == 1 and 'from "sheaf/contracts/src/SheafInclusion.sol"' in blocks[0]
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "sheaf").symlink_to(ROOT)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "PredictionMarket.sol").write_text(blocks[0])
    (tmp_path / "remappings.txt").write_text("sheaf/=lib/sheaf/\n")
    (tmp_path / "foundry.toml").write_text(
        '[profile.default]\nsrc = "src"\nout = "out"\nlibs = ["lib"]\n'
        f'solc = "{ROOT / "tools" / "solc"}"\noffline = true\nauto_detect_remappings = false\n'
    )
    env = dict(os.environ, PATH=f"{ROOT / 'tools'}:{ROOT / 'node_modules' / '.bin'}:{os.environ['PATH']}")
    r = subprocess.run(
        [str(FORGE), "build"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = tmp_path / "out" / "PredictionMarket.sol" / "PredictionMarket.json"
    assert out.exists(), sorted(p.name for p in (tmp_path / "out").iterdir())
    # the library's sources came from lib/sheaf, through the remapping
    assert (tmp_path / "out" / "SheafInclusion.sol").exists()
