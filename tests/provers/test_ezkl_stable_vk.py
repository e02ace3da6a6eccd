"""The same ONNX model proved twice with ezkl gives one vk hash (issue 13, failure 8b).

ezkl lists `required_range_checks` / `required_lookups` from hash sets, in another order on another
run, and stamps every settings.json with the time; the aggregator's vk hash binds the settings
(order included: the circuit is laid out in that order). The prover writes the settings in
canonical form before compiling, so the key cache hits and an app pinning a vk hash keeps working.
Real ezkl, the smallest committed slice (tests/fixtures/ezkl/matmul_add: 6 -> 3, public I/O).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from normalizers.api import Normalizer, ProofInput, parse_vk
from provers import ezkl_backend
from provers.slicer import EzklConfig
from provers.srs import ensure_dev_srs
from sheaf.srs_id import srs_id

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "ezkl"
SLICE = FIX / "matmul_add"


def _settings() -> dict[str, Any]:
    s: dict[str, Any] = json.loads((SLICE / "settings.json").read_text())
    return s


def test_cache_key_ignores_set_order_and_timestamp() -> None:
    onnx_bytes = (SLICE / "network.onnx").read_bytes()
    a = _settings()
    b = _settings()
    assert len(a["required_range_checks"]) >= 2
    b["required_range_checks"] = list(reversed(b["required_range_checks"]))
    b["required_lookups"] = list(reversed(b["required_lookups"]))
    b["timestamp"] = a["timestamp"] + 98765
    assert ezkl_backend.cache_key(onnx_bytes, a) == ezkl_backend.cache_key(onnx_bytes, b)
    assert ezkl_backend.stable_settings(a) == ezkl_backend.stable_settings(b)
    assert "timestamp" not in ezkl_backend.stable_settings(a)
    assert ezkl_backend.stable_settings(a)["version"] == a["version"]  # the normalizer requires it
    # a different set is a different circuit
    c = _settings()
    c["required_range_checks"].append([0, 1])
    assert ezkl_backend.cache_key(onnx_bytes, a) != ezkl_backend.cache_key(onnx_bytes, c)


def _vk_hash(n: Normalizer, p: ezkl_backend.EzklProof) -> bytes:
    return parse_vk("halo2", "ezkl", p.vk.read_bytes(), p.settings.read_bytes(), normalizer=n)[1]


@pytest.mark.slow
def test_same_model_proved_twice_gives_one_vk_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ezkl

    srs = ensure_dev_srs()  # this machine's dev SRS, before the key cache is pointed elsewhere
    monkeypatch.setenv("SHEAF_CACHE", str(tmp_path / "cache"))  # an empty key cache
    model = onnx.load(str(SLICE / "network.onnx"))
    x = [np.linspace(-0.5, 0.5, 6, dtype=np.float32).reshape(1, 6)]
    cfg = EzklConfig(input_visibility="public", output_visibility="public", param_visibility="fixed")

    # ezkl's set order is whatever its hash sets give: make the second run list them reversed
    real_calibrate = ezkl.calibrate_settings
    calls = 0

    def calibrate(data: str, model_path: str, settings: str, *a: Any, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        out = real_calibrate(data, model_path, settings, *a, **kw)
        if calls == 2:
            s = json.loads(Path(settings).read_text())
            assert len(s["required_range_checks"]) >= 2
            s["required_range_checks"] = list(reversed(s["required_range_checks"]))
            s["required_lookups"] = list(reversed(s["required_lookups"]))
            Path(settings).write_text(json.dumps(s))
        return out

    monkeypatch.setattr(ezkl, "calibrate_settings", calibrate)
    first = ezkl_backend.prove(model, x, cfg, tmp_path / "one", srs)
    second = ezkl_backend.prove(model, x, cfg, tmp_path / "two", srs)
    assert calls == 2

    for p in (first, second):
        st = json.loads(p.settings.read_text())
        assert "timestamp" not in st
        checks = st["required_range_checks"]
        assert checks == sorted(checks, key=lambda e: json.dumps(e, sort_keys=True, separators=(",", ":")))
        assert p.srs_id == srs_id(srs)
    assert not first.keys_cached
    assert second.keys_cached, "the second proof of the same model missed the key cache"
    assert first.settings.read_bytes() == second.settings.read_bytes()
    assert first.vk.read_bytes() == second.vk.read_bytes()

    with Normalizer(srs=srs, groth16_backend="groth16py") as n:
        h1, h2 = _vk_hash(n, first), _vk_hash(n, second)
        assert h1 == h2
        for p in (first, second):  # and both proofs verify (the canonical settings are the circuit's)
            env = n.normalize(
                ProofInput(
                    "halo2",
                    "ezkl",
                    p.proof.read_bytes(),
                    p.vk.read_bytes(),
                    settings=p.settings.read_bytes(),
                )
            )
            assert env.vk_hash == h1
