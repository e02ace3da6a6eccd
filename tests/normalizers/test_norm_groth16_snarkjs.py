"""snarkjs Groth16: real circom/snarkjs fixtures accepted; every tampering rejected with its code.

Runs against both Groth16 verification backends: in-process groth16py and the gnark sidecar.
"""

from __future__ import annotations

import copy
import json
import struct
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from nz_helpers import jdump, jload, snarkjs_case

from normalizers import bn254
from normalizers.api import Normalizer, ProofInput, parse_vk
from normalizers.errors import Code, NormalizeError
from normalizers.statement import BN254_P, BN254_R, keccak256

CASES = [("mul1", 0), ("mul1", 1), ("multi5", 0), ("multi5", 1), ("sq1", 0)]


@pytest.fixture(params=["groth16py", "sidecar"], scope="module")
def norm(request: pytest.FixtureRequest) -> Iterator[Normalizer]:
    if request.param == "sidecar":
        yield request.getfixturevalue("normalizer")
    else:
        yield request.getfixturevalue("py_normalizer")


def _g1(p: list[str]) -> bytes:
    return int(p[0]).to_bytes(32, "big") + int(p[1]).to_bytes(32, "big")


def _g2(p: list[list[str]]) -> bytes:
    return b"".join(int(c).to_bytes(32, "big") for c in (p[0][1], p[0][0], p[1][1], p[1][0]))


@pytest.mark.parametrize(("circuit", "i"), CASES)
def test_valid_fixture_envelope(norm: Normalizer, circuit: str, i: int) -> None:
    inp = snarkjs_case(circuit, "groth16", i)
    env = norm.normalize(inp)
    vk, proof, pubs = jload(inp.vk), jload(inp.proof), jload(inp.public or b"")
    # canonical encodings rebuilt here from the spec in docs/envelope.md
    want_vk = (
        _g1(vk["vk_alpha_1"])
        + _g2(vk["vk_beta_2"])
        + _g2(vk["vk_gamma_2"])
        + _g2(vk["vk_delta_2"])
        + struct.pack(">I", len(vk["IC"]))
        + b"".join(_g1(p) for p in vk["IC"])
    )
    assert env.canonical_vk == want_vk
    assert env.proof == _g1(proof["pi_a"]) + _g2(proof["pi_b"]) + _g1(proof["pi_c"])
    assert env.public_inputs == tuple(int(x).to_bytes(32, "big") for x in pubs)
    assert env.vk_hash == keccak256(b"sheaf/vk" + bytes([1]) + want_vk)
    want_stmt = keccak256(
        b"sheaf/statement" + bytes([1, 1]) + env.vk_hash + keccak256(b"".join(env.public_inputs))
    )
    assert env.statement_hash == want_stmt
    assert (env.scheme, env.curve, env.producer_kind, env.recursion_eligible) == (
        "groth16",
        "bn254",
        "snarkjs",
        True,
    )
    assert parse_vk("groth16", "snarkjs", inp.vk, normalizer=norm) == (want_vk, env.vk_hash)
    d = json.loads(env.to_json())
    assert d["statement_hash"] == "0x" + want_stmt.hex() and d["vk_hash"] == "0x" + env.vk_hash.hex()


def test_to_proto_roundtrip(py_normalizer: Normalizer) -> None:
    env = py_normalizer.normalize(snarkjs_case("multi5", "groth16"))
    from sheaf.v1 import envelope_pb2 as pb

    m = pb.Envelope.FromString(env.to_proto().SerializeToString())
    assert m.scheme == pb.GROTH16 and m.producer.kind == pb.SNARKJS and m.curve == pb.BN254
    assert bytes(m.statement_hash) == env.statement_hash and bytes(m.vk_hash) == env.vk_hash
    assert [bytes(x) for x in m.public_inputs] == list(env.public_inputs) and bytes(m.proof) == env.proof


def test_same_statement_for_two_proofs(py_normalizer: Normalizer) -> None:
    # proofs are randomized; the statement (vk, public inputs) is not
    a = py_normalizer.normalize(snarkjs_case("mul1", "groth16", 0))
    b = py_normalizer.normalize(
        ProofInput(
            "groth16",
            "snarkjs",
            snarkjs_case("mul1", "groth16", 0).proof,
            a.canonical_vk and snarkjs_case("mul1", "groth16").vk,
            public=snarkjs_case("mul1", "groth16", 0).public,
        )
    )
    assert a.statement_hash == b.statement_hash
    c = py_normalizer.normalize(snarkjs_case("mul1", "groth16", 1))
    assert c.vk_hash == a.vk_hash and c.statement_hash != a.statement_hash


