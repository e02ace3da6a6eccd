"""Coded errors of deploy/, provers/ and the demo are sheaf.errors.SheafError, constructed as before."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from demo.run import DemoError
from deploy.errors import GNARK_MISSING, DeployError
from deploy.recursive import gnark_binary
from provers.errors import ProverError
from sheaf.errors import SheafError


@pytest.mark.parametrize("cls", [DeployError, ProverError])
def test_code_message_errors_are_sheaf_errors(cls: type[DeployError] | type[ProverError]) -> None:
    e = cls("SOME_CODE", "what to do")
    assert isinstance(e, SheafError)
    assert (e.code, e.field, e.message, str(e)) == ("SOME_CODE", "", "what to do", "SOME_CODE: what to do")
    assert e.to_dict() == {"code": "SOME_CODE", "field": "", "message": "what to do"}
    back = pickle.loads(pickle.dumps(cls("C", "m", field="f")))
    assert type(back) is cls and (back.code, back.field, back.message) == ("C", "f", "m")


def test_demo_error_keeps_its_one_argument_constructor() -> None:
    e = DemoError("prover exited with 1")
    assert isinstance(e, SheafError) and e.message == "prover exited with 1" and e.code
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is DemoError and back.message == e.message and back.code == e.code


def test_a_configured_gnark_binary_never_falls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a missing $SHEAF_GNARK_BIN is an error even though build/bin has a working binary
    monkeypatch.setenv("SHEAF_GNARK_BIN", f"{tmp_path}/no-such-sheaf-gnark")
    with pytest.raises(DeployError) as e:
        gnark_binary()
    assert e.value.code == GNARK_MISSING and "no-such-sheaf-gnark" in e.value.message
