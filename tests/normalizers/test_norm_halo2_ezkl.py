"""ezkl 23 Halo2: real proofs of two ONNX slices (tests/fixtures/ezkl), verified in-process through
memfd paths with the committed k=1 verifier SRS; tamper matrix; vk/settings binding."""

from __future__ import annotations

import dataclasses
import json
import struct
from collections.abc import Callable
from typing import Any

import pytest
from nz_helpers import EZKL, ezkl_case

from normalizers.api import Normalizer, ProofInput, parse_vk
from normalizers.errors import Code, NormalizeError
from normalizers.statement import BN254_R, keccak256

SLICES = sorted(p.name for p in EZKL.iterdir() if p.is_dir() and (p / "proof0.json").exists())


def spec_canonical_vk(vk: bytes, settings: bytes) -> bytes:
    s = json.loads(settings)
    for k in ("timestamp", "version"):
        s.pop(k, None)
    sb = json.dumps(s, sort_keys=True, separators=(",", ":")).encode()
    return b"ezkl-halo2-kzg-bn254/v1" + struct.pack(">I", len(vk)) + vk + struct.pack(">I", len(sb)) + sb


def test_two_slices_present() -> None:
    assert len(SLICES) >= 2, SLICES


CASES = [
    (n, int(p.stem.removeprefix("proof"))) for n in SLICES for p in sorted((EZKL / n).glob("proof*.json"))
]


@pytest.mark.parametrize(("name", "i"), CASES)
def test_valid_fixture(py_normalizer: Normalizer, name: str, i: int) -> None:
    inp = ezkl_case(name, i)
    env = py_normalizer.normalize(inp)
    p = json.loads(inp.proof)
    flat = [x for col in p["instances"] for x in col]
    assert env.public_inputs == tuple(
        int.from_bytes(bytes.fromhex(x), "little").to_bytes(32, "big") for x in flat
    )
    assert env.proof == bytes(p["proof"])
    assert env.canonical_vk == spec_canonical_vk(inp.vk, inp.settings or b"")
    assert env.vk_hash == keccak256(b"sheaf/vk\x03" + env.canonical_vk)
    assert env.statement_hash == keccak256(
        b"sheaf/statement\x01\x03" + env.vk_hash + keccak256(b"".join(env.public_inputs))
    )
    assert (env.scheme, env.producer_kind, env.producer_version, env.recursion_eligible) == (
        "halo2", "ezkl", "23.0.5", False,
    )  # fmt: skip
    assert parse_vk("halo2", "ezkl", inp.vk, inp.settings, normalizer=py_normalizer) == (
        env.canonical_vk, env.vk_hash,
    )  # fmt: skip


def test_canonical_proof_is_evm_calldata(py_normalizer: Normalizer, tmp_path: Any) -> None:
    import ezkl

    name = SLICES[0]
    inp = ezkl_case(name)
    env = py_normalizer.normalize(inp)
    out = tmp_path / "calldata.bin"
    ezkl.encode_evm_calldata(str(EZKL / name / "proof0.json"), str(out))
    cd = out.read_bytes()
    off = int.from_bytes(cd[4:36], "big")
    n = int.from_bytes(cd[4 + off : 36 + off], "big")
    assert cd[36 + off : 36 + off + n] == env.proof
    off2 = int.from_bytes(cd[36:68], "big")
    m = int.from_bytes(cd[4 + off2 : 36 + off2], "big")
    assert tuple(cd[36 + off2 + 32 * k : 68 + off2 + 32 * k] for k in range(m)) == env.public_inputs


def _mut_proof(inp: ProofInput, f: Callable[[dict[str, Any]], None], keep_hex: bool = False) -> ProofInput:
    p = json.loads(inp.proof)
    f(p)
    if not keep_hex:
        p.pop("hex_proof", None)
    return dataclasses.replace(inp, proof=json.dumps(p).encode())


def _le(n: int) -> str:
    return n.to_bytes(32, "little").hex()


def test_bit_flip_in_every_proof_element(py_normalizer: Normalizer) -> None:
    inp = ezkl_case(SLICES[0])
    n_words = len(json.loads(inp.proof)["proof"]) // 32
    for w in range(n_words):

        def flip(p: dict[str, Any], w: int = w) -> None:
            p["proof"][32 * w + 31] ^= 1

        with pytest.raises(NormalizeError) as ei:
            py_normalizer.normalize(_mut_proof(inp, flip))
        assert ei.value.code == Code.VERIFICATION_FAILED, (w, ei.value)


