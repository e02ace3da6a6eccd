"""PLONK through the sidecar's plonk.normalize: snarkjs JSON (our circom/snarkjs fixtures) and gnark
binaries (tests/fixtures/gnark); envelope recomputed from the spec; tamper matrix."""

from __future__ import annotations

import dataclasses
import json
import struct
from collections.abc import Callable
from typing import Any

import pytest
from nz_helpers import GNARK, jdump, jload, snarkjs_case

from normalizers.api import Normalizer, ProofInput
from normalizers.errors import Code, NormalizeError
from normalizers.statement import BN254_P, BN254_R, keccak256

SNARKJS_CASES = [("mul1", 0), ("mul1", 1), ("multi5", 0), ("multi5", 1), ("sq1", 0)]
_GNARK_ALL = [f for f in json.loads((GNARK / "manifest.json").read_text())["fixtures"]
              if f["scheme"] == "plonk" and f.get("producer", "gnark") == "gnark"]  # fmt: skip
# proofs for gnark's exported Solidity verifier (SHA-256 transcript)
GNARK_PLONK = [f for f in _GNARK_ALL if f.get("transcript", "solidity") == "solidity"]
# proofs made with the recursion transcript (MiMC), verifiable in the aggregation circuit
GNARK_PLONK_RECURSION = [f for f in _GNARK_ALL if f.get("transcript") == "recursion"]


def gnark_case(name: str, proof: str = "proof", vk: str = "vk") -> ProofInput:
    f = next(x for x in _GNARK_ALL if x["name"] == name)
    files = f["files"]
    return ProofInput(
        "plonk", "gnark", (GNARK / files[proof]).read_bytes(), (GNARK / files[vk]).read_bytes(),
        public=(GNARK / files["public_witness"]).read_bytes(),
    )  # fmt: skip


def _g1(p: list[str]) -> bytes:
    if p[2] == "0":  # infinity: all zeros
        return bytes(64)
    return int(p[0]).to_bytes(32, "big") + int(p[1]).to_bytes(32, "big")


def _fr(x: str) -> bytes:
    return int(x).to_bytes(32, "big")


def _check_statement(env: Any, recursion_eligible: bool = False) -> None:
    assert env.vk_hash == keccak256(b"sheaf/vk\x02" + env.canonical_vk)
    assert env.statement_hash == keccak256(
        b"sheaf/statement\x01\x02" + env.vk_hash + keccak256(b"".join(env.public_inputs))
    )
    assert env.scheme == "plonk" and env.recursion_eligible is recursion_eligible


@pytest.mark.parametrize(("circuit", "i"), SNARKJS_CASES)
def test_snarkjs_valid(normalizer: Normalizer, circuit: str, i: int) -> None:
    inp = snarkjs_case(circuit, "plonk", i)
    env = normalizer.normalize(inp)
    v, p, pub = jload(inp.vk), jload(inp.proof), jload(inp.public or b"")
    g2 = v["X_2"]
    want_vk = (
        b"\x02" + struct.pack(">II", v["nPublic"], v["power"]) + _fr(v["k1"]) + _fr(v["k2"])
        + b"".join(_g1(v[k]) for k in ("Qm", "Ql", "Qr", "Qo", "Qc", "S1", "S2", "S3"))
        + b"".join(int(c).to_bytes(32, "big") for c in (g2[0][1], g2[0][0], g2[1][1], g2[1][0]))
    )  # fmt: skip
    assert env.canonical_vk == want_vk
    want_proof = b"".join(
        _g1(p[k]) for k in ("A", "B", "C", "Z", "T1", "T2", "T3", "Wxi", "Wxiw")
    ) + b"".join(_fr(p[k]) for k in ("eval_a", "eval_b", "eval_c", "eval_s1", "eval_s2", "eval_zw"))
    assert env.proof == want_proof and len(env.proof) == 768
    assert env.public_inputs == tuple(_fr(x) for x in pub)
    assert env.producer_kind == "snarkjs"
    _check_statement(env)


@pytest.mark.parametrize("name", [f["name"] for f in GNARK_PLONK])
@pytest.mark.parametrize("kind", [("proof", "vk"), ("proof_raw", "vk_raw")])
def test_gnark_valid(normalizer: Normalizer, name: str, kind: tuple[str, str]) -> None:
    f = next(x for x in GNARK_PLONK if x["name"] == name)
    env = normalizer.normalize(gnark_case(name, *kind))
    calldata = json.loads((GNARK / f["files"]["solidity_calldata"]).read_text())
    assert "0x" + env.proof.hex() == calldata["proof"]
    assert ["0x" + p.hex() for p in env.public_inputs] == json.loads(
        (GNARK / f["files"]["public_json"]).read_text()
    )
    assert env.canonical_vk[:1] == b"\x01" and env.producer_kind == "gnark"
    _check_statement(env)


