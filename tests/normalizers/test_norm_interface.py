"""The normalizer's structure: one registry equal to the scheme table, every scheme reached only
through the SchemeVerifier interface, caches owned by the Normalizer and bounded, no module-level
mutable state, sidecar round trips of normalize_many pinned, NormalizeError on sheaf.errors."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import os
import pickle
import pkgutil
import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nz_helpers import EZKL, ezkl_case, snarkjs_case
from test_norm_groth16_gnark import case as g16_case
from test_norm_plonk import gnark_case as plonk_case

import normalizers
from normalizers import api, cli
from normalizers.api import Normalizer, ProofInput, parse_vk
from normalizers.base import Context, ParsedVk, Pending, Statement, vk_cache_key
from normalizers.errors import Code, NormalizeError
from normalizers.limits import Limits
from normalizers.registry import VERIFIERS
from sheaf import errors as sheaf_errors
from sheaf.lru import LRU
from sheaf.schemes import PRODUCER_NAMES, SCHEME_NAMES, SCHEMES, Scheme, formats_of

API_SRC = Path(api.__file__).read_text()


# ---------------------------------------------------------------- one list of schemes


def test_registry_is_the_scheme_table() -> None:
    assert list(VERIFIERS) == list(Scheme) == [info.scheme for info in SCHEMES]
    with pytest.raises(TypeError):
        VERIFIERS[Scheme.GROTH16] = VERIFIERS[Scheme.PLONK]  # type: ignore[index]
    assert api.SCHEMES == SCHEME_NAMES and api.PRODUCERS == PRODUCER_NAMES
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    choices = {a.dest: tuple(a.choices) for a in p._actions if a.choices}
    assert choices == {"scheme": SCHEME_NAMES, "format": PRODUCER_NAMES}


def test_every_registered_verifier_implements_the_interface() -> None:
    ctx = Context(limits=Limits())
    for scheme, make in VERIFIERS.items():
        v = make(ctx)
        assert v.scheme is scheme
        b = v.batch()
        assert callable(b.submit) and callable(b.flush) and callable(v.validate_vk)
        # formats come from sheaf.schemes; anything else is refused by the verifier itself too
        with pytest.raises(NormalizeError) as ei:
            v.validate_vk("fflonk", b"", None)
        assert ei.value.code == Code.UNSUPPORTED_FORMAT
        v.close()


@pytest.mark.parametrize("scheme", list(Scheme))
def test_unknown_format_names_the_known_ones(py_normalizer: Normalizer, scheme: Scheme) -> None:
    with pytest.raises(NormalizeError) as ei:
        py_normalizer.normalize(ProofInput(scheme.label, "fflonk", b"p", b"v"))
    assert (ei.value.code, ei.value.field) == (Code.UNSUPPORTED_FORMAT, "format")
    assert str(sorted(formats_of(scheme))) in ei.value.message


def test_envelope_names_come_from_the_scheme_table(py_normalizer: Normalizer) -> None:
    env = py_normalizer.normalize(snarkjs_case("mul1", "groth16"))
    assert (env.scheme, env.producer_kind) == (Scheme.GROTH16.label, "snarkjs")
    with pytest.raises(NormalizeError) as ei:  # labels are exact: no case folding
        py_normalizer.normalize(dataclasses.replace(snarkjs_case("mul1", "groth16"), scheme="GROTH16"))
    assert (ei.value.code, ei.value.field) == (Code.UNSUPPORTED_FORMAT, "scheme")


# ---------------------------------------------------------------- the interface is the only path


def test_api_names_no_concrete_scheme() -> None:
    tree = ast.parse(API_SRC)
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    assert not imported & {"normalizers.groth16", "normalizers.plonk", "normalizers.halo2"}, imported
    assert "normalizers" not in imported  # no `from normalizers import groth16`
    for node in ast.walk(tree):  # docstrings show usage examples; only the code must not name schemes
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                body[0].value.value = ""
    code = ast.unparse(tree)
    concrete = ("Groth16Verifier", "PlonkVerifier", "Halo2Verifier", "fast_gnark", "submit_gnark")
    concrete += ("finish_gnark", "canonical_vk(", "isinstance(v,", "'halo2'", "'groth16'", "'plonk'")
    for name in concrete:
        assert name not in code, name


class _FakeBatch:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def submit(
        self, fmt: str, proof: bytes, vk: bytes, public: bytes | None, settings: bytes | None
    ) -> Pending:
        self.log.append(f"submit:{fmt}:{proof.decode()}")
        if proof == b"early":
            raise NormalizeError(Code.MALFORMED, "proof", "rejected at submit")
        if proof == b"bad":
            return Pending.failed(NormalizeError(Code.VERIFICATION_FAILED, "proof", "no"))
        pvk = ParsedVk(Scheme.GROTH16, vk, 1)
        return Pending(lambda: self._resolve(pvk))

    def _resolve(self, pvk: ParsedVk) -> Statement:
        self.log.append("result")
        return Statement(pvk, b"canonical-proof", ((7).to_bytes(32, "big"),), producer_version="fake/1")

    def flush(self) -> None:
        self.log.append("flush")


class _FakeGroth16:
    """Implements exactly the SchemeVerifier interface (any other attribute would be missing)."""

    scheme = Scheme.GROTH16
    made: list[_FakeGroth16] = []  # noqa: RUF012 - test-only record of instances

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.log: list[str] = []
        self.closed = False
        _FakeGroth16.made.append(self)

    def validate_vk(self, fmt: str, vk: bytes, settings: bytes | None) -> ParsedVk:
        self.log.append(f"validate_vk:{fmt}")
        return ParsedVk(Scheme.GROTH16, b"canonical:" + vk, 1)

    def batch(self) -> _FakeBatch:
        self.log.append("batch")
        return _FakeBatch(self.log)

    def close(self) -> None:
        self.closed = True


def test_a_scheme_is_used_only_through_the_interface() -> None:
    _FakeGroth16.made.clear()
    inp = ProofInput("groth16", "gnark", b"good", b"vk", public=b"pub")
    with Normalizer(verifiers={**VERIFIERS, Scheme.GROTH16: _FakeGroth16}) as n:
        [fake] = _FakeGroth16.made
        env = n.normalize(inp)
        assert fake.log == ["batch", "submit:gnark:good", "flush", "result"]
        assert (env.scheme, env.producer_kind, env.producer_version) == ("groth16", "gnark", "fake/1")
        assert env.canonical_vk == b"vk" and env.proof == b"canonical-proof"
        fake.log.clear()
        out = n.normalize_many(
            [inp, dataclasses.replace(inp, proof=b"bad"), dataclasses.replace(inp, proof=b"early"), inp]
        )
        # one batch per call, every submit before the one flush, results read after it
        assert fake.log == ["batch", "submit:gnark:good", "submit:gnark:bad", "submit:gnark:early",
                            "submit:gnark:good", "flush", "result", "result"]  # fmt: skip
        assert out[0] == out[3] == env
        assert isinstance(out[1], NormalizeError) and out[1].code == Code.VERIFICATION_FAILED
        assert isinstance(out[2], NormalizeError) and out[2].code == Code.MALFORMED
        fake.log.clear()
        assert parse_vk("groth16", "snarkjs", b"k", normalizer=n)[0] == b"canonical:k"
        assert fake.log == ["validate_vk:snarkjs"]
    assert fake.closed


def test_a_verifier_bug_is_a_coded_internal_error() -> None:
    class Broken(_FakeGroth16):
        def batch(self) -> Any:
            raise ZeroDivisionError("bug")

    with Normalizer(verifiers={**VERIFIERS, Scheme.GROTH16: Broken}) as n:
        [err] = n.normalize_many([ProofInput("groth16", "gnark", b"x", b"vk", public=b"p")])
        assert isinstance(err, NormalizeError) and err.code == Code.INTERNAL and "ZeroDivision" in err.message


# ---------------------------------------------------------------- caches: per Normalizer, bounded


def test_vk_cache_is_per_normalizer_and_bounded() -> None:
    circuits = ("mul1", "multi5", "sq1")
    with Normalizer(vk_cache_size=2, groth16_backend="groth16py") as n, \
            Normalizer(groth16_backend="groth16py") as other:  # fmt: skip
        for c in circuits:
            n.normalize(snarkjs_case(c, "groth16"))
        keys = [
            vk_cache_key(Scheme.GROTH16, "snarkjs", snarkjs_case(c, "groth16").vk, None) for c in circuits
        ]
        assert len(n.ctx.vks) == 2 and keys[0] not in n.ctx.vks and keys[2] in n.ctx.vks
        assert len(other.ctx.vks) == 0
        n.normalize(snarkjs_case("mul1", "groth16"))  # evicted keys are validated again
        assert keys[0] in n.ctx.vks and keys[1] not in n.ctx.vks


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_halo2_key_files_are_bounded_and_closed() -> None:
    slices = sorted(p.name for p in EZKL.iterdir() if (p / "proof0.json").exists())
    assert len(slices) >= 3, slices
    before = _open_fds()
    with Normalizer(srs=EZKL / "verifier-k1.srs", vk_cache_size=2, groth16_backend="groth16py") as n:
        for name in slices:
            n.normalize(ezkl_case(name))
        assert len(n.ctx.vks) == 2
        # two memfds (vk.key, settings) per cached key; the evicted key's files are closed
        assert _open_fds() - before <= 2 * 2
        again = n.normalize(ezkl_case(slices[0]))  # evicted: rewritten and verified again
        assert again.statement_hash
    assert _open_fds() == before


def test_no_module_level_mutable_state() -> None:
    mutable = (dict, list, set, LRU, Normalizer, Context)
    for m in pkgutil.iter_modules(normalizers.__path__):
        if m.name == "sidecar":  # the process client (owned elsewhere): state lives in instances
            continue
        mod = importlib.import_module(f"normalizers.{m.name}")
        for name, val in vars(mod).items():
            if name.startswith("__") or isinstance(val, types.ModuleType | type):
                continue
            assert not isinstance(val, mutable), f"normalizers.{m.name}.{name} is module-level state"
            assert not re.fullmatch(r"[A-Z_]*VERIFIER", name), f"normalizers.{m.name}.{name}"


# ---------------------------------------------------------------- PLONK keys without a proof


@pytest.mark.parametrize(
    "inp",
    [
        snarkjs_case("mul1", "plonk"),
        snarkjs_case("multi5", "plonk"),
        plonk_case("plonk_n1"),
        plonk_case("plonk_n3", "proof_raw", "vk_raw"),
    ],
    ids=["snarkjs-mul1", "snarkjs-multi5", "gnark-n1", "gnark-n3-raw"],
)
def test_plonk_validate_vk_is_the_real_canonical_key(normalizer: Normalizer, inp: ProofInput) -> None:
    vk = normalizer.validate_vk("plonk", inp.format, inp.vk)
    env = normalizer.normalize(inp)
    assert vk.scheme is Scheme.PLONK and vk.canonical == env.canonical_vk and vk.vk_hash == env.vk_hash
    assert vk.n_public == len(env.public_inputs) > 0


# ---------------------------------------------------------------- sidecar round trips


@pytest.fixture
def ops(gnark_bin: Path) -> Iterator[tuple[Normalizer, list[str]]]:
    with Normalizer(sidecar_bin=str(gnark_bin), chunk_size=2) as n:
        sent: list[str] = []
        sc = n.ctx.sidecar()
        submit = sc.submit

        def counting(op: str, **params: Any) -> Any:
            sent.append(op)
            return submit(op, **params)

        sc.submit = counting  # type: ignore[method-assign]
        yield n, sent


def test_normalize_many_round_trips(ops: tuple[Normalizer, list[str]]) -> None:
    n, sent = ops
    snark = [snarkjs_case(c, "groth16", i) for c in ("mul1", "multi5") for i in (0, 1)] + [
        snarkjs_case("sq1", "groth16")
    ]
    gnark = [g16_case("groth16_n2", "proof_raw", "vk_raw"), g16_case("groth16_n3")]
    plonk = [snarkjs_case("mul1", "plonk"), plonk_case("plonk_n1")]
    out = n.normalize_many([*snark, *gnark, *plonk])
    assert all(not isinstance(e, NormalizeError) for e in out), out
    # 5 snarkjs Groth16 in chunks of 2: 3 RLC batches; unknown gnark vks and PLONK: one decode each
    assert sorted(sent) == sorted(
        ["groth16.verify_batch"] * 3 + ["groth16.normalize"] * 2 + ["plonk.normalize"] * 2
    )
    sent.clear()
    # a known gnark vk without commitments takes the Python fast path into the RLC batch
    again = n.normalize_many([gnark[0], gnark[0], gnark[0]])
    assert again == [out[len(snark)]] * 3
    assert sent == ["groth16.verify_batch", "groth16.verify_batch"]


# ---------------------------------------------------------------- errors


def test_normalize_error_is_a_sheaf_error() -> None:
    assert issubclass(NormalizeError, sheaf_errors.SheafError)
    want = {Code.SIDECAR_UNAVAILABLE: 503, Code.INTERNAL: 500, Code.TOO_LARGE: 413, Code.MALFORMED: 400}
    for code, http in want.items():
        e = NormalizeError(code, "f", "m")
        assert sheaf_errors.status_of(e).http == http, code
    e = NormalizeError("VERIFICATION_FAILED", "proof", "no")
    assert e.code is Code.VERIFICATION_FAILED and e.code.value == "VERIFICATION_FAILED"
    assert pickle.loads(pickle.dumps(e)) == e and hash(e) == hash(NormalizeError(e.code, "proof", "no"))
    assert e.to_dict() == {"code": "VERIFICATION_FAILED", "field": "proof", "message": "no"}
    assert str(e) == "VERIFICATION_FAILED: proof: no"
    with pytest.raises(ValueError):
        NormalizeError("NOT_A_CODE", "f", "m")
