"""gnark Groth16 (binary, raw and compressed) through the sidecar: real fixtures from
tests/fixtures/gnark (sheaf-gnark fixtures), tamper matrix, batch verification."""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from nz_helpers import GNARK

from normalizers.api import Normalizer, ProofInput
from normalizers.errors import Code, NormalizeError
from normalizers.statement import BN254_R, keccak256

MANIFEST = json.loads((GNARK / "manifest.json").read_text())
G16 = [f for f in MANIFEST["fixtures"] if f["scheme"] == "groth16" and f.get("producer", "gnark") == "gnark"]


def case(name: str, proof: str = "proof", vk: str = "vk") -> ProofInput:
    f = next(x for x in G16 if x["name"] == name)
    d = GNARK
    files = f["files"]
    return ProofInput(
        "groth16", "gnark", (d / files[proof]).read_bytes(), (d / files[vk]).read_bytes(),
        public=(d / files["public_witness"]).read_bytes(),
    )  # fmt: skip


@pytest.mark.parametrize("proof_kind", ["proof", "proof_raw"])
@pytest.mark.parametrize("vk_kind", ["vk", "vk_raw"])
@pytest.mark.parametrize("name", [f["name"] for f in G16])
def test_valid_fixture(normalizer: Normalizer, name: str, proof_kind: str, vk_kind: str) -> None:
    f = next(x for x in G16 if x["name"] == name)
    env = normalizer.normalize(case(name, proof_kind, vk_kind))
    calldata = json.loads((GNARK / f["files"]["solidity_calldata"]).read_text())
    pubs = json.loads((GNARK / f["files"]["public_json"]).read_text())
    # canonical proof = the bytes the exported Solidity verifier takes
    assert "0x" + env.proof.hex() == calldata["proof"]
    assert ["0x" + p.hex() for p in env.public_inputs] == pubs
    assert len(env.public_inputs) == f["n_public"]
    assert env.vk_hash == keccak256(b"sheaf/vk\x01" + env.canonical_vk)
    assert env.statement_hash == keccak256(
        b"sheaf/statement\x01\x01" + env.vk_hash + keccak256(b"".join(env.public_inputs))
    )
    assert env.recursion_eligible == (f["commitments"] == 0)
    if f["commitments"] == 0:
        (n_ic,) = struct.unpack(">I", env.canonical_vk[448:452])
        assert n_ic == f["n_public"] + 1 and len(env.canonical_vk) == 452 + 64 * n_ic


def test_compressed_and_raw_agree(normalizer: Normalizer) -> None:
    a = normalizer.normalize(case("groth16_n3", "proof", "vk"))
    b = normalizer.normalize(case("groth16_n3", "proof_raw", "vk_raw"))
    assert (a.statement_hash, a.proof, a.canonical_vk) == (b.statement_hash, b.proof, b.canonical_vk)


def _flip(b: bytes, i: int) -> bytes:
    x = bytearray(b)
    x[i] ^= 1
    return bytes(x)


# raw proof layout: Ar(64) | Bs(128) | Krs(64) | u32 n commitments | ... | PoK(64)
@pytest.mark.parametrize(
    ("offset", "field"),
    [(0, "proof.Ar"), (33, "proof.Ar"), (64, "proof.Bs"), (130, "proof.Bs"), (191, "proof.Bs"),
     (192, "proof.Krs"), (255, "proof.Krs")],
)  # fmt: skip
def test_bit_flip_every_element(normalizer: Normalizer, offset: int, field: str) -> None:
    c = case("groth16_n2", "proof_raw")
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(c, proof=_flip(c.proof, offset)))
    assert ei.value.code in (Code.INVALID_POINT, Code.NOT_IN_SUBGROUP), ei.value
    assert ei.value.field == field


def test_bit_flip_in_compressed_proof(normalizer: Normalizer) -> None:
    c = case("groth16_n2", "proof")
    for off in (5, 40, 100, 120):  # compressed: Ar(32) | Bs(64) | Krs(32) | ...
        with pytest.raises(NormalizeError) as ei:
            normalizer.normalize(dataclasses.replace(c, proof=_flip(c.proof, off)))
        assert ei.value.code in (Code.INVALID_POINT, Code.NOT_IN_SUBGROUP, Code.VERIFICATION_FAILED), ei.value


def test_public_input_tamper(normalizer: Normalizer) -> None:
    c = case("groth16_n2")
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(c, public=_flip(c.public or b"", len(c.public or b"") - 1)))
    assert ei.value.code == Code.VERIFICATION_FAILED
    # swap the two public inputs
    pub = c.public or b""
    head, a, b = pub[:12], pub[12:44], pub[44:76]
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(c, public=head + b + a))
    assert ei.value.code == Code.VERIFICATION_FAILED
    # a + r: non-canonical scalar
    big = (int.from_bytes(a, "big") + BN254_R).to_bytes(32, "big")
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(c, public=head + big + b))
    assert ei.value.code == Code.NON_CANONICAL_SCALAR