# ---------------------------------------------------------------- tamper matrix

Mut = Callable[[dict[str, Any]], None]


def _twist_point_outside_subgroup() -> list[list[str]]:
    for i in range(1, 100):
        x = (i, 1)
        y = bn254.f2_sqrt(bn254.f2_add(bn254.f2_mul(bn254.f2_sqr(x), x), bn254.B2))
        if y is not None and not bn254.g2_in_subgroup(x, y):
            return [[str(x[0]), str(x[1])], [str(y[0]), str(y[1])], ["1", "0"]]
    raise AssertionError("no twist point found")


BAD_G2 = _twist_point_outside_subgroup()


def _bump(v: str, by: int) -> str:
    return str(int(v) + by)


def _flip(v: str) -> str:
    return str(int(v) ^ 1)


def _neg_g1(p: list[str]) -> list[str]:
    return [p[0], str(BN254_P - int(p[1])), "1"]


PROOF_MUTATIONS: list[tuple[str, Mut, Code]] = []
for k in ("pi_a", "pi_c"):
    for j in (0, 1):
        PROOF_MUTATIONS.append(
            (
                f"{k}[{j}] bit flip",
                lambda p, k=k, j=j: p[k].__setitem__(j, _flip(p[k][j])),
                Code.INVALID_POINT,
            )
        )
        PROOF_MUTATIONS.append(
            (
                f"{k}[{j}] + p",
                lambda p, k=k, j=j: p[k].__setitem__(j, _bump(p[k][j], BN254_P)),
                Code.NON_CANONICAL_SCALAR,
            )
        )
    PROOF_MUTATIONS += [
        (f"{k} negated (on curve)", lambda p, k=k: p.__setitem__(k, _neg_g1(p[k])), Code.VERIFICATION_FAILED),
        (f"{k} infinity", lambda p, k=k: p.__setitem__(k, ["0", "1", "0"]), Code.POINT_AT_INFINITY),
        (f"{k} z=2", lambda p, k=k: p[k].__setitem__(2, "2"), Code.MALFORMED),
        (f"{k} number not string", lambda p, k=k: p[k].__setitem__(0, int(p[k][0])), Code.MALFORMED),
        (f"{k} hex string", lambda p, k=k: p[k].__setitem__(0, hex(int(p[k][0]))), Code.MALFORMED),
        (f"{k} leading zero", lambda p, k=k: p[k].__setitem__(0, "0" + p[k][0]), Code.MALFORMED),
        (f"{k} negative", lambda p, k=k: p[k].__setitem__(0, "-" + p[k][0]), Code.MALFORMED),
        (f"{k} 2 coords", lambda p, k=k: p.__setitem__(k, p[k][:2]), Code.MALFORMED),
        (f"{k} float", lambda p, k=k: p[k].__setitem__(0, 1.5), Code.MALFORMED),
    ]
for a in (0, 1):
    for c in (0, 1):
        PROOF_MUTATIONS.append(
            (
                f"pi_b[{a}][{c}] bit flip",
                lambda p, a=a, c=c: p["pi_b"][a].__setitem__(c, _flip(p["pi_b"][a][c])),
                Code.INVALID_POINT,
            )
        )
        PROOF_MUTATIONS.append(
            (
                f"pi_b[{a}][{c}] + p",
                lambda p, a=a, c=c: p["pi_b"][a].__setitem__(c, _bump(p["pi_b"][a][c], BN254_P)),
                Code.NON_CANONICAL_SCALAR,
            )
        )
