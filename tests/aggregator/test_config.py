"""`aggregator run` configuration (aggregator/config.py): real TOML files through `Config.load`.
Every refusal is a ConfigInvalid (code CONFIG, a ValueError so the CLI exits 8) naming the full
dotted key as written in the file, what it expects and the file; never a pydantic message."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from aggregator import cli
from aggregator.config import Config, ConfigInvalid, RecursionConfig


def _refused(tmp_path: Path, text: str) -> ConfigInvalid:
    p = tmp_path / "sheaf.toml"
    p.write_text(text)
    with pytest.raises(ConfigInvalid) as e:
        Config.load(p)
    assert e.value.code == "CONFIG" and e.value.file == str(p)
    assert "pydantic" not in str(e.value) and "Input should" not in str(e.value)
    return e.value


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        # a typo in a nested table: the full dotted key and the nearest known key
        (
            "[aggregator.recursion]\nbatchsize = 2\n",
            "aggregator.recursion.batchsize",
            "unknown key; did you mean batch?",
        ),
        ("[aggregator]\nmax_leafs = 7\n", "aggregator.max_leafs", "unknown key; did you mean max_leaves?"),
        ("[aggregator]\ncolour = 1\n", "aggregator.colour", "unknown key"),  # nothing close: no guess
        # wrong types: the expected type (and range) named, the value as written in TOML
        ('[aggregator]\nthreshold = "2"\n', "aggregator.threshold", 'expected an integer >= 1, got "2"'),
        ("[aggregator]\nmax_wait_ms = 300.0\n", "aggregator.max_wait_ms", "expected an integer, got 300.0"),
        ("[aggregator]\nrequire_auth = 1\n", "aggregator.require_auth", "expected true or false, got 1"),
        ('[aggregator]\ndomains = [1, "2"]\n', "aggregator.domains[1]", 'expected an integer, got "2"'),
        (
            "[aggregator.recursion]\nplonk = true\n",
            "aggregator.recursion.plonk",
            "expected an integer >= 0, got true",
        ),
        (
            "[aggregator]\nrecursion = 3\n",
            "aggregator.recursion",
            "expected a table ([aggregator.recursion]), got 3",
        ),
        # ranges
        ("[aggregator]\nthreshold = 0\n", "aggregator.threshold", "expected an integer >= 1, got 0"),
        (
            "[aggregator]\nattest_ttl_s = 5\n",
            "aggregator.attest_ttl_s",
            "expected an integer in 20..86400 (the registry's MAX_ATTESTATION_TTL), got 5",
        ),
        ("[aggregator]\nlease_ttl_s = 0.5\n", "aggregator.lease_ttl_s", "expected a number >= 1, got 0.5"),
        (
            '[aggregator.recursion]\nqueue = "redis"\n',
            "aggregator.recursion.queue",
            'expected one of "local", "postgres", got "redis"',
        ),
        (
            '[aggregator]\ndb_url = "mysql://h/db"\n',
            "aggregator.db_url",
            'expected a postgresql:// URL (SQLite is db_path), got "mysql://h/db"',
        ),
        # rules across keys (Config.check)
        (
            '[aggregator]\noperators = ["0x01"]\nthreshold = 2\n',
            "aggregator.threshold",
            "expected an integer in 1..1 (the operators), got 2",
        ),
        ("[aggregator]\ndomains = [2]\n", "aggregator.default_domain", "expected one of domains [2], got 1"),
        (
            "[aggregator.recursion]\nbatch = 2\nplonk = 3\n",
            "aggregator.recursion.plonk",
            "expected an integer in 0..2 (recursion.batch), got 3",
        ),
    ],
)
def test_refusals_name_the_dotted_key_and_what_it_expects(
    tmp_path: Path, text: str, field: str, message: str
) -> None:
    e = _refused(tmp_path, text)
    assert (e.field, e.message) == (field, message)
    assert str(e) == f"{e.field}: {e.message}"  # the CLI prints "CONFIG: <file>: " before it


def test_a_file_without_an_aggregator_table_names_bare_keys(tmp_path: Path) -> None:
    e = _refused(tmp_path, "max_leafs = 7\n")
    assert e.field == "max_leafs" and "did you mean max_leaves?" in e.message


def test_values_load_and_the_queue_url_defaults_to_db_url(tmp_path: Path) -> None:
    p = tmp_path / "sheaf.toml"
    url = "postgresql://sheaf@127.0.0.1:5432/sheaf"
    p.write_text(
        f'[aggregator]\ndb_url = "{url}"\nstall_after_s = 60\nmin_post_interval_s = 1.5\n'
        '[aggregator.recursion]\nqueue = "postgres"\nbatch = 4\n'
    )
    cfg = Config.load(p, db_path="x.db", registry=None)  # None: an override not given
    # an integer where a number is expected is fine (TOML `60` for 60.0)
    assert (cfg.stall_after_s, cfg.min_post_interval_s, cfg.db_path) == (60.0, 1.5, "x.db")
    assert (cfg.recursion.batch, cfg.recursion.queue_url) == (4, url)
    assert cfg == Config.load(p, db_path="x.db")  # values: equal when loaded twice
    with pytest.raises(ValueError, match="frozen"):
        cfg.max_leaves = 3  # type: ignore[misc]


def test_code_built_configs_are_checked_for_types_not_cross_key_rules() -> None:
    # tests and benches build configs in code: types and ranges hold ...
    with pytest.raises(ValueError, match="threshold"):
        Config(threshold=0)
    # ... the rules across keys are Config.load's (a bench serves any domain with domains=[])
    assert Config(domains=[], default_domain=7).domains == []
    assert RecursionConfig(batch=1, plonk=2).plonk == 2  # plan_recursion refuses it later
    with pytest.raises(ConfigInvalid) as e:
        RecursionConfig.from_dict({"enabeld": True})
    assert (e.value.field, e.value.message) == ("recursion.enabeld", "unknown key; did you mean enabled?")


def test_the_error_pickles_with_its_fields() -> None:
    e = pickle.loads(pickle.dumps(ConfigInvalid("aggregator.x", "unknown key", "a.toml")))
    assert (e.code, e.field, e.message, e.file) == ("CONFIG", "aggregator.x", "unknown key", "a.toml")


def test_cli_prints_file_dotted_key_and_expectation_exits_8(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    p = tmp_path / "sheaf.toml"
    p.write_text("[aggregator.recursion]\nbatchsize = 2\n")
    assert cli.main(["run", "--config", str(p)]) == cli.EXIT_CONFIG == 8
    err = capsys.readouterr().err
    assert err == f"CONFIG: {p}: aggregator.recursion.batchsize: unknown key; did you mean batch?\n"