@pytest.mark.parametrize("name", [f["name"] for f in GNARK_PLONK_RECURSION])
@pytest.mark.parametrize("kind", [("proof", "vk"), ("proof_raw", "vk_raw")])
def test_gnark_recursion_transcript(normalizer: Normalizer, name: str, kind: tuple[str, str]) -> None:
    """A recursion-transcript proof is verified (the sidecar tries the Solidity transcript, then
    MiMC's) and marked recursion-eligible; tampering it is still rejected."""
    f = next(x for x in GNARK_PLONK_RECURSION if x["name"] == name)
    env = normalizer.normalize(gnark_case(name, *kind))
    assert ["0x" + p.hex() for p in env.public_inputs] == json.loads(
        (GNARK / f["files"]["public_json"]).read_text()
    )
    assert env.canonical_vk[:1] == b"\x01" and env.producer_kind == "gnark"
    _check_statement(env, recursion_eligible=True)
    inp = gnark_case(name, *kind)
    pub = bytearray(inp.public or b"")
    pub[-1] ^= 1  # another statement, same proof
    with pytest.raises(NormalizeError) as e:
        normalizer.normalize(dataclasses.replace(inp, public=bytes(pub)))
    assert e.value.code == Code.VERIFICATION_FAILED
    assert "recursion" in e.value.message


def test_recursion_fixture_exists() -> None:
    assert GNARK_PLONK_RECURSION, "tests/fixtures/gnark has no recursion-transcript PLONK fixture"


def test_gnark_and_snarkjs_vk_hashes_are_distinct(normalizer: Normalizer) -> None:
    a = normalizer.normalize(gnark_case(GNARK_PLONK[0]["name"]))
    b = normalizer.normalize(snarkjs_case("mul1", "plonk"))
    assert a.canonical_vk[0] != b.canonical_vk[0] and a.vk_hash != b.vk_hash


Mut = Callable[[dict[str, Any]], None]
PROOF_MUTATIONS: list[tuple[str, Mut, Code]] = [
    ("A bit flip", lambda p: p["A"].__setitem__(0, str(int(p["A"][0]) ^ 1)), Code.INVALID_POINT),
    (
        "Wxi + p",
        lambda p: p["Wxi"].__setitem__(1, str(int(p["Wxi"][1]) + BN254_P)),
        Code.NON_CANONICAL_SCALAR,
    ),
    (
        "eval_a + r",
        lambda p: p.__setitem__("eval_a", str(int(p["eval_a"]) + BN254_R)),
        Code.NON_CANONICAL_SCALAR,
    ),
    ("eval_b + 1", lambda p: p.__setitem__("eval_b", str(int(p["eval_b"]) + 1)), Code.VERIFICATION_FAILED),
    ("Z <-> T1", lambda p: p.update(Z=p["T1"], T1=p["Z"]), Code.VERIFICATION_FAILED),
    ("C infinity", lambda p: p.__setitem__("C", ["0", "1", "0"]), Code.POINT_AT_INFINITY),
    ("eval number", lambda p: p.__setitem__("eval_c", int(p["eval_c"])), Code.MALFORMED),
    ("extra field", lambda p: p.__setitem__("x", "1"), Code.MALFORMED),
    ("missing Wxiw", lambda p: p.__delitem__("Wxiw"), Code.MALFORMED),
    ("protocol groth16", lambda p: p.__setitem__("protocol", "groth16"), Code.UNSUPPORTED_FORMAT),
]


@pytest.mark.parametrize(("name", "mut", "code"), PROOF_MUTATIONS, ids=[m[0] for m in PROOF_MUTATIONS])
def test_snarkjs_proof_tamper(normalizer: Normalizer, name: str, mut: Mut, code: Code) -> None:
    inp = snarkjs_case("multi5", "plonk")
    p = jload(inp.proof)
    mut(p)
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(inp, proof=jdump(p)))
    assert ei.value.code == code, ei.value


def test_snarkjs_public_tamper(normalizer: Normalizer) -> None:
    inp = snarkjs_case("multi5", "plonk")
    pub = jload(inp.public or b"")
    cases: list[tuple[list[Any], Code]] = [
        ([str(int(pub[0]) + 1), *pub[1:]], Code.VERIFICATION_FAILED),
        ([pub[1], pub[0], *pub[2:]], Code.VERIFICATION_FAILED),
        (pub[:-1], Code.PUBLIC_INPUT_COUNT),
        ([*pub, "1"], Code.PUBLIC_INPUT_COUNT),
        ([str(int(pub[0]) + BN254_R), *pub[1:]], Code.NON_CANONICAL_SCALAR),
        ([int(pub[0]), *pub[1:]], Code.MALFORMED),
    ]
    for bad, code in cases:
        with pytest.raises(NormalizeError) as ei:
            normalizer.normalize(dataclasses.replace(inp, public=jdump(bad)))
        assert ei.value.code == code, (bad, ei.value)


