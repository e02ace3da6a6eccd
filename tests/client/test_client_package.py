"""sheaf-client as a package: installs on its own (offline), imports nothing first-party, its
statement hash equals the spec's, its enums equal the proto's."""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import sheaf_client
from hypothesis import given
from hypothesis import strategies as st
from sheaf_client import AggregationKind, ProofStatus, Scheme, SheafError, keccak256, statement_hash
from sheaf_client.statement import submission_digest

from sheaf import statement as spec
from sheaf.v1 import aggregator_pb2, envelope_pb2

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "client"
FIRST_PARTY = {"sheaf", "aggregator", "normalizers", "provers", "deploy", "demo", "bench"}


def test_installed_package_is_the_client_dir() -> None:
    assert Path(sheaf_client.__file__).resolve().is_relative_to(CLIENT / "src")


def test_imports_nothing_first_party() -> None:
    for f in (CLIENT / "src" / "sheaf_client").rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for n in names:
                assert n.split(".")[0] not in FIRST_PARTY, f"{f}: imports {n}"


def test_pip_install_target_offline_and_import(tmp_path: Path) -> None:
    """`pip install --no-deps --target` from the source dir, no index (PIP_NO_INDEX): setuptools
    comes from the venv (--no-build-isolation), the generated _pb modules ship in the package."""
    tgt = tmp_path / "site"
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(tgt), str(CLIENT)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tgt / "sheaf_client" / "_pb" / "aggregator_pb2_grpc.py").exists()
    assert (tgt / "sheaf_client" / "py.typed").exists()
    probe = (
        "import sys, sheaf_client as c\n"
        "from sheaf_client._pb import aggregator_pb2\n"
        "assert c.__file__.startswith(sys.argv[1]), c.__file__\n"
        "assert not {'sheaf','aggregator','normalizers'} & set(sys.modules), sorted(sys.modules)\n"
        "print(c.statement_hash('groth16', '0x' + '11' * 32, [1, 2]))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe, str(tgt)],
        env=dict(env, PYTHONPATH=str(tgt)), cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == statement_hash(Scheme.GROTH16, b"\x11" * 32, [1, 2])


def test_statement_hash_vectors() -> None:
    vec = json.loads((ROOT / "tests" / "vectors" / "statement_hash.json").read_text())
    for c in vec["cases"]:
        if c.get("envelope_version", 1) != 1 or "statement_hash" not in c:
            continue
        got = statement_hash(c["scheme"], c["vk_hash"], c["public_inputs"], version=c["envelope_version"])
        assert got == c["statement_hash"], c["name"]


@given(
    st.sampled_from([1, 2, 3]),
    st.binary(min_size=32, max_size=32),
    st.lists(st.integers(0, spec.BN254_R - 1), max_size=6),
)
def test_statement_hash_equals_sheaf_statement(scheme: int, vk: bytes, pubs: list[int]) -> None:
    words = [p.to_bytes(32, "big") for p in pubs]
    want = spec.statement_hash(spec.Scheme(scheme), vk, words)
    assert statement_hash(scheme, vk, pubs) == "0x" + want.hex()
    assert statement_hash(Scheme(scheme).name.lower(), "0x" + vk.hex(), words) == "0x" + want.hex()


def test_statement_hash_refuses_what_the_spec_refuses() -> None:
    with pytest.raises(ValueError):
        statement_hash(1, b"\x00" * 32, [spec.BN254_R])
    with pytest.raises(ValueError):
        statement_hash(1, b"\x00" * 31, [])
    with pytest.raises(ValueError):
        statement_hash("UNSPECIFIED", b"\x00" * 32, [])
    assert keccak256(b"") == spec.keccak256(b"")


def test_submission_digest_equals_the_aggregators() -> None:
    from aggregator.admission import auth_message

    assert submission_digest(7, b"\x22" * 32, 99) == auth_message(b"\x22" * 32, 99, 7)


def test_enums_equal_the_proto() -> None:
    def names(desc: object) -> dict[str, int]:
        return {v.name: v.number for v in desc.values}  # type: ignore[attr-defined]

    prefix = {"PROOF_STATUS_UNSPECIFIED": "UNSPECIFIED", "AGGREGATION_KIND_UNSPECIFIED": "UNSPECIFIED",
              "SCHEME_UNSPECIFIED": "UNSPECIFIED"}  # fmt: skip
    for ours, theirs in (
        (ProofStatus, aggregator_pb2.ProofStatus.DESCRIPTOR),
        (AggregationKind, aggregator_pb2.AggregationKind.DESCRIPTOR),
        (Scheme, envelope_pb2.Scheme.DESCRIPTOR),
    ):
        assert {m.name: m.value for m in ours} == {prefix.get(k, k): v for k, v in names(theirs).items()}


def test_retry_predicate() -> None:
    def err(status: grpc.StatusCode, code: str = "") -> SheafError:
        return SheafError(status, code, "", "")

    assert err(grpc.StatusCode.UNAVAILABLE).retryable
    assert err(grpc.StatusCode.DEADLINE_EXCEEDED).retryable
    assert err(grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED").retryable
    assert err(grpc.StatusCode.RESOURCE_EXHAUSTED, "QUEUE_QUOTA").retryable
    assert not err(grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_LARGE").retryable
    assert not err(grpc.StatusCode.RESOURCE_EXHAUSTED).retryable  # gRPC's own size limit
    assert not err(grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED").retryable
    assert not err(grpc.StatusCode.INTERNAL).retryable


def test_wheel_installs_into_a_fresh_venv_offline(tmp_path: Path) -> None:
    """The wheel (pure Python, _pb inside) installs into a brand-new venv with no index and no build
    backend; its only imports outside itself are its declared dependencies, which the fresh venv
    borrows from this venv's site-packages through a .pth line (not this repo, not its editables)."""
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.pop("PYTHONPATH", None)
    wh = tmp_path / "wheels"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wh),
         str(CLIENT)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    (whl,) = wh.glob("sheaf_client-*-py3-none-any.whl")
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", str(whl)],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    meta = subprocess.run(
        [str(py), "-c", "import importlib.metadata as m; print(sorted(m.requires('sheaf-client')))"],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert [d.split(">")[0] for d in eval(meta.stdout)] == ["grpcio", "protobuf", "pycryptodome", "tenacity"]
    site = next((venv / "lib").glob("python3*/site-packages"))
    deps = {  # the site dir each dependency lives in
        Path(importlib.import_module(m).__file__ or "").parents[m.count(".") + 1]
        for m in ("grpc", "google.protobuf", "Crypto", "tenacity")
    }
    (site / "borrowed_deps.pth").write_text("".join(f"{d}\n" for d in deps))
    probe = (
        "import sys, sheaf_client as c\n"
        "assert c.__file__.startswith(sys.prefix), c.__file__\n"
        "assert not {'sheaf', 'aggregator', 'normalizers', 'provers'} & set(sys.modules)\n"
        "c.AsyncClient\n"
        "print(c.statement_hash('plonk', b'\\x01' * 32, ['0x' + '00' * 31 + '05']))\n"
    )
    r = subprocess.run(
        [str(py), "-c", probe], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == statement_hash(Scheme.PLONK, b"\x01" * 32, [5])


def test_generated_code_uses_a_private_descriptor_pool(tmp_path: Path) -> None:
    """Another copy of sheaf/v1/aggregator.proto in protobuf's default pool (the repo's sheaf.v1 at
    another revision, another sheaf-client) must not break importing the client."""
    probe = (
        "from google.protobuf import descriptor_pb2, descriptor_pool\n"
        "f = descriptor_pb2.FileDescriptorProto(name='sheaf/v1/aggregator.proto', package='sheaf.v1')\n"
        "f.message_type.add(name='FromAnotherRevision')\n"
        "descriptor_pool.Default().Add(f)\n"
        "import sheaf_client\n"
        "from sheaf_client._pb import POOL, aggregator_pb2\n"
        "assert aggregator_pb2.ProofStatusUpdate.DESCRIPTOR.file.pool is POOL\n"
        "print(aggregator_pb2.ProofStatusUpdate(status=6).SerializeToString().hex())\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "1006"  # field 2 (status), varint 6: the wire format is unchanged


def test_sync_client_mirrors_the_async_one() -> None:
    """Every public AsyncClient method exists on Client with the same parameters."""
    import inspect

    for name, fn in inspect.getmembers(sheaf_client.AsyncClient, inspect.isfunction):
        if name.startswith("_"):
            continue
        assert hasattr(sheaf_client.Client, name), name
        a = list(inspect.signature(fn).parameters)
        s = list(inspect.signature(getattr(sheaf_client.Client, name)).parameters)
        assert a == s, (name, a, s)