PROOF_MUTATIONS += [
    (
        "pi_b c0/c1 swapped",
        lambda p: [p["pi_b"][0].reverse(), p["pi_b"][1].reverse()] and None,
        Code.INVALID_POINT,
    ),
    ("pi_b outside subgroup", lambda p: p.__setitem__("pi_b", copy.deepcopy(BAD_G2)), Code.NOT_IN_SUBGROUP),
    ("pi_b infinity", lambda p: p["pi_b"].__setitem__(2, ["0", "0"]), Code.POINT_AT_INFINITY),
    ("pi_b z=[1,1]", lambda p: p["pi_b"].__setitem__(2, ["1", "1"]), Code.MALFORMED),
    ("pi_a <-> pi_c", lambda p: p.update(pi_a=p["pi_c"], pi_c=p["pi_a"]), Code.VERIFICATION_FAILED),
    ("protocol plonk", lambda p: p.__setitem__("protocol", "plonk"), Code.UNSUPPORTED_FORMAT),
    ("curve bls12381", lambda p: p.__setitem__("curve", "bls12381"), Code.UNSUPPORTED_FORMAT),
    ("extra field", lambda p: p.__setitem__("extra", 1), Code.MALFORMED),
    ("missing pi_c", lambda p: p.__delitem__("pi_c"), Code.MALFORMED),
    ("pi_a null", lambda p: p.__setitem__("pi_a", None), Code.MALFORMED),
    ("pi_b flat", lambda p: p.__setitem__("pi_b", p["pi_b"][0] + p["pi_b"][1]), Code.MALFORMED),
]


@pytest.mark.parametrize(("name", "mut", "code"), PROOF_MUTATIONS, ids=[m[0] for m in PROOF_MUTATIONS])
def test_proof_tamper(norm: Normalizer, name: str, mut: Mut, code: Code) -> None:
    inp = snarkjs_case("multi5", "groth16")
    p = jload(inp.proof)
    mut(p)
    with pytest.raises(NormalizeError) as ei:
        norm.normalize(ProofInput("groth16", "snarkjs", jdump(p), inp.vk, public=inp.public))
    assert ei.value.code == code, ei.value
    assert ei.value.field.startswith("proof"), ei.value


VK_MUTATIONS: list[tuple[str, Mut, Code]] = [
    (
        "alpha bit flip",
        lambda v: v["vk_alpha_1"].__setitem__(0, _flip(v["vk_alpha_1"][0])),
        Code.INVALID_POINT,
    ),
    ("alpha infinity", lambda v: v.__setitem__("vk_alpha_1", ["0", "1", "0"]), Code.POINT_AT_INFINITY),
    (
        "beta outside subgroup",
        lambda v: v.__setitem__("vk_beta_2", copy.deepcopy(BAD_G2)),
        Code.NOT_IN_SUBGROUP,
    ),
    (
        "gamma outside subgroup",
        lambda v: v.__setitem__("vk_gamma_2", copy.deepcopy(BAD_G2)),
        Code.NOT_IN_SUBGROUP,
    ),
    (
        "delta outside subgroup",
        lambda v: v.__setitem__("vk_delta_2", copy.deepcopy(BAD_G2)),
        Code.NOT_IN_SUBGROUP,
    ),
    (
        "delta bit flip",
        lambda v: v["vk_delta_2"][1].__setitem__(0, _flip(v["vk_delta_2"][1][0])),
        Code.INVALID_POINT,
    ),
    (
        "IC[1] + p",
        lambda v: v["IC"][1].__setitem__(1, _bump(v["IC"][1][1], BN254_P)),
        Code.NON_CANONICAL_SCALAR,
    ),
    ("IC[1] negated", lambda v: v["IC"].__setitem__(1, _neg_g1(v["IC"][1])), Code.VERIFICATION_FAILED),
    ("IC[1] bad infinity", lambda v: v["IC"].__setitem__(1, ["1", "1", "0"]), Code.INVALID_POINT),
    ("IC dropped", lambda v: v["IC"].pop(), Code.PUBLIC_INPUT_COUNT),
    ("nPublic string", lambda v: v.__setitem__("nPublic", str(v["nPublic"])), Code.MALFORMED),
    ("nPublic bool", lambda v: v.__setitem__("nPublic", True), Code.MALFORMED),
    ("nPublic float", lambda v: v.__setitem__("nPublic", 5.0), Code.MALFORMED),
    ("protocol", lambda v: v.__setitem__("protocol", "groth"), Code.UNSUPPORTED_FORMAT),
    ("extra", lambda v: v.__setitem__("vk_beta_1", v["vk_alpha_1"]), Code.MALFORMED),
    ("missing gamma", lambda v: v.__delitem__("vk_gamma_2"), Code.MALFORMED),
    ("alphabeta bad", lambda v: v["vk_alphabeta_12"][0][0].__setitem__(0, "x"), Code.MALFORMED),
]


