"""Helpers for the aggregator tests (unique module name: test dirs have no __init__.py).

- deploy_registry: compiles contracts/src with the solc shim and deploys SheafRegistry on anvil.
- fixture_inputs: the committed real prover outputs (gnark, snarkjs, ezkl).
- proof_pool: N distinct real Groth16 proofs (snarkjs, tiny circom circuit c = a*b with a = i+2),
  generated once in one node process and cached under $SHEAF_CACHE; distinct public inputs make
  distinct statements, so every submission is its own leaf.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from eth_account import Account
from web3 import Web3

from aggregator import crypto
from aggregator.app import App
from aggregator.chain import Chain
from aggregator.client import AggregatorError, AsyncClient
from aggregator.config import Config
from deploy.anvil import Anvil
from deploy.compile import compile_contracts
from normalizers.api import Normalizer, ProofInput
from sheaf.v1 import aggregator_pb2 as pb

if TYPE_CHECKING:
    from aggregator.service import Service

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures"
BIN = ROOT / "node_modules" / ".bin"
OWNER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil dev key 0 (public)
# Public anvil dev keys 2..4 serve as operators; key 1 is the submitter.
SUBMITTER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
OPERATOR_KEYS = (
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
)


@dataclass(frozen=True)
class Input:
    name: str
    scheme: str
    format: str
    proof: bytes
    vk: bytes
    public: bytes | None = None
    settings: bytes | None = None


_ARTIFACT: dict[str, Any] = {}


def registry_artifact() -> tuple[list[dict[str, Any]], bytes]:
    if not _ARTIFACT:
        a = compile_contracts()["SheafRegistry"]
        _ARTIFACT["abi"], _ARTIFACT["bin"] = a.abi, a.bytecode
    return _ARTIFACT["abi"], _ARTIFACT["bin"]


def _tx(w3: Web3, key: str, fn: Any) -> Any:
    acct = Account.from_key(key)
    tx = fn.build_transaction(
        {"from": acct.address, "nonce": w3.eth.get_transaction_count(acct.address, "pending")}
    )
    rc = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
    )
    assert rc["status"] == 1, rc
    return rc


def deploy_registry(
    rpc_url: str, operators: list[str], threshold: int, domains: tuple[int, ...] = (1,)
) -> str:
    abi, code = registry_artifact()
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    owner = Account.from_key(OWNER_KEY).address
    rc = _tx(w3, OWNER_KEY, w3.eth.contract(abi=abi, bytecode=code).constructor(owner))
    reg = w3.eth.contract(address=rc["contractAddress"], abi=abi)
    for d in domains:
        _tx(w3, OWNER_KEY, reg.functions.createDomain(d, "0x" + "00" * 20))
    for op in operators:
        _tx(w3, OWNER_KEY, reg.functions.addOperator(op))
    _tx(w3, OWNER_KEY, reg.functions.setThreshold(threshold))
    return str(rc["contractAddress"])


def fixture_inputs() -> list[Input]:
    out: list[Input] = []
    sj = FIX / "snarkjs"
    for circ in ("mul1", "multi5", "sq1"):
        for proto in ("groth16", "plonk"):
            d = sj / f"{circ}_{proto}"
            for i in (0, 1):
                if (d / f"proof{i}.json").exists():
                    out.append(
                        Input(
                            f"snarkjs/{circ}_{proto}/{i}",
                            proto,
                            "snarkjs",
                            (d / f"proof{i}.json").read_bytes(),
                            (d / "verification_key.json").read_bytes(),
                            (d / f"public{i}.json").read_bytes(),
                        )
                    )
    g = FIX / "gnark"
    for name in ("groth16_n1", "groth16_n3", "plonk_n1", "plonk_n1_recursion"):
        d = g / name
        if d.exists():
            out.append(
                Input(
                    f"gnark/{name}",
                    name.split("_")[0],
                    "gnark",
                    (d / "proof.bin").read_bytes(),
                    (d / "vk.bin").read_bytes(),
                    (d / "public.bin").read_bytes(),
                )
            )
    for d in sorted((FIX / "ezkl").glob("*/")):
        for p in sorted(d.glob("proof*.json")):
            out.append(
                Input(
                    f"ezkl/{d.name}/{p.stem}",
                    "halo2",
                    "ezkl",
                    p.read_bytes(),
                    (d / "vk.key").read_bytes(),
                    None,
                    (d / "settings.json").read_bytes(),
                )
            )
    return out


def supported_inputs() -> list[Input]:
    """The fixtures today's normalizers accept (schemes still being built are left out; the normalizer
    tests cover their rejections)."""
    srs = FIX / "ezkl" / "verifier-k1.srs"
    out = []
    with Normalizer(srs=srs) as n:
        for i in fixture_inputs():
            try:
                n.normalize(ProofInput(i.scheme, i.format, i.proof, i.vk, i.public, i.settings))
            except Exception:
                continue
            out.append(i)
    return out


CIRCUIT = """
template Mul() {
    signal private input a;
    signal private input b;
    signal output c;
    c <== a * b;
}
component main = Mul();
"""

NODE_PROVE = r"""
const snarkjs = require(process.argv[2]);
const fs = require("fs");
(async () => {
  const [wasm, zkey, n, out] = process.argv.slice(3);
  const res = [];
  for (let i = 0; i < Number(n); i++) {
    const input = { a: String(i + 2), b: "7" };
    const { proof, publicSignals } = await snarkjs.groth16.fullProve(input, wasm, zkey);
    res.push({ proof, public: publicSignals });
  }
  fs.writeFileSync(out, JSON.stringify(res));
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
"""


def _cache() -> Path:
    return Path(os.environ.get("SHEAF_CACHE", Path.home() / ".cache" / "sheaf"))


def _run(cmd: list[str], cwd: Path) -> None:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0 or "[ERROR]" in r.stdout:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")


def proof_pool(n: int) -> list[Input]:
    """n distinct snarkjs Groth16 proofs (INSECURE dev setup with fixed entropy; test data only)."""
    key = hashlib.sha256((CIRCUIT + NODE_PROVE).encode()).hexdigest()[:16]
    d = _cache() / "aggregator-pool" / key
    out = d / f"proofs-{n}.json"
    if not out.exists():
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as td:
            tmp = Path(td)
            sj = str(BIN / "snarkjs")
            if not (d / "mul.zkey").exists():
                _run([sj, "powersoftau", "new", "bn128", "4", "pot0.ptau"], tmp)
                _run([sj, "powersoftau", "contribute", "pot0.ptau", "pot1.ptau", "-e=sheaf-dev-only"], tmp)
                _run([sj, "powersoftau", "prepare", "phase2", "pot1.ptau", "pot.ptau"], tmp)
                (tmp / "mul.circom").write_text(CIRCUIT)
                _run([str(BIN / "circom"), "mul.circom", "--r1cs", "--wasm"], tmp)
                _run([sj, "groth16", "setup", "mul.r1cs", "pot.ptau", "mul_0.zkey"], tmp)
                _run([sj, "zkey", "beacon", "mul_0.zkey", "mul.zkey", "0" * 64, "10"], tmp)
                _run([sj, "zkey", "export", "verificationkey", "mul.zkey", "vk.json"], tmp)
                for f in ("mul.wasm", "mul.zkey", "vk.json"):
                    shutil.copy(tmp / f, d / f)
            (tmp / "prove.js").write_text(NODE_PROVE)
            lib = str(ROOT / "node_modules" / "snarkjs")
            _run(
                [
                    "node",
                    "prove.js",
                    lib,
                    str(d / "mul.wasm"),
                    str(d / "mul.zkey"),
                    str(n),
                    str(tmp / "p.json"),
                ],
                tmp,
            )
            shutil.move(str(tmp / "p.json"), out)
    vk = (d / "vk.json").read_bytes()
    items = json.loads(out.read_text())
    return [
        Input(
            f"pool/{i}",
            "groth16",
            "snarkjs",
            json.dumps(it["proof"]).encode(),
            vk,
            json.dumps(it["public"]).encode(),
        )
        for i, it in enumerate(items)
    ]


# -- shared by the tests (kept here, not in conftest, so imports never hit another conftest) --

SRS = FIX / "ezkl" / "verifier-k1.srs"


@dataclass
class ChainEnv:
    node: Anvil
    registry: str
    operators: list[str]


@contextlib.contextmanager
def anvil_with_registry() -> Iterator[ChainEnv]:
    """A real anvil with SheafRegistry deployed: domains 1 and 2, the three test operators, 2-of-3."""
    with Anvil(block_time=0.5) as node:
        ops = [Account.from_key(k).address for k in OPERATOR_KEYS]
        yield ChainEnv(node, deploy_registry(node.rpc_url, ops, 2, domains=(1, 2)), ops)


def deploy_for_recursion(rpc_url: str, out: Path) -> tuple[Any, list[str]]:
    """sheaf-deploy's SheafRegistry (manifest in `out`: recursive verifiers are deployed against it)
    with the three test operators, 2-of-3, and domain 1 posted only by the aggregator's key (recursive
    posts are accepted from the domain's submitter only). Returns (registry contract, operators)."""
    from deploy.api import configure_registry, deploy_all, load_manifest, registry
    from deploy.chain import connect

    deploy_all(rpc_url, OWNER_KEY, out_dir=out)
    w3 = connect(rpc_url)
    reg = registry(w3, load_manifest(31337, out))
    ops = [Account.from_key(k).address for k in OPERATOR_KEYS]
    submitter = Account.from_key(SUBMITTER_KEY).address
    configure_registry(
        w3, Account.from_key(OWNER_KEY), reg, domains=[(1, submitter)], operators=ops, threshold=2
    )
    return reg, ops


@contextlib.asynccontextmanager
async def running_app(env: ChainEnv, db: Path, **kw: Any) -> AsyncIterator[App]:
    """The in-process aggregator (App) on loopback over `env`, stopped on exit (`kw`: config)."""
    a = App(make_config(env, db, **kw), submitter_key=SUBMITTER_KEY)
    await a.start()
    try:
        yield a
    finally:
        await a.stop()


def make_config(env: ChainEnv, db: Path, **kw: Any) -> Config:
    base: dict[str, Any] = dict(
        db_path=str(db),
        grpc_listen="127.0.0.1:0",
        http_listen="127.0.0.1:0",
        rpc_url=env.node.rpc_url,
        registry=env.registry,
        operators=env.operators,
        threshold=2,
        max_leaves=8,
        max_wait_ms=300,
        confirmations=2,
        poll_ms=200,
        srs_path=str(SRS),
        groth16_backend="groth16py",
        rpc_retries=2,
    )
    base.update(kw)
    return Config(**base)


def start_operator(
    target: str,
    key: str,
    log: Path,
    registry: str | None = None,
    *,
    state: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, SHEAF_OPERATOR_KEY=key, **(extra_env or {}))
    cmd = [
        sys.executable,
        "-m",
        "aggregator.cli",
        "operator",
        "--target",
        target,
        "--srs",
        str(SRS),
        "--groth16-backend",
        "groth16py",
    ]
    if registry:
        cmd += ["--registry", registry]
    if state is not None:
        cmd += ["--state", str(state)]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "wb"), start_new_session=True
    )