def test_snarkjs_vk_tamper_and_other_circuit(normalizer: Normalizer) -> None:
    inp = snarkjs_case("mul1", "plonk")
    other = snarkjs_case("sq1", "plonk")
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(inp, vk=other.vk))
    assert ei.value.code == Code.VERIFICATION_FAILED
    v = jload(inp.vk)
    v["w"] = "5"
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(inp, vk=jdump(v)))
    assert ei.value.code == Code.MALFORMED and ei.value.field.startswith("vk")
    v = jload(inp.vk)
    v["Qm"][0] = str(int(v["Qm"][0]) ^ 1)
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(inp, vk=jdump(v)))
    assert ei.value.code == Code.INVALID_POINT


@pytest.mark.parametrize("which", ["proof", "vk", "public"])
def test_snarkjs_malformed_json(normalizer: Normalizer, which: str) -> None:
    inp = snarkjs_case("mul1", "plonk")
    for bad in (b"{", b"[" * 1000 + b"]" * 1000, (getattr(inp, which) or b"")[:-2]):
        with pytest.raises(NormalizeError) as ei:
            normalizer.normalize(dataclasses.replace(inp, **{which: bad}))
        assert ei.value.code in (Code.MALFORMED, Code.TOO_LARGE) and ei.value.field.startswith(which), (
            ei.value
        )


def test_gnark_tamper(normalizer: Normalizer) -> None:
    inp = gnark_case("plonk_n3", "proof_raw", "vk_raw")
    for off in (0, 70, 200, len(inp.proof) - 40):
        b = bytearray(inp.proof)
        b[off] ^= 1
        with pytest.raises(NormalizeError) as ei:
            normalizer.normalize(dataclasses.replace(inp, proof=bytes(b)))
        assert ei.value.code in (Code.INVALID_POINT, Code.VERIFICATION_FAILED, Code.NON_CANONICAL_SCALAR), (
            ei.value
        )
    for bad in (inp.proof[:-1], inp.proof + b"\x00"):
        with pytest.raises(NormalizeError) as ei:
            normalizer.normalize(dataclasses.replace(inp, proof=bad))
        assert ei.value.code == Code.INVALID_LENGTH, ei.value
    pub = bytearray(inp.public or b"")
    pub[-1] ^= 1
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(inp, public=bytes(pub)))
    assert ei.value.code == Code.VERIFICATION_FAILED
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(inp, public=gnark_case("plonk_n1").public))
    assert ei.value.code == Code.PUBLIC_INPUT_COUNT
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(inp, vk=gnark_case("plonk_n1").vk))
    assert ei.value.code in (Code.PUBLIC_INPUT_COUNT, Code.MALFORMED, Code.VERIFICATION_FAILED)


def test_many_mixed(normalizer: Normalizer) -> None:
    good = [snarkjs_case(c, "plonk", i) for c, i in SNARKJS_CASES] + [
        gnark_case(f["name"]) for f in GNARK_PLONK
    ]
    bad = dataclasses.replace(good[0], public=b'["1"]')
    out = normalizer.normalize_many([*good, bad])
    assert all(not isinstance(e, NormalizeError) for e in out[:-1])
    assert isinstance(out[-1], NormalizeError) and out[-1].code == Code.VERIFICATION_FAILED


@pytest.mark.parametrize("circuit", ["mul1", "multi5", "sq1"])
def test_parse_vk_snarkjs_matches_sidecar(normalizer: Normalizer, circuit: str) -> None:
    from normalizers.api import parse_vk

    inp = snarkjs_case(circuit, "plonk")
    env = normalizer.normalize(inp)
    assert parse_vk("plonk", "snarkjs", inp.vk, normalizer=normalizer) == (env.canonical_vk, env.vk_hash)
    v = jload(inp.vk)
    v["w"] = str(int(v["w"]) + 1)
    with pytest.raises(NormalizeError) as ei:
        parse_vk("plonk", "snarkjs", jdump(v), normalizer=normalizer)
    assert (ei.value.code, ei.value.field) == (Code.MALFORMED, "vk.w")


def test_parse_vk_gnark(normalizer: Normalizer) -> None:
    # sidecar groth16.parse_vk / plonk.parse_vk: same canonical bytes as normalize
    from test_norm_groth16_gnark import case as g16_case

    from normalizers.api import parse_vk

    for scheme, inp in (
        ("plonk", gnark_case("plonk_n1")),
        ("plonk", gnark_case("plonk_n3", "proof_raw", "vk_raw")),
        ("groth16", g16_case("groth16_n2")),
        ("groth16", g16_case("groth16_commit_n2")),
    ):
        env = normalizer.normalize(inp)
        assert parse_vk(scheme, "gnark", inp.vk, normalizer=normalizer) == (env.canonical_vk, env.vk_hash)
        with pytest.raises(NormalizeError) as ei:
            parse_vk(scheme, "gnark", inp.vk[:-1], normalizer=normalizer)
        assert ei.value.code == Code.INVALID_LENGTH and ei.value.field.startswith("vk"), ei.value