@pytest.mark.parametrize(("name", "mut", "code"), VK_MUTATIONS, ids=[m[0] for m in VK_MUTATIONS])
def test_vk_tamper(norm: Normalizer, name: str, mut: Mut, code: Code) -> None:
    inp = snarkjs_case("multi5", "groth16")
    v = jload(inp.vk)
    mut(v)
    with pytest.raises(NormalizeError) as ei:
        norm.normalize(ProofInput("groth16", "snarkjs", inp.proof, jdump(v), public=inp.public))
    assert ei.value.code == code, ei.value


PUB_MUTATIONS: list[tuple[str, Callable[[list[Any]], None], Code]] = [
    ("changed", lambda p: p.__setitem__(0, _bump(p[0], 1)), Code.VERIFICATION_FAILED),
    ("swapped", lambda p: p.__setitem__(slice(0, 2), [p[1], p[0]]), Code.VERIFICATION_FAILED),
    ("plus r", lambda p: p.__setitem__(3, _bump(p[3], BN254_R)), Code.NON_CANONICAL_SCALAR),
    ("equals r", lambda p: p.__setitem__(3, str(BN254_R)), Code.NON_CANONICAL_SCALAR),
    ("one missing", lambda p: p.pop(), Code.PUBLIC_INPUT_COUNT),
    ("one extra", lambda p: p.append("1"), Code.PUBLIC_INPUT_COUNT),
    ("number", lambda p: p.__setitem__(0, int(p[0])), Code.MALFORMED),
    ("hex", lambda p: p.__setitem__(0, "0x1b"), Code.MALFORMED),
    ("nested", lambda p: p.__setitem__(0, [p[0]]), Code.MALFORMED),
]


@pytest.mark.parametrize(("name", "mut", "code"), PUB_MUTATIONS, ids=[m[0] for m in PUB_MUTATIONS])
def test_public_tamper(norm: Normalizer, name: str, mut: Callable[[list[Any]], None], code: Code) -> None:
    inp = snarkjs_case("multi5", "groth16")
    p = jload(inp.public or b"")
    mut(p)
    with pytest.raises(NormalizeError) as ei:
        norm.normalize(ProofInput("groth16", "snarkjs", inp.proof, inp.vk, public=jdump(p)))
    assert ei.value.code == code, ei.value
    # a failed pairing is the proof's fault as far as anyone can tell; format errors name public
    assert ei.value.field.startswith("proof" if code == Code.VERIFICATION_FAILED else "public"), ei.value


def test_vk_of_another_circuit(norm: Normalizer) -> None:
    good = snarkjs_case("mul1", "groth16")
    other = snarkjs_case("sq1", "groth16")  # same public shape, different circuit
    with pytest.raises(NormalizeError) as ei:
        norm.normalize(ProofInput("groth16", "snarkjs", good.proof, other.vk, public=good.public))
    assert ei.value.code == Code.VERIFICATION_FAILED
    multi = snarkjs_case("multi5", "groth16")
    with pytest.raises(NormalizeError) as ei:
        norm.normalize(ProofInput("groth16", "snarkjs", good.proof, multi.vk, public=good.public))
    assert ei.value.code == Code.PUBLIC_INPUT_COUNT