INSTANCE_MUTATIONS: list[tuple[str, Callable[[dict[str, Any]], None], Code]] = [
    (
        "changed",
        lambda p: p["instances"][0].__setitem__(
            0, _le(int.from_bytes(bytes.fromhex(p["instances"][0][0]), "little") + 1)
        ),
        Code.VERIFICATION_FAILED,
    ),
    (
        "swapped",
        lambda p: p["instances"][0].__setitem__(slice(0, 2), [p["instances"][0][1], p["instances"][0][0]]),
        Code.VERIFICATION_FAILED,
    ),
    (
        "plus r",
        lambda p: p["instances"][0].__setitem__(
            0, _le(int.from_bytes(bytes.fromhex(p["instances"][0][0]), "little") + BN254_R)
        ),
        Code.NON_CANONICAL_SCALAR,
    ),
    (
        "uppercase hex",
        lambda p: p["instances"][0].__setitem__(1, p["instances"][0][1].upper()),
        Code.MALFORMED,
    ),
    (
        "0x prefix",
        lambda p: p["instances"][0].__setitem__(1, "0x" + p["instances"][0][1][2:]),
        Code.MALFORMED,
    ),
    ("63 chars", lambda p: p["instances"][0].__setitem__(1, p["instances"][0][1][:63]), Code.MALFORMED),
    ("integer", lambda p: p["instances"][0].__setitem__(1, 5), Code.MALFORMED),
    ("flat list", lambda p: p.__setitem__("instances", p["instances"][0]), Code.MALFORMED),
    ("one missing", lambda p: p["instances"][0].pop(), Code.PUBLIC_INPUT_COUNT),
    ("one extra", lambda p: p["instances"][0].append(_le(1)), Code.PUBLIC_INPUT_COUNT),
    ("extra column", lambda p: p["instances"].append([_le(1)]), Code.PUBLIC_INPUT_COUNT),
    ("byte 256", lambda p: p["proof"].__setitem__(3, 256), Code.MALFORMED),
    ("byte -1", lambda p: p["proof"].__setitem__(3, -1), Code.MALFORMED),
    ("byte float", lambda p: p["proof"].__setitem__(3, 3.0), Code.MALFORMED),
    ("byte string", lambda p: p["proof"].__setitem__(3, "3"), Code.MALFORMED),
    ("byte bool", lambda p: p["proof"].__setitem__(3, True), Code.MALFORMED),
    ("proof hex string", lambda p: p.__setitem__("proof", "0x00"), Code.MALFORMED),
    ("truncated 1", lambda p: p.__setitem__("proof", p["proof"][:-1]), Code.INVALID_LENGTH),
    ("truncated 32", lambda p: p.__setitem__("proof", p["proof"][:-32]), Code.INVALID_LENGTH),
    ("padded 32", lambda p: p.__setitem__("proof", p["proof"] + [0] * 32), Code.INVALID_LENGTH),
    ("padded 64", lambda p: p.__setitem__("proof", p["proof"] + [7] * 64), Code.INVALID_LENGTH),
    ("empty proof", lambda p: p.__setitem__("proof", []), Code.INVALID_LENGTH),
    ("extra field", lambda p: p.__setitem__("foo", 1), Code.MALFORMED),
    ("missing instances", lambda p: p.__delitem__("instances"), Code.MALFORMED),
]


@pytest.mark.parametrize(("name", "mut", "code"), INSTANCE_MUTATIONS, ids=[m[0] for m in INSTANCE_MUTATIONS])
def test_proof_tamper(
    py_normalizer: Normalizer, name: str, mut: Callable[[dict[str, Any]], None], code: Code
) -> None:
    inp = ezkl_case(SLICES[0])
    py_normalizer.normalize(inp)  # warm the exact-length cache like a running service would
    with pytest.raises(NormalizeError) as ei:
        py_normalizer.normalize(_mut_proof(inp, mut))
    assert ei.value.code == code, ei.value
    assert ei.value.field.startswith("proof"), ei.value


def test_padding_rejected_on_a_cold_cache() -> None:
    # a fresh Normalizer has its own (empty) exact-length cache: it must detect padding by itself
    inp = ezkl_case(SLICES[1])
    with Normalizer(srs=EZKL / "verifier-k1.srs", groth16_backend="groth16py") as n:
        with pytest.raises(NormalizeError) as ei:
            n.normalize(_mut_proof(inp, lambda p: p.__setitem__("proof", p["proof"] + [0] * 32)))
        assert (ei.value.code, ei.value.field) == (Code.INVALID_LENGTH, "proof.proof")
    with Normalizer(srs=EZKL / "verifier-k1.srs", groth16_backend="groth16py") as n:
        with pytest.raises(NormalizeError) as ei:
            n.normalize(dataclasses.replace(inp, vk=inp.vk + b"\x00" * 64))
        assert (ei.value.code, ei.value.field) == (Code.INVALID_LENGTH, "vk")


