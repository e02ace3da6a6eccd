"""The `aggregator` CLI's user errors (issue 16): one coded line on stderr, no traceback, and the
exit status of its class (aggregator.cli.EXIT_CODES, printed by --help). In-process through
`main(argv)` (the console script is `sys.exit(main())`); the submit timeout against a live
aggregator is in test_explorer.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator import cli


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as e:  # argparse: --help, --version, usage errors
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_version_and_help_document_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--version")
    assert code == 0 and out.startswith("aggregator (sheaf) ") and out.strip()[-1].isdigit()
    code, out, _ = _run(capsys, "--help")
    assert code == 0 and "exit status:" in out
    for status in ("0 ", "1 ", "2 ", "5 ", "6 ", "7 ", "8 ", "64 "):
        assert f"\n  {status}" in out, status
    code, out, _ = _run(capsys, "submit", "--help")
    assert code == 0 and "exit status:" in out and "--timeout" in out
    # every flag of every subcommand has a help text
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():  # type: ignore[attr-defined]
        if name == "normalize":  # normalizers/cli.py: not covered yet
            continue
        for act in p._actions:
            if act.option_strings and act.dest != "help":
                assert act.help, f"aggregator {name} {act.option_strings[0]} has no help text"


@pytest.mark.parametrize("argv", [["nope"], ["status"], ["submit", "--scheme", "stark"], ["--colour"]])
def test_bad_command_lines_exit_64(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _, err = _run(capsys, *argv)
    assert code == cli.EXIT_USAGE == 64 and "error:" in err


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[aggregator\nthreshold = 2\n", "not valid TOML"),
        ("[aggregator]\nthreshhold = 2\n", "threshhold"),
        ("[aggregator]\nthreshold = 0\n", "threshold"),
        ("[aggregator]\n[aggregator.recursion]\nenabeld = true\n", "enabeld"),
    ],
)
def test_config_errors_exit_8(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, needle: str
) -> None:
    p = tmp_path / "sheaf.toml"
    p.write_text(text)
    code, _, err = _run(capsys, "run", "--config", str(p))
    assert code == cli.EXIT_CONFIG == 8, err
    assert err.startswith("CONFIG: ") and needle in err and str(p) in err


def test_missing_files_exit_7(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "run", "--config", str(tmp_path / "none.toml"))
    assert code == cli.EXIT_FILE == 7 and err.startswith("FILE: ") and "none.toml" in err
    args = ["submit", "--target", "127.0.0.1:1", "--scheme", "groth16", "--format", "snarkjs"]
    code, _, err = _run(capsys, *args, "--proof", str(tmp_path / "p.json"), "--vk", str(tmp_path / "vk.json"))
    assert code == 7 and "p.json" in err


def test_unreachable_aggregator_exits_6(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "status", "1-" + "00" * 32, "--target", "127.0.0.1:1")
    assert code == cli.EXIT_UNREACHABLE == 6 and err.startswith("UNREACHABLE: "), err


@pytest.mark.parametrize(
    "raw",
    [
        "1-" + "ab" * 32,
        "1-0x" + "ab" * 32,
        "1-0X" + "AB" * 32,
        '"1-' + "ab" * 32 + '"',
        " 1-" + "ab" * 32 + "\n",
        "http://127.0.0.1:8080/explorer/#/proof/1-" + "ab" * 32,
        "http://127.0.0.1:8080/v1/proofs/1-" + "ab" * 32 + "/",
    ],
)
def test_status_takes_the_ids_users_copy(raw: str) -> None:
    assert cli.normalize_proof_id(raw) == "1-" + "ab" * 32