RAW_CASES: list[tuple[str, str, Callable[[bytes], bytes], Code]] = [
    ("proof", "truncated", lambda b: b[: len(b) // 2], Code.MALFORMED),
    ("proof", "padded", lambda b: b + b"{}", Code.MALFORMED),
    ("proof", "not utf8", lambda b: b"\xff" + b, Code.MALFORMED),
    ("proof", "empty", lambda b: b"", Code.MALFORMED),
    ("proof", "list", lambda b: b"[]", Code.MALFORMED),
    ("proof", "deep", lambda b: b"[" * 100_000 + b"]" * 100_000, Code.TOO_LARGE),
    ("proof", "huge", lambda b: b + b" " * (2 << 20), Code.TOO_LARGE),
    ("proof", "NaN", lambda b: b.replace(b'"protocol"', b'"x": NaN, "protocol"'), Code.MALFORMED),
    ("proof", "dup key", lambda b: b.replace(b'"protocol"', b'"curve": "bn128", "protocol"'), Code.MALFORMED),
    (
        "proof",
        "long number",
        lambda b: b.replace(b'"protocol"', b'"x": ' + b"9" * 5000 + b', "protocol"'),
        Code.TOO_LARGE,
    ),
    ("vk", "truncated", lambda b: b[:-10], Code.MALFORMED),
    ("vk", "padded", lambda b: b + b"\x00", Code.MALFORMED),
    ("public", "truncated", lambda b: b[:-3], Code.MALFORMED),
    ("public", "object", lambda b: b'{"0": "1"}', Code.MALFORMED),
]


@pytest.mark.parametrize(
    ("which", "name", "mut", "code"), RAW_CASES, ids=[f"{c[0]}-{c[1]}" for c in RAW_CASES]
)
def test_raw_bytes(
    py_normalizer: Normalizer, which: str, name: str, mut: Callable[[bytes], bytes], code: Code
) -> None:
    inp = snarkjs_case("multi5", "groth16")
    parts = {"proof": inp.proof, "vk": inp.vk, "public": inp.public}
    parts[which] = mut(parts[which] or b"")
    with pytest.raises(NormalizeError) as ei:
        py_normalizer.normalize(
            ProofInput(
                "groth16", "snarkjs", parts["proof"] or b"", parts["vk"] or b"", public=parts["public"]
            )
        )
    assert ei.value.code == code, ei.value
    assert ei.value.field.startswith(which), ei.value


def test_missing_public_and_bad_scheme(py_normalizer: Normalizer) -> None:
    inp = snarkjs_case("mul1", "groth16")
    with pytest.raises(NormalizeError) as ei:
        py_normalizer.normalize(ProofInput("groth16", "snarkjs", inp.proof, inp.vk))
    assert (ei.value.code, ei.value.field) == (Code.MALFORMED, "public")
    with pytest.raises(NormalizeError) as ei:
        py_normalizer.normalize(ProofInput("groth17", "snarkjs", inp.proof, inp.vk, public=inp.public))
    assert (ei.value.code, ei.value.field) == (Code.UNSUPPORTED_FORMAT, "scheme")
    with pytest.raises(NormalizeError) as ei:
        py_normalizer.normalize(ProofInput("groth16", "ezkl", inp.proof, inp.vk, public=inp.public))
    assert (ei.value.code, ei.value.field) == (Code.UNSUPPORTED_FORMAT, "format")


def test_normalize_many_mixes_good_and_bad(norm: Normalizer) -> None:
    good = [snarkjs_case(c, "groth16", i) for c, i in CASES]
    bad_pub = jload(good[2].public or b"")
    bad_pub[0] = _bump(bad_pub[0], 1)
    bad = ProofInput("groth16", "snarkjs", good[2].proof, good[2].vk, public=jdump(bad_pub))
    out = norm.normalize_many(
        [*good, bad, ProofInput("groth16", "snarkjs", b"{", good[0].vk, public=good[0].public)]
    )
    assert [type(x).__name__ for x in out] == ["Envelope"] * len(good) + ["NormalizeError", "NormalizeError"]
    assert isinstance(out[-2], NormalizeError) and out[-2].code == Code.VERIFICATION_FAILED
    assert isinstance(out[-1], NormalizeError) and out[-1].code == Code.MALFORMED
    for inp, env in zip(good, out, strict=False):
        assert not isinstance(env, NormalizeError)
        assert env.statement_hash == norm.normalize(inp).statement_hash


async def test_async_variants(norm: Normalizer) -> None:
    inp = snarkjs_case("mul1", "groth16")
    env = await norm.anormalize(inp)
    many = await norm.anormalize_many([inp, inp])
    assert all(not isinstance(e, NormalizeError) and e.statement_hash == env.statement_hash for e in many)


@pytest.mark.parametrize("circuit", ["mul1", "multi5", "sq1"])
def test_python_canonical_vk_equals_sidecar(normalizer: Normalizer, circuit: str) -> None:
    # two independent strict parsers (Python here, Go in the sidecar) must give the same bytes
    inp = snarkjs_case(circuit, "groth16")
    r = normalizer.ctx.sidecar().request("groth16.parse_vk", format="snarkjs", vk=jload(inp.vk))
    assert (
        bytes.fromhex(r["canonical_vk"][2:])
        == parse_vk("groth16", "snarkjs", inp.vk, normalizer=normalizer)[0]
    )