def stop_process(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# -- a real `aggregator run` process and what the crash tests check (test_agg_crash, _crashpoints) --

RETRYABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
)


def write_config(path: Path, env: ChainEnv, db: Path, grpc_port: int, http_port: int, **extra: Any) -> None:
    ops = ", ".join(f'"{o}"' for o in env.operators)
    lines = [
        "[aggregator]",
        f'db_path = "{db}"',
        f'grpc_listen = "127.0.0.1:{grpc_port}"',
        f'http_listen = "127.0.0.1:{http_port}"',
        f'rpc_url = "{env.node.rpc_url}"',
        f'registry = "{env.registry}"',
        f"operators = [{ops}]",
        "threshold = 2",
        "max_leaves = 16",
        "max_wait_ms = 300",
        "confirmations = 2",
        "poll_ms = 200",
        f'srs_path = "{SRS}"',
        'groth16_backend = "groth16py"',
        'log_level = "INFO"',
    ]
    overridden = [ln for ln in lines if ln.split(" = ")[0] in extra]
    lines = [ln for ln in lines if ln not in overridden]
    lines += [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n")


class AggregatorProc:
    def __init__(self, cfg: Path, log: Path) -> None:
        self.cfg, self.log = cfg, log
        self.p: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def ready_file(self) -> Path:
        return self.log.with_suffix(".ready")

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            assert self.p is not None and self.p.poll() is None, "aggregator exited"
            assert time.monotonic() < deadline, "aggregator did not come up"
            await asyncio.sleep(0.05)

    def start(self, **extra_env: str) -> None:
        env = dict(os.environ, SHEAF_SUBMITTER_KEY=SUBMITTER_KEY, **extra_env)
        self.ready_file.unlink(missing_ok=True)
        self.p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aggregator.cli",
                "run",
                "--config",
                str(self.cfg),
                "--ready-file",
                str(self.ready_file),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "ab"),
            start_new_session=True,
        )
        self.starts += 1

    def kill9(self) -> None:
        assert self.p is not None
        os.killpg(self.p.pid, signal.SIGKILL)
        self.p.wait()

    def stop(self) -> None:
        if self.p is not None and self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.kill9()