def test_wrong_count_and_other_circuit(normalizer: Normalizer) -> None:
    c = case("groth16_n2")
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(c, public=case("groth16_n1").public))
    assert ei.value.code == Code.PUBLIC_INPUT_COUNT
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(c, vk=case("groth16_n3").vk))
    assert ei.value.code == Code.PUBLIC_INPUT_COUNT
    # same public shape (2 inputs), different circuit: its vk carries a commitment key
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(c, vk=case("groth16_commit_n2").vk))
    assert ei.value.code in (Code.MALFORMED, Code.VERIFICATION_FAILED, Code.VK_MISMATCH)


@pytest.mark.parametrize("which", ["proof", "vk", "public"])
def test_truncated_and_padded(normalizer: Normalizer, which: str) -> None:
    c = case("groth16_n2", "proof_raw", "vk_raw")
    data: bytes = getattr(c, which)
    for bad in (data[:-1], data + b"\x00", b""):
        with pytest.raises(NormalizeError) as ei:
            normalizer.normalize(dataclasses.replace(c, **{which: bad}))
        assert ei.value.code in (Code.INVALID_LENGTH, Code.MALFORMED, Code.PUBLIC_INPUT_COUNT), ei.value
        assert ei.value.field.split(".")[0] in (which, "public_inputs"), ei.value


def test_batch_isolates_bad_items(normalizer: Normalizer) -> None:
    good = [case(f["name"]) for f in G16] * 3
    bad = dataclasses.replace(case("groth16_n2"), public=_flip(case("groth16_n2").public or b"", 75))
    out = normalizer.normalize_many([*good, bad])
    assert all(not isinstance(e, NormalizeError) for e in out[:-1])
    assert isinstance(out[-1], NormalizeError) and out[-1].code == Code.VERIFICATION_FAILED


def test_sidecar_restarts_after_crash(gnark_bin: Path) -> None:
    with Normalizer(sidecar_bin=str(gnark_bin)) as n:
        first = n.normalize(case("groth16_n1"))
        sc = n.ctx.sidecar()
        pid = sc.pid()
        assert pid is not None
        sc._proc.kill()  # type: ignore[union-attr]
        sc._proc.wait()  # type: ignore[union-attr]
        again = n.normalize(case("groth16_n1"))
        assert again.statement_hash == first.statement_hash and sc.pid() != pid


def test_raw_fast_path_matches_sidecar_decode(
    normalizer: Normalizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = {f["name"]: normalizer.normalize(case(f["name"], "proof_raw", "vk_raw")) for f in G16}

    # from now on a known vk + raw proof must not need groth16.normalize on the sidecar
    sc = normalizer.ctx.sidecar()
    submit = sc.submit

    def no_sidecar_decode(op: str, **params: Any) -> Any:
        assert op != "groth16.normalize", "sidecar decode used"
        return submit(op, **params)

    monkeypatch.setattr(sc, "submit", no_sidecar_decode)
    for f in G16:
        if f["commitments"]:
            continue
        for kind in ("proof_raw", "proof"):  # raw and compressed (decompressed in Python)
            inp = case(f["name"], kind, "vk_raw")
            assert normalizer.normalize(inp) == slow[f["name"]]
            [env] = normalizer.normalize_many([inp])
            assert env == slow[f["name"]]
    comp = case("groth16_n2", "proof", "vk_raw")
    for off, field in ((1, "proof.Ar"), (40, "proof.Bs"), (100, "proof.Krs")):
        b = bytearray(comp.proof)
        b[off] ^= 0x10
        with pytest.raises(NormalizeError) as ei:
            normalizer.normalize(dataclasses.replace(comp, proof=bytes(b)))
        # another x usually has no point (INVALID_POINT); if it has one, pairing or subgroup fails
        assert ei.value.code in (Code.INVALID_POINT, Code.NOT_IN_SUBGROUP, Code.VERIFICATION_FAILED), ei.value
        assert ei.value.field in (field, "proof"), ei.value
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(comp, proof=b"\x40" + bytes(31) + comp.proof[32:]))
    assert (ei.value.code, ei.value.field) == (Code.POINT_AT_INFINITY, "proof.Ar")
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(comp, proof=b"\x40" + comp.proof[1:]))
    assert (ei.value.code, ei.value.field) == (Code.INVALID_POINT, "proof.Ar")
    c = case("groth16_n2", "proof_raw", "vk_raw")
    bad_pok = c.proof[:-1] + b"\x01"
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(c, proof=bad_pok))
    assert (ei.value.code, ei.value.field) == (Code.MALFORMED, "proof.CommitmentPok")
    bad_count = c.proof[:259] + b"\x01" + c.proof[260:]
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(c, proof=bad_count))
    assert (ei.value.code, ei.value.field) == (Code.MALFORMED, "proof.Commitments")
    pub = c.public or b""
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(c, public=pub[:4] + b"\x00\x00\x00\x01" + pub[8:]))
    assert (ei.value.code, ei.value.field) == (Code.MALFORMED, "public.nbSecret")
    big = (int.from_bytes(pub[12:44], "big") + BN254_R).to_bytes(32, "big")
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(c, public=pub[:12] + big + pub[44:]))
    assert (ei.value.code, ei.value.field) == (Code.NON_CANONICAL_SCALAR, "public[0]")
    b = bytearray(c.proof)
    b[100] ^= 1
    with pytest.raises(NormalizeError) as ei:
        normalizer.normalize(dataclasses.replace(c, proof=bytes(b)))
    assert (ei.value.code, ei.value.field) == (Code.INVALID_POINT, "proof.Bs")