def test_hex_proof_must_match(py_normalizer: Normalizer) -> None:
    inp = ezkl_case(SLICES[0])
    bad = _mut_proof(inp, lambda p: p.__setitem__("hex_proof", "0x00" + p["hex_proof"][4:]), keep_hex=True)
    with pytest.raises(NormalizeError) as ei:
        py_normalizer.normalize(bad)
    assert (ei.value.code, ei.value.field) == (Code.MALFORMED, "proof.hex_proof")


def test_vk_and_settings_of_another_circuit(py_normalizer: Normalizer) -> None:
    a, b = ezkl_case(SLICES[0]), ezkl_case(SLICES[1])
    with pytest.raises(NormalizeError) as ei:  # other vk + other settings: instance count differs
        py_normalizer.normalize(dataclasses.replace(a, vk=b.vk, settings=b.settings))
    assert ei.value.code == Code.PUBLIC_INPUT_COUNT
    with pytest.raises(NormalizeError) as ei:  # other vk, own settings
        py_normalizer.normalize(dataclasses.replace(a, vk=b.vk))
    assert ei.value.code == Code.VERIFICATION_FAILED
    with pytest.raises(NormalizeError) as ei:
        py_normalizer.normalize(dataclasses.replace(a, vk=a.vk[:-10]))
    assert ei.value.code == Code.VERIFICATION_FAILED


def _mut_settings(inp: ProofInput, f: Callable[[dict[str, Any]], None]) -> ProofInput:
    s = json.loads(inp.settings or b"")
    f(s)
    return dataclasses.replace(inp, settings=json.dumps(s).encode())


def test_settings_binding(py_normalizer: Normalizer) -> None:
    inp = ezkl_case(SLICES[0])
    base = py_normalizer.normalize(inp)
    # fields the proof does not bind still change the vk hash (how outputs are read)
    rescaled = py_normalizer.normalize(
        _mut_settings(inp, lambda s: s.__setitem__("model_output_scales", [1]))
    )
    assert rescaled.vk_hash != base.vk_hash and rescaled.public_inputs == base.public_inputs
    vis = py_normalizer.normalize(_mut_settings(inp, lambda s: s["run_args"].__setitem__("input_scale", 7)))
    assert vis.vk_hash != base.vk_hash
    # timestamp and version are not bound; key order and whitespace do not matter
    same = py_normalizer.normalize(_mut_settings(inp, lambda s: s.__setitem__("timestamp", 1)))
    assert same.vk_hash == base.vk_hash
    spaced = json.dumps(dict(reversed(list(json.loads(inp.settings or b"").items()))), indent=3).encode()
    assert py_normalizer.normalize(dataclasses.replace(inp, settings=spaced)).vk_hash == base.vk_hash
    # a settings change that alters the circuit fails verification
    with pytest.raises(NormalizeError) as ei:
        py_normalizer.normalize(_mut_settings(inp, lambda s: s["run_args"].__setitem__("logrows", 16)))
    assert ei.value.code == Code.VERIFICATION_FAILED


def test_range_check_order_is_part_of_the_circuit(py_normalizer: Normalizer) -> None:
    """ezkl lists `required_range_checks` from a hash set (another order on another run) but lays
    out the circuit in the listed order: with them permuted the proof no longer verifies, so the vk
    hash binds the order (the prover makes it canonical before compiling: tests/provers), while
    the timestamp is not bound. Fresh normalizers: no key file cached under the base vk hash."""
    for name in SLICES:
        inp = ezkl_case(name)
        base = py_normalizer.normalize(inp)
        checks = json.loads(inp.settings or b"")["required_range_checks"]
        assert len(checks) >= 2, (name, checks)

        def permute(s: dict[str, Any]) -> None:
            s["required_range_checks"] = list(reversed(s["required_range_checks"]))

        permuted = _mut_settings(inp, permute)
        _, permuted_hash = parse_vk("halo2", "ezkl", permuted.vk, permuted.settings, normalizer=py_normalizer)
        assert permuted_hash != base.vk_hash, name
        with (
            Normalizer(srs=EZKL / "verifier-k1.srs", groth16_backend="groth16py") as fresh,
            pytest.raises(NormalizeError) as ei,
        ):
            fresh.normalize(permuted)
        assert ei.value.code == Code.VERIFICATION_FAILED, (name, ei.value)
        stamped = _mut_settings(inp, lambda s: s.__setitem__("timestamp", int(s.get("timestamp") or 0) + 1))
        with Normalizer(srs=EZKL / "verifier-k1.srs", groth16_backend="groth16py") as fresh:
            assert fresh.normalize(stamped).vk_hash == base.vk_hash, name