async def submit_all(target: str, proofs: list[Input], clients: int) -> dict[str, bytes]:
    """Each proof is retried until acked; returns proof_id -> statement hash of every ack."""
    q: asyncio.Queue[Input] = asyncio.Queue()
    for p in proofs:
        q.put_nowait(p)
    acked: dict[str, bytes] = {}

    async def worker() -> None:
        async with AsyncClient(target, timeout=10) as c:
            while True:
                try:
                    p = q.get_nowait()
                except asyncio.QueueEmpty:
                    return
                while True:
                    try:
                        r = await c.submit(p.scheme, p.format, p.proof, vk=p.vk, public=p.public)
                        acked[r.proof_id] = bytes(r.statement_hash)
                        break
                    except AggregatorError as e:
                        assert e.status in RETRYABLE, e
                        await asyncio.sleep(0.05)

    await asyncio.gather(*(worker() for _ in range(clients)))
    return acked


async def wait_all_finalized(target: str, ids: list[str], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    final: dict[str, Any] = {}
    async with AsyncClient(target, timeout=5) as c:
        while time.monotonic() < deadline:
            for pid in [i for i in ids if i not in final]:
                try:
                    st = await c.status(pid)
                except AggregatorError:
                    break
                assert st.status not in (pb.REJECTED, pb.FAILED), st
                if st.status == pb.FINALIZED:
                    final[pid] = st
            if len(final) == len(ids):
                return final
            await asyncio.sleep(0.3)
    missing = [i for i in ids if i not in final]
    raise AssertionError(f"{len(missing)} acked proofs not FINALIZED, e.g. {missing[:3]}")


async def check_exactly_once(target: str, env: ChainEnv, acked: dict[str, bytes], domain: int = 1) -> int:
    """Every acked statement is in exactly one on-chain aggregation of the domain, nothing else is,
    the ids are contiguous, and verifyProofAggregation accepts every leaf."""
    chain = Chain(env.node.rpc_url, env.registry)
    last = await chain.next_aggregation_id(domain) - 1
    seen: list[bytes] = []
    async with AsyncClient(target, timeout=10) as c:
        for agg_id in range(1, last + 1):
            oc = await chain.get_aggregation(domain, agg_id)
            assert oc is not None, agg_id
            local = await c.aggregation(domain, agg_id)
            leaves = [bytes(x) for x in local.leaves]
            assert crypto.merkle_root(leaves) == oc.root == bytes(local.root), agg_id
            assert local.state == "finalized"
            seen += leaves
        assert len(seen) == len(set(seen)), "a statement was posted twice"
        assert set(seen) == set(acked.values())
        for pid in acked:
            inc = await c.inclusion(pid)
            assert await chain.verify_inclusion(
                inc.domain_id, inc.aggregation_id, inc.leaf, list(inc.merkle_path), inc.leaf_count, inc.index
            ), pid
    events = await chain.w3.eth.get_logs({"address": chain.registry, "fromBlock": 0, "toBlock": "latest"})
    topic = chain.w3.keccak(text="AggregationSubmitted(uint256,uint256,bytes32,uint256,uint8)")
    ids = [
        int.from_bytes(e["topics"][2], "big")
        for e in events
        if e["topics"][0] == topic and int.from_bytes(e["topics"][1], "big") == domain
    ]
    assert sorted(ids) == list(range(1, last + 1)), ids
    return last


# The tree tests' batch: a gnark proof (the oldest) and two snarkjs proofs of one vk, i.e. leaf jobs
# [snarkjs, snarkjs] + [gnark] under K=2, then one merge.
TREE_BATCH = ["gnark/groth16_n1", "snarkjs/mul1_groth16/0", "snarkjs/mul1_groth16/1"]


class TreeServices:
    """Services on one SQLite file, each running a tree prover (see tree_services): `service(p)`
    starts one; `stop(s)` stops it and closes its prover (an aggregator stopping); the rest are torn
    down when the `async with` ends."""

    def __init__(self, db: Path) -> None:
        from aggregator.config import RecursionConfig

        self.normalizer = Normalizer(srs=SRS, groth16_backend="groth16py")
        self.cfg = Config(
            db_path=str(db),
            max_wait_ms=3_600_000,
            recursion=RecursionConfig(max_wait_ms=200),
            groth16_backend="groth16py",
            srs_path=str(SRS),
        )
        self._running: list[tuple[Service, Any]] = []  # (service, its prover), not stopped yet

    def service(self, p: Any) -> Service:
        """A started Service with its batcher and Proving running the tree prover `p`, as `aggregator
        run` builds it (no chain: ChainInfo zero)."""
        from aggregator.admission import ProofVerifier
        from aggregator.metrics import Metrics
        from aggregator.records import ChainInfo
        from aggregator.service import Service
        from aggregator.store import SqliteStore

        cfg = self.cfg
        s = Service(
            cfg,
            SqliteStore(cfg.db_path),
            ProofVerifier(self.normalizer),
            ChainInfo(31337, "0x" + "00" * 20),
            Metrics(),
            p,
        )
        s.start()
        self._running.append((s, p))
        return s

    async def stop(self, s: Service) -> None:
        """Stop `s` and close its prover (the tree worker exits)."""
        [(_, p)] = [x for x in self._running if x[0] is s]
        self._running = [x for x in self._running if x[0] is not s]
        await s.stop()
        await p.close()

    async def close(self) -> None:
        running, self._running = self._running, []
        try:
            for s, _ in running:
                await s.stop()
            for _, p in running:
                await p.close()
        finally:
            self.normalizer.close()


@contextlib.asynccontextmanager
async def tree_services(db: Path) -> AsyncIterator[TreeServices]:
    """`async with tree_services(db) as ts`: ts.normalizer for the tree provers, ts.service(prover)
    starts a Service on the SQLite file `db` running it, `await ts.stop(s)` stops one mid-test; on
    exit every Service still running is stopped, then their provers closed and the normalizer."""
    ts = TreeServices(db)
    try:
        yield ts
    finally:
        await ts.close()
