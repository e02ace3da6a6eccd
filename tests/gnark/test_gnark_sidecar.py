"""End-to-end tests of the real `sheaf-gnark serve` binary over its NDJSON protocol (docs/sidecar.md)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "gnark"
BIN = Path(os.environ.get("SHEAF_GNARK_BIN", ROOT / "build" / "bin" / "sheaf-gnark"))


def b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def flatten(raw: str) -> dict[str, Any]:
    """Check one answer line is a protocol envelope ({"id", "ok", "result"} or {"id", "ok",
    "error": {"code", "field", "message"}}) and flatten it for the assertions: id, ok and the
    result's fields or the error's."""
    env = json.loads(raw)
    if env["ok"] is True:
        assert set(env) == {"id", "ok", "result"} and isinstance(env["result"], dict), raw
        return {"id": env["id"], "ok": True, **env["result"]}
    assert set(env) == {"id", "ok", "error"} and set(env["error"]) == {"code", "field", "message"}, raw
    return {"id": env["id"], "ok": False, **env["error"]}


def run_session(lines: list[str], *args: str) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Feed lines to a fresh sidecar; return (flattened) responses by id (JSON text) and all responses."""
    assert BIN.exists(), f"{BIN} is missing: build it with `make setup` (or cd gnark && go build ...)"
    proc = subprocess.run(
        [str(BIN), "serve", *args],
        input="".join(line + "\n" for line in lines),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    ready = json.loads(out[0])  # nothing precedes the ready line
    assert ready["id"] is None and ready["ok"] is True and ready["event"] == "ready", out[0]
    assert ready["result"]["protocol"] == 2 and ready["result"]["process"] == "verifier"
    responses = [flatten(raw) for raw in out[1:]]
    return {json.dumps(r["id"]): r for r in responses}, responses


def req(id_: int | str, op: str, **fields: Any) -> str:
    return json.dumps({"id": id_, "op": op, **fields})


@pytest.fixture(scope="module")
def normalized() -> Iterator[dict[str, dict[str, Any]]]:
    names = ["groth16_n1", "groth16_n8", "groth16_commit_n2"]
    lines = [
        req(
            n,
            "groth16.normalize",
            format="gnark",
            vk=b64(FIX / n / "vk.bin"),
            proof=b64(FIX / n / "proof.raw.bin"),
            public=b64(FIX / n / "public.bin"),
        )
        for n in names
    ]
    by_id, _ = run_session(lines)
    yield {n: by_id[json.dumps(n)] for n in names}


def test_normalize_matches_gnark_calldata(normalized: dict[str, dict[str, Any]]) -> None:
    for name, r in normalized.items():
        assert r["ok"] is True, r
        calldata = json.loads((FIX / name / "calldata.json").read_text())
        assert r["proof"] == calldata["proof"]
        assert r["public_inputs"] == calldata["public_inputs"]
        assert r["n_public"] == len(calldata["public_inputs"])
    assert normalized["groth16_commit_n2"]["commitments"] == 1
    assert len(bytes.fromhex(normalized["groth16_commit_n2"]["proof"][2:])) == 384


def g1(p: list[str]) -> bytes:
    assert p[2] == "1"
    return int(p[0]).to_bytes(32, "big") + int(p[1]).to_bytes(32, "big")


def g2(p: list[list[str]]) -> bytes:
    # snarkjs lists c0 first; the canonical (EVM) order is c1 first
    (x0, x1), (y0, y1) = p[0], p[1]
    return b"".join(int(v).to_bytes(32, "big") for v in (x1, x0, y1, y0))


def snarkjs_groth16_canonical_vk(vk: dict[str, Any]) -> bytes:
    """The canonical Groth16 vk of docs/sidecar.md, built from snarkjs verification_key.json."""
    out = g1(vk["vk_alpha_1"]) + g2(vk["vk_beta_2"]) + g2(vk["vk_gamma_2"]) + g2(vk["vk_delta_2"])
    out += len(vk["IC"]).to_bytes(4, "big") + b"".join(g1(p) for p in vk["IC"])
    return out


def test_verify_batch_mixed_producers_names_the_bad_item(normalized: dict[str, dict[str, Any]]) -> None:
    sj = FIX / "snarkjs_plonk"
    vk = json.loads((sj / "groth16_vk.json").read_text())
    proof = json.loads((sj / "groth16_proof.json").read_text())
    pubs = [int(x).to_bytes(32, "big") for x in json.loads((sj / "groth16_public.json").read_text())]
    sj_item = {
        "canonical_vk": "0x" + snarkjs_groth16_canonical_vk(vk).hex(),
        "proof": "0x" + (g1(proof["pi_a"]) + g2(proof["pi_b"]) + g1(proof["pi_c"])).hex(),
        "public_inputs": ["0x" + p.hex() for p in pubs],
    }
    items = [
        {k: r[k] for k in ("canonical_vk", "proof")} | {"public_inputs": r["public_inputs"]}
        for r in normalized.values()
    ]
    items.append(sj_item)
    bad = dict(sj_item)
    bad["public_inputs"] = ["0x" + (5).to_bytes(32, "big").hex(), sj_item["public_inputs"][1]]
    items.append(bad)
    by_id, _ = run_session([req("b", "groth16.verify_batch", items=items)])
    results = by_id['"b"']["results"]
    assert [r["ok"] for r in results] == [True, True, True, True, False]
    assert results[4]["code"] == "VERIFICATION_FAILED"


def test_snarkjs_plonk_and_gnark_plonk() -> None:
    sj = FIX / "snarkjs_plonk"
    vk = json.loads((sj / "plonk_vk.json").read_text())
    proof = json.loads((sj / "plonk_proof.json").read_text())
    public = json.loads((sj / "public.json").read_text())
    lines = [
        req("sj", "plonk.normalize", format="snarkjs", vk=vk, proof=proof, public=public),
        req(
            "sj-hex",
            "plonk.normalize",
            format="snarkjs",
            vk=vk,
            proof=proof | {"eval_a": "0x01"},
            public=public,
        ),
        req(
            "gn",
            "plonk.normalize",
            format="gnark",
            vk=b64(FIX / "plonk_n3" / "vk.raw.bin"),
            proof=b64(FIX / "plonk_n3" / "proof.bin"),
            public=b64(FIX / "plonk_n3" / "public.bin"),
        ),
    ]
    by_id, _ = run_session(lines)
    assert by_id['"sj"']["ok"] is True and by_id['"sj"']["canonical_vk"].startswith("0x02")
    assert len(bytes.fromhex(by_id['"sj"']["proof"][2:])) == 768
    assert by_id['"sj-hex"']["code"] == "MALFORMED" and by_id['"sj-hex"']["field"] == "proof.eval_a"
    gn = by_id['"gn"']
    assert gn["ok"] is True and gn["canonical_vk"].startswith("0x01") and gn["n_public"] == 3
    assert gn["proof"] == json.loads((FIX / "plonk_n3" / "calldata.json").read_text())["proof"]


def test_bad_lines_do_not_kill_the_loop() -> None:
    vk = b64(FIX / "groth16_n2" / "vk.bin")
    raw = (FIX / "groth16_n2" / "proof.raw.bin").read_bytes()
    lines = [
        "{not json",
        "x" * 5000,  # over --max-line
        req(
            1,
            "groth16.normalize",
            format="gnark",
            vk=vk,
            proof=base64.b64encode(raw[:-1]).decode(),
            public_hex=[],
        ),
        req(
            2,
            "groth16.normalize",
            format="gnark",
            vk=vk,
            proof=base64.b64encode(raw).decode(),
            public_hex=["0x" + "00" * 31 + "10"],
        ),
        req(3, "nope"),
        req(4, "ping"),
    ]
    by_id, responses = run_session(lines, "--max-line", "4096")
    assert len(responses) == 6
    codes = sorted(r.get("code", "") for r in responses if r["id"] is None)
    assert codes == ["MALFORMED", "TOO_LARGE"]
    assert by_id["1"]["code"] == "INVALID_LENGTH"
    assert by_id["2"]["code"] == "PUBLIC_INPUT_COUNT" and by_id["2"]["field"] == "public"
    assert by_id["3"]["code"] == "MALFORMED" and by_id["3"]["field"] == "op"
    assert by_id["4"] == {"id": 4, "ok": True, "pong": True}
