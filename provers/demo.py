"""`make demo`: the whole system on embedded defaults, then a clean shutdown.

Stages: local anvil on loopback -> deploy + source-verify every contract -> (more stages as the
service and prover land) -> stop everything. Every stage prints what it did; any failure exits
non-zero after stopping what was started.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.anvil import ANVIL_DEV_KEYS, Anvil
from deploy.api import deploy_all
from deploy.chain import connect
from deploy.verify import FULL, verify_manifest

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORKDIR = REPO_ROOT / "build" / "demo"


@contextmanager
def stage(title: str) -> Iterator[None]:
    print(f"\n== {title}", flush=True)
    start = time.monotonic()
    yield
    print(f"   ({time.monotonic() - start:.1f}s)", flush=True)


def run(workdir: Path) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    deployments = workdir / "deployments"
    with Anvil() as node:
        with stage(f"anvil on {node.rpc_url} (chain id {node.chain_id})"):
            w3 = connect(node.rpc_url, expect_chain_id=node.chain_id)
            print(f"   block {w3.eth.block_number}")
        with stage("deploy contracts (sheaf-deploy deploy)"):
            # anvil's public dev key 0: a local chain only, never a real key.
            manifest = deploy_all(node.rpc_url, ANVIL_DEV_KEYS[0], out_dir=deployments, force=True)
            for name, c in manifest.contracts.items():
                print(f"   {name:28s} {c.address}  block {c.block_number}")
        with stage("verify sources against on-chain code (sheaf-deploy verify, Sourcify rules)"):
            results = verify_manifest(w3, manifest, out_dir=deployments)
            for r in results:
                print(f"   {r.name:28s} {r.status}")
            bad = [r.name for r in results if r.status != FULL]
            if bad:
                print(f"demo: source verification is not a full match for {bad}", file=sys.stderr)
                return 1
    print("\n== anvil stopped; demo finished")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provers.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    return run(args.workdir)


if __name__ == "__main__":
    raise SystemExit(main())