SETTINGS_MUTATIONS: list[tuple[str, Callable[[dict[str, Any]], None], Code, str]] = [
    ("unknown field", lambda s: s.__setitem__("new_thing", 1), Code.UNSUPPORTED_FORMAT, "settings.new_thing"),
    (
        "unknown run_arg",
        lambda s: s["run_args"].__setitem__("x", 1),
        Code.UNSUPPORTED_FORMAT,
        "settings.run_args.x",
    ),
    ("version 22", lambda s: s.__setitem__("version", "22.0.1"), Code.UNSUPPORTED_FORMAT, "settings.version"),
    (
        "missing shapes",
        lambda s: s.__delitem__("model_instance_shapes"),
        Code.MALFORMED,
        "settings.model_instance_shapes",
    ),
    (
        "logrows string",
        lambda s: s["run_args"].__setitem__("logrows", "15"),
        Code.MALFORMED,
        "settings.run_args.logrows",
    ),
    (
        "logrows huge",
        lambda s: s["run_args"].__setitem__("logrows", 99),
        Code.MALFORMED,
        "settings.run_args.logrows",
    ),
    (
        "shapes bad",
        lambda s: s.__setitem__("model_instance_shapes", [[1, "8"]]),
        Code.MALFORMED,
        "settings.model_instance_shapes",
    ),
    (
        "shape changed",
        lambda s: s["model_instance_shapes"][0].__setitem__(1, 9),
        Code.PUBLIC_INPUT_COUNT,
        "proof.instances",
    ),
    ("run_args list", lambda s: s.__setitem__("run_args", []), Code.MALFORMED, "settings.run_args"),
]


@pytest.mark.parametrize(
    ("name", "mut", "code", "field"), SETTINGS_MUTATIONS, ids=[m[0] for m in SETTINGS_MUTATIONS]
)
def test_settings_tamper(
    py_normalizer: Normalizer, name: str, mut: Callable[[dict[str, Any]], None], code: Code, field: str
) -> None:
    with pytest.raises(NormalizeError) as ei:
        py_normalizer.normalize(_mut_settings(ezkl_case(SLICES[0]), mut))
    assert (ei.value.code, ei.value.field) == (code, field), ei.value


def test_missing_settings_srs_and_public(py_normalizer: Normalizer) -> None:
    inp = ezkl_case(SLICES[0])
    with pytest.raises(NormalizeError) as ei:
        py_normalizer.normalize(dataclasses.replace(inp, settings=None))
    assert (ei.value.code, ei.value.field) == (Code.MALFORMED, "settings")
    with pytest.raises(NormalizeError) as ei:
        py_normalizer.normalize(dataclasses.replace(inp, public=b"[]"))
    assert (ei.value.code, ei.value.field) == (Code.MALFORMED, "public")
    with Normalizer(srs="/nonexistent.srs") as n, pytest.raises(NormalizeError) as ei:
        n.normalize(inp)
    assert (ei.value.code, ei.value.field) == (Code.MALFORMED, "srs")


def test_nothing_written_to_disk(
    py_normalizer: Normalizer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ezkl gets /proc/self/fd/N paths of memfds; the working dir and TMPDIR stay empty
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    py_normalizer.normalize(ezkl_case(SLICES[0], 1))
    assert list(tmp_path.iterdir()) == []


def test_large_srs_is_cut_for_verification(tmp_path: Any) -> None:
    # an SRS bigger than k=1 is reduced once to the points KZG verification reads (a k=3 file built
    # around the committed k=1 points; the other points are never read)
    k1 = (EZKL / "verifier-k1.srs").read_bytes()
    g1, lag, g2s = k1[4:132], k1[132:260], k1[260:]
    k3 = struct.pack("<I", 3) + g1 + b"\x00" * 64 * 6 + lag + b"\x00" * 64 * 6 + g2s
    (tmp_path / "k3.srs").write_bytes(k3)
    with Normalizer(srs=tmp_path / "k3.srs") as n:
        assert n.normalize(ezkl_case(SLICES[0])).public_inputs
    (tmp_path / "bad.srs").write_bytes(k3[:-5])
    with Normalizer(srs=tmp_path / "bad.srs") as n, pytest.raises(NormalizeError) as ei:
        n.normalize(ezkl_case(SLICES[0]))
    assert (ei.value.code, ei.value.field) == (Code.MALFORMED, "srs")


def test_default_srs_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHEAF_SRS", str(EZKL / "verifier-k1.srs"))
    with Normalizer() as n:
        assert n.ctx.srs_path == str(EZKL / "verifier-k1.srs")
        assert n.normalize(ezkl_case(SLICES[0])).scheme == "halo2"
