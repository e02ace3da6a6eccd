"""sheaf-deploy: compile | deploy | verify.

    sheaf-deploy compile [--out DIR]
    sheaf-deploy deploy --rpc-url URL [--keystore F | env SHEAF_DEPLOYER_KEY] [--force]
                        [--expect-chain-id N] [--owner ADDR] [--consumer-vk-hash 0x.. ...]
                        [--recursive-batch N [--recursive-npub P] [--recursive-plonk K]]
                        (recursive-path verifier, see below)
    sheaf-deploy configure --rpc-url URL [--keystore F | env SHEAF_DEPLOYER_KEY] [--domain ID[:SUBMITTER] ...]
                        [--operator ADDR ...] [--threshold K]   (owner setup, idempotent)
    sheaf-deploy verify [--rpc-url URL] [--chain-id N] [--timeout S]
                        [--submit sourcify|etherscan --api URL [--api-timeout S] [--api-key-env VAR]]
                        (lib-sourcify against the node; --submit posts the standard-JSON input of
                        each matching contract to a Sourcify APIv2 or an Etherscan-compatible API
                        and waits for its verdict)
    sheaf-deploy register-model --model spec.json [--rpc-url URL] [--keystore F | env SHEAF_DEPLOYER_KEY]
                        [--consumer-domain N --consumer-kind K [--fully-proven]]
                        (SheafInference, deployed by `deploy`: register a model, idempotent; with
                        --consumer-domain also deploy ExampleInferenceConsumer for it, into the manifest)

    sheaf-deploy recursive-tree --rpc-url URL [--plan tree_k2_p1_f2_d1 | --k K --npub P --fanin F
                        --levels D] [--keystore F | env SHEAF_DEPLOYER_KEY] [--cache DIR] [--out DIR]
                        [--no-configure] [--force] [--expect-chain-id N]
                        (recursion-tree verifiers, see below)

--recursive-batch N also exports the gnark/aggregation outer verifier for batch size N (sheaf-gnark
aggregate setup: a cold INSECURE dev setup takes minutes), compiles and deploys it with
Groth16AggregationAdapter and makes the registry use it (deploy/recursive.py). --recursive-plonk K
makes K of the N slots gnark PLONK slots (recursion transcript; docs/recursion.md).

recursive-tree (after `deploy`) exports the per-level verifiers of a recursion-tree plan from the
cached tree keys (sheaf-gnark tree export-solidity: compiles every level, never runs a setup; the
keys come from `sheaf-gnark tree setup`), deploys them behind TreeAggregationAdapter and makes the
registry use it (deploy/tree.py); `aggregator run` then proves batches with the tree. Idempotent.

Errors print `error: <CODE>: <message>` on stderr and exit 2 (codes in deploy/errors.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from web3 import Web3

from deploy.api import (
    ConsumerConfig,
    configure_registry,
    deploy_all,
    deployments_dir,
    load_manifest,
    manifest_path,
    registry,
)
from deploy.chain import connect, load_account, transact
from deploy.compile import artifact_json, compile_contracts
from deploy.errors import CONFIG_INVALID, NOT_OWNER, DeployError
from deploy.inference import deploy_consumer, inference_contract, load_model, register_model
from deploy.manifest import Manifest
from deploy.recursive import deploy_recursive_verifier
from deploy.registry import owned_registry, queued_changes
from deploy.source_verify import (
    FULL,
    PARTIAL,
    REFERENCE_TIMEOUT_S,
    ContractVerification,
    ReferenceJob,
    verify_manifest,
)
from deploy.tree import deploy_tree_verifier, export_tree_verifiers, plan_from_name, tree_plan
from deploy.verify_api import API_TIMEOUT_S, EtherscanJob, submit_etherscan, submit_sourcify
from sheaf.paths import REPO_ROOT
from sheaf.recursion_keys import verifier_key
from sheaf.schemes import Scheme

DEFAULT_RPC = "http://127.0.0.1:8545"


def _hex32(s: str) -> bytes:
    b = bytes.fromhex(s[2:] if s.startswith("0x") else s)
    if len(b) != 32:
        raise argparse.ArgumentTypeError("must be 32 bytes of hex")
    return b


def _address(s: str) -> str:
    if not Web3.is_address(s):
        raise argparse.ArgumentTypeError(f"{s!r} is not an address (0x + 40 hex digits)")
    return str(Web3.to_checksum_address(s))


def _domain(s: str) -> tuple[int, str]:
    ident, _, submitter = s.partition(":")
    try:
        domain = int(ident, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"domain id {ident!r} is not an integer") from None
    if domain < 1:
        raise argparse.ArgumentTypeError("domain ids start at 1")
    return domain, _address(submitter) if submitter else ""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sheaf-deploy", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--deployments-dir", type=Path, default=None, help="manifest dir (default deployments/)")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compile", help="compile contracts/src with the solc shim; write artifacts")
    c.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "deploy" / "artifacts")
    d = sub.add_parser("deploy", help="deploy (idempotent) and write deployments/<chainId>.json")
    d.add_argument("--rpc-url", default=DEFAULT_RPC)
    d.add_argument(
        "--keystore",
        type=Path,
        default=None,
        help="encrypted JSON keystore (password: $SHEAF_KEYSTORE_PASSWORD)",
    )
    d.add_argument("--force", action="store_true", help="redeploy even identical code at a live address")
    d.add_argument("--expect-chain-id", type=int, default=None)
    d.add_argument("--owner", default=None, help="registry owner (default: the deployer)")
    d.add_argument(
        "--consumer-vk-hash", type=_hex32, default=None, help="also deploy ExampleConsumer for this vk"
    )
    d.add_argument("--consumer-domain", type=int, default=1)
    d.add_argument("--consumer-kind", type=int, default=0, choices=(0, 1, 2))
    d.add_argument(
        "--consumer-scheme",
        type=int,
        default=int(Scheme.GROTH16),
        choices=[int(x) for x in Scheme],
        help="statement scheme byte the consumer pins: " + ", ".join(f"{int(x)} {x.label}" for x in Scheme),
    )
    d.add_argument(
        "--recursive-batch",
        type=int,
        default=None,
        metavar="N",
        help="also deploy the recursive aggregation verifier for batch size N and plug it into the registry",
    )
    d.add_argument("--recursive-npub", type=int, default=1, metavar="P", help="public inputs per inner proof")
    d.add_argument(
        "--recursive-plonk",
        type=int,
        default=0,
        metavar="K",
        help="how many of the N slots verify gnark PLONK proofs (recursion transcript); the rest Groth16",
    )
    d.add_argument(
        "--no-configure",
        action="store_true",
        help="with --recursive-batch: deploy verifier+adapter but do not call setAggregationVerifier",
    )
    g = sub.add_parser(
        "configure", help="owner setup of the deployed registry: domains, operators, threshold (idempotent)"
    )
    g.add_argument("--rpc-url", default=DEFAULT_RPC)
    g.add_argument(
        "--keystore", type=Path, default=None, help="owner keystore (password: $SHEAF_KEYSTORE_PASSWORD)"
    )
    g.add_argument("--expect-chain-id", type=int, default=None)
    g.add_argument(
        "--domain",
        type=_domain,
        action="append",
        default=[],
        metavar="ID[:SUBMITTER]",
        help="create domain ID; only SUBMITTER may post to it (default: anyone)",
    )
    g.add_argument("--operator", type=_address, action="append", default=[], help="add an operator")
    g.add_argument("--threshold", type=int, default=None, metavar="K", help="signatures needed")
    g.add_argument(
        "--min-threshold", type=int, default=None, metavar="K", help="floor below which k cannot be set"
    )
    g.add_argument(
        "--config-delay",
        type=int,
        default=None,
        metavar="SECONDS",
        help="delay before any later configuration change takes effect (set last; docs/contracts.md)",
    )
    g.add_argument(
        "--execute-change",
        type=int,
        action="append",
        default=[],
        metavar="ID",
        help="apply a queued configuration change whose delay has passed",
    )
    v = sub.add_parser(
        "verify", help="check on-chain code against its sources with lib-sourcify; optionally submit them"
    )
    v.add_argument("--rpc-url", default=DEFAULT_RPC)
    v.add_argument("--chain-id", type=int, default=None, help="manifest to verify (default: the node's)")
    v.add_argument("--expect-chain-id", type=int, default=None)
    v.add_argument(
        "--timeout",
        type=float,
        default=REFERENCE_TIMEOUT_S,
        help="seconds for the local lib-sourcify run over the whole manifest",
    )
    v.add_argument(
        "--submit",
        choices=("sourcify", "etherscan"),
        default=None,
        help="also submit every locally matching contract to a Sourcify APIv2 or an Etherscan-compatible "
        "API at --api",
    )
    v.add_argument("--api", default=None, help="verification API base URL, e.g. https://sourcify.dev/server")
    v.add_argument("--api-timeout", type=float, default=API_TIMEOUT_S, help="seconds per contract at the API")
    v.add_argument(
        "--api-key-env",
        default="ETHERSCAN_API_KEY",
        metavar="VAR",
        help="environment variable holding the Etherscan API key (--submit etherscan)",
    )
    t = sub.add_parser(
        "recursive-tree",
        help="export the recursion tree's per-level verifiers from the cached keys, deploy them behind "
        "TreeAggregationAdapter and plug it into the registry (idempotent)",
        description="Export the per-level verifiers of a recursion-tree plan from the cached tree keys\n"
        "(sheaf-gnark tree export-solidity: compiles every level, never a setup), deploy them behind\n"
        "TreeAggregationAdapter and make the registry use it (owner key). Run after `deploy`.\n"
        "Errors print `error: <CODE>: <message>` on stderr and exit 2 (codes in deploy/errors.py).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    t.add_argument("--rpc-url", default=DEFAULT_RPC, help=f"JSON-RPC node (default {DEFAULT_RPC})")
    t.add_argument(
        "--keystore", type=Path, default=None, help="owner keystore (password: $SHEAF_KEYSTORE_PASSWORD)"
    )
    t.add_argument("--expect-chain-id", type=int, default=None)
    t.add_argument(
        "--plan",
        default=None,
        metavar="NAME",
        help="the plan by name, e.g. tree_k2_p1_f2_d1 (instead of --k/--npub/--fanin/--levels)",
    )
    t.add_argument(
        "--k", type=int, default=None, help="proofs of one vk per leaf job, a power of two (default 2)"
    )
    t.add_argument("--npub", type=int, default=None, help="public inputs per inner proof (default 1)")
    t.add_argument("--fanin", type=int, default=None, help="children per merge, a power of two (default 2)")
    t.add_argument("--levels", type=int, default=None, help="merge levels above the leaf level (default 1)")
    t.add_argument("--cache", type=Path, default=None, help="tree key cache (default $SHEAF_CACHE/tree)")
    t.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write Verifier_l<L>.sol: inside the repo, relative to its root "
        "(default build/recursion/<plan>)",
    )
    t.add_argument("--force", action="store_true", help="redeploy even identical code at a live address")
    t.add_argument(
        "--no-configure",
        action="store_true",
        help="deploy the verifiers and adapter but do not call setAggregationVerifier",
    )
    rm = sub.add_parser("register-model", help="register a model with SheafInference (idempotent)")
    rm.add_argument("--model", type=Path, required=True, help='model spec JSON: {"slices": [...]}')
    rm.add_argument("--rpc-url", default=DEFAULT_RPC)
    rm.add_argument(
        "--keystore", type=Path, default=None, help="keystore (password: $SHEAF_KEYSTORE_PASSWORD)"
    )
    rm.add_argument("--expect-chain-id", type=int, default=None)
    rm.add_argument(
        "--consumer-domain",
        type=int,
        default=None,
        help="also deploy ExampleInferenceConsumer for this domain",
    )
    rm.add_argument(
        "--consumer-kind", type=int, default=0, choices=(0, 1, 2), help="0 any, 1 recursive, 2 attested"
    )
    rm.add_argument(
        "--fully-proven", action="store_true", help="the consumer refuses models with unproven slices"
    )
    return p


def _submit(
    api_kind: str,
    api: str,
    api_key: str,
    chain_id: int,
    m: Manifest,
    results: Sequence[ContractVerification],
    timeout_s: float,
) -> None:
    """Post the standard-JSON input of every contract that matched locally; one that did not would
    be refused by the API too (same lib-sourcify), so it is reported and left out."""
    jobs: list[ReferenceJob] = []
    for r in results:
        if r.status not in (FULL, PARTIAL):
            print(f"{r.name:32s} {r.address} not submitted ({r.status} here)")
            continue
        dc = m.contracts[r.name]
        std_input = json.loads(Path(str(r.explorer_input), "standard-input.json").read_text())
        version = r.compiler_version.removeprefix("v")
        ident = f"{dc.source_path}:{dc.solidity_name}"
        jobs.append(ReferenceJob(dc.address, ident, version, std_input, dc.tx_hash))
    by_address = {dc.address: name for name, dc in m.contracts.items()}
    if api_kind == "sourcify":
        for sub in submit_sourcify(api, chain_id, jobs, timeout_s):
            ref = f"verification {sub.verification_id}" if sub.verification_id else "verified before"
            print(f"{by_address[sub.address]:32s} {sub.address} sourcify: {sub.match} ({ref})")
        return
    args = {dc.address: dc.constructor_args.removeprefix("0x") for dc in m.contracts.values()}
    ejobs = [EtherscanJob(j, args[j.address]) for j in jobs]
    for es in submit_etherscan(api, chain_id, ejobs, api_key, timeout_s):
        ref = f"guid {es.guid}" if es.guid else "verified before"
        print(f"{by_address[es.address]:32s} {es.address} etherscan: {es.result} ({ref})")


def _recursive_tree(a: argparse.Namespace, out_dir: Path | None) -> int:
    dims = (a.k, a.npub, a.fanin, a.levels)
    if a.plan is not None and any(d is not None for d in dims):
        raise DeployError(CONFIG_INVALID, "give --plan or --k/--npub/--fanin/--levels, not both", "plan")
    if a.plan is not None:
        plan = plan_from_name(a.plan)
    else:
        k, npub, fanin, levels = (d if d is not None else v for d, v in zip(dims, (2, 1, 2, 1), strict=True))
        plan = tree_plan(k, npub, fanin, levels)
    # fail fast, before the minutes of compiling every level: the node, the key, the manifest, the owner
    w3 = connect(a.rpc_url, a.expect_chain_id)
    acct = load_account(keystore=a.keystore)
    m = load_manifest(int(w3.eth.chain_id), out_dir)
    if not a.no_configure:
        owned_registry(w3, m, acct, "use the registry owner's key or pass --no-configure")
    ex = export_tree_verifiers(plan, cache=a.cache, out=a.out, log=print)
    d = deploy_tree_verifier(
        a.rpc_url,
        exported=ex,
        account=acct,
        configure=not a.no_configure,
        force=a.force,
        expect_chain_id=a.expect_chain_id,
        out_dir=out_dir,
        log=print,
    )
    for lv, addr in zip(ex.levels, d.verifiers, strict=True):
        print(f"level {lv.level}: verifier {addr} circuit {lv.circuit_hash} source {lv.source_path}")
    configured = (
        f"registry set (tx {d.configured_tx})"
        if d.configured_tx
        else ("registry not configured (--no-configure)" if a.no_configure else "registry already set")
    )
    print(f"recursive tree {plan.name} (capacity {plan.capacity}): adapter {d.adapter}; {configured}")
    print(f"manifest: {manifest_path(d.manifest.chain_id, out_dir)}")
    return 0


def run(argv: Sequence[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    out_dir: Path | None = a.deployments_dir
    if a.cmd == "compile":
        arts = compile_contracts()
        a.out.mkdir(parents=True, exist_ok=True)
        for name, art in sorted(arts.items()):
            if ":" in name or not art.bytecode:
                continue
            (a.out / f"{name}.json").write_text(json.dumps(artifact_json(art), indent=1) + "\n")
            print(f"{name:28s} creation {len(art.bytecode):6d} B  runtime {len(art.runtime):6d} B")
        print(f"compiler {next(iter(arts.values())).compiler_version}; artifacts in {a.out}")
        return 0
    if a.cmd == "deploy":
        w3 = connect(a.rpc_url, a.expect_chain_id)  # fail fast before compiling
        acct = load_account(keystore=a.keystore)
        consumer = None
        if a.consumer_vk_hash is not None:
            consumer = ConsumerConfig(
                a.consumer_domain, a.consumer_kind, a.consumer_scheme, a.consumer_vk_hash
            )
        m = deploy_all(
            a.rpc_url,
            account=acct,
            owner=a.owner,
            consumer=consumer,
            force=a.force,
            expect_chain_id=a.expect_chain_id,
            out_dir=out_dir,
            log=print,
        )
        if a.recursive_batch is not None:
            rd = deploy_recursive_verifier(
                a.rpc_url,
                account=acct,
                batch=a.recursive_batch,
                npub=a.recursive_npub,
                plonk=a.recursive_plonk,
                configure=not a.no_configure,
                force=a.force,
                expect_chain_id=a.expect_chain_id,
                out_dir=out_dir,
                log=print,
            )
            ev = rd.exported
            print(
                f"recursive verifier {verifier_key(ev.batch, ev.npub, ev.plonk)}: circuit {ev.circuit_hash} "
                f"verifier {rd.verifier} adapter {rd.adapter} source {ev.source_path}"
            )
        print(f"manifest: {manifest_path(m.chain_id, out_dir)} (chain {int(w3.eth.chain_id)})")
        return 0
    if a.cmd == "configure":
        w3 = connect(a.rpc_url, a.expect_chain_id)
        acct = load_account(keystore=a.keystore)
        m = load_manifest(int(w3.eth.chain_id), out_dir)
        reg = registry(w3, m)
        owner = str(reg.functions.owner().call())
        if owner.lower() != acct.address.lower():
            raise DeployError(NOT_OWNER, f"{acct.address} is not the registry owner {owner}: use its key")
        if a.threshold is not None:
            new_ops = {o for o in a.operator if not reg.functions.isOperator(o).call()}
            count = int(reg.functions.operatorCount().call()) + len(new_ops)
            if not 1 <= a.threshold <= count:
                raise DeployError(
                    CONFIG_INVALID, f"--threshold must be 1..{count} (the operators after this call)"
                )
        for cid in a.execute_change:
            transact(w3, acct, reg.functions.executeConfigChange(cid), f"executeConfigChange({cid})")
        sent = configure_registry(
            w3,
            acct,
            reg,
            domains=a.domain,
            operators=a.operator,
            threshold=a.threshold,
            min_threshold=a.min_threshold,
            config_delay=a.config_delay,
        )
        for cid, kind, eta in queued_changes(w3, reg, sent):
            print(
                f"change {cid} (kind {kind}) queued: takes effect after {eta} (unix s) with "
                f"`sheaf-deploy configure --execute-change {cid}`"
            )
        exists = {d: bool(reg.functions.getDomain(d).call()[0]) for d, _ in a.domain}
        domains = [f"domain {d} {'ok' if ok else 'MISSING'}" for d, ok in exists.items()]
        print(
            f"SheafRegistry {reg.address}: {len(sent)} transaction(s) sent; "
            f"operators {int(reg.functions.operatorCount().call())}, "
            f"threshold {int(reg.functions.threshold().call())}; " + ", ".join(domains)
        )
        return 0
    if a.cmd == "recursive-tree":
        return _recursive_tree(a, out_dir)
    if a.cmd == "register-model":
        w3 = connect(a.rpc_url, a.expect_chain_id)
        acct = load_account(keystore=a.keystore)
        slices = load_model(a.model)
        m = load_manifest(int(w3.eth.chain_id), out_dir)
        done_reg = register_model(w3, acct, inference_contract(w3, m), slices)
        done = (
            f"registered (tx {done_reg.tx_hash}, gas {done_reg.gas_used})"
            if done_reg.tx_hash
            else "already registered"
        )
        print(f"model 0x{done_reg.model_id.hex()}: {done} in SheafInference {m.address('SheafInference')}")
        if a.consumer_domain is not None:
            m = deploy_consumer(
                w3,
                acct,
                m,
                done_reg.model_id,
                domain_id=a.consumer_domain,
                required_kind=a.consumer_kind,
                require_fully_proven=a.fully_proven,
                out_dir=out_dir,
                log=print,
            )
        return 0
    if a.cmd == "verify":
        if a.submit is not None and not a.api:
            raise DeployError(CONFIG_INVALID, f"--submit {a.submit} needs --api URL (the API's base URL)")
        api_key = os.environ.get(a.api_key_env, "") if a.submit == "etherscan" else ""
        if a.submit == "etherscan" and not api_key:
            raise DeployError(
                CONFIG_INVALID,
                f"--submit etherscan reads the API key from ${a.api_key_env}: it is not set",
            )
        w3 = connect(a.rpc_url, a.expect_chain_id)
        chain_id = a.chain_id if a.chain_id is not None else int(w3.eth.chain_id)
        m = load_manifest(chain_id, out_dir)
        results = verify_manifest(w3, m, out_dir=out_dir, timeout_s=a.timeout)
        for r in results:
            where = r.sourcify_dir or "-"
            print(
                f"{r.name:32s} {r.address} {r.status:9s} "
                f"runtime={r.runtime_match} creation={r.creation_match} {where}"
            )
        base = out_dir or deployments_dir()
        print(f"explorer inputs: {base / 'explorer' / str(chain_id)}")
        if a.submit is not None:
            _submit(a.submit, a.api, api_key, chain_id, m, results, a.api_timeout)
        return 0 if all(r.status == FULL for r in results) else 1
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except DeployError as e:
        print(f"error: {e.code}: {e.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
