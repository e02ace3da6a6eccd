"""SRS ids (sheaf.srs_id): an SRS and its k=1 cut share one, two dev SRSs do not; the CLI prints it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ezkl
import pytest

from provers.srs import cut_verifier_srs, ensure_dev_srs
from sheaf.srs_id import SrsError, read_verifier_points, srs_id

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_SRS = ROOT / "tests" / "fixtures" / "ezkl" / "verifier-k1.srs"


def test_an_srs_and_its_cut_share_an_id(tmp_path: Path) -> None:
    full = tmp_path / "k3.srs"
    assert ezkl.gen_srs(str(full), 3) is not False
    cut = cut_verifier_srs(full, tmp_path / "k1.srs")
    assert read_verifier_points(cut).k == 1 and cut.stat().st_size == 4 + 4 * 64 + 2 * 128
    assert srs_id(cut) == srs_id(full)
    assert srs_id(cut_verifier_srs(cut, tmp_path / "again.srs")) == srs_id(full)  # a cut of a cut
    other = tmp_path / "other.srs"
    assert ezkl.gen_srs(str(other), 3) is not False  # fresh toxic waste
    assert srs_id(other) != srs_id(full)
    assert srs_id(full).startswith("kzg-bn254-") and len(srs_id(full)) == len("kzg-bn254-") + 32


def test_this_machines_dev_srs_and_its_cut(tmp_path: Path) -> None:
    dev = ensure_dev_srs()
    assert srs_id(cut_verifier_srs(dev, tmp_path / "k1.srs")) == srs_id(dev)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "SRS_MALFORMED"),
        (b"\x01\x00\x00\x00" + b"\x00" * 100, "SRS_MALFORMED"),
        (None, "SRS_UNREADABLE"),
    ],
)
def test_bad_srs_files_are_coded_errors(tmp_path: Path, data: bytes | None, code: str) -> None:
    p = tmp_path / "bad.srs"
    if data is not None:
        p.write_bytes(data)
    with pytest.raises(SrsError) as ei:
        srs_id(p)
    assert ei.value.code == code
    r = subprocess.run(
        [sys.executable, "-m", "provers.srs", "id", str(p)], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 2 and r.stderr.startswith(code) and "Traceback" not in r.stderr


def test_cli_id_and_cut(tmp_path: Path) -> None:
    out = tmp_path / "cut.srs"
    r = subprocess.run(
        [sys.executable, "-m", "provers.srs", "cut", str(FIXTURE_SRS), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert srs_id(FIXTURE_SRS) in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "provers.srs", "id", str(out)], cwd=ROOT, capture_output=True, text=True
    )
    assert r.returncode == 0 and r.stdout.strip() == srs_id(FIXTURE_SRS)
