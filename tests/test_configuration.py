"""Configuration mistakes: every one is a configuration error (exit 2) with one readable line naming
where the value came from (the settings file, an environment variable), the key and what is allowed.
Nothing is silently ignored, and no traceback reaches the user."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flows.cli import EXIT_USAGE, main
from pipeline.feeds.sources import load_sources_file
from pipeline.settings import ConfigError, load_settings

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def config(tmp_path: Path, make_settings, monkeypatch: pytest.MonkeyPatch):
    """Write storyline.toml (a clean environment, the temp dir as working directory); returns its path."""

    def write(text: str | bytes, name: str = "storyline.toml") -> Path:
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        if name != "storyline.toml":
            monkeypatch.setenv("STORYLINE_CONFIG", str(path))
        return path

    return write


def _error(**overrides) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(**overrides)
    message = str(caught.value)
    assert "\n" not in message, "one line, not pydantic's multi-line report"
    return message


def _cli_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["stories", "--db", str(tmp_path / "x.duckdb")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("storyline: configuration error: ")
    return err.strip()


# The settings file


@pytest.mark.parametrize(
    ("toml", "key", "suggestion"),
    [
        ("[fetch]\nmax_byte = 100\n", "fetch.max_byte", "max_bytes"),
        ('[embed]\ndevise = "cuda"\n', "embed.devise", "device"),
        ("[digest]\ntop_storys = 1\n", "digest.top_storys", "top_stories"),
        ("lock_wait = 5\n", "lock_wait", "lock_wait_s"),
        ("[fetsh]\nretries = 1\n", "fetsh", "fetch"),
        ('[[digest.topics]]\nname = "x"\ndescription = "y"\nthreshhold = 0.5\n',
         "digest.topics[0].threshhold", "threshold"),
    ],
)  # fmt: skip
def test_a_misspelt_key_is_an_error_that_suggests_the_known_key(
    tmp_path: Path, config, capsys: pytest.CaptureFixture[str], toml: str, key: str, suggestion: str
) -> None:
    path = config(toml)
    assert _cli_error(tmp_path, capsys) == (
        f"storyline: configuration error: {key} in {path}: unknown key (did you mean {suggestion}?)"
    )


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[fetch]\nmax_bytes = -5", "fetch.max_bytes in {path}: must be greater than 0 (got -5)"),
        ("[fetch]\nmax_workers = 0", "fetch.max_workers in {path}: must be at least 1 (got 0)"),
        ("[fetch]\nper_host_limit = 0", "fetch.per_host_limit in {path}: must be at least 1 (got 0)"),
        ("[fetch]\ndeadline_s = -1", "fetch.deadline_s in {path}: must be greater than 0 (got -1)"),
        ("[fetch]\nconnect_timeout_s = 0",
         "fetch.connect_timeout_s in {path}: must be greater than 0 (got 0)"),
        ("[fetch]\nretries = -3", "fetch.retries in {path}: must be between 0 and 10 (got -3)"),
        ("[fetch]\nmax_bytes = 1.5",
         "fetch.max_bytes in {path}: must be a whole number, greater than 0 (got 1.5)"),
        ("[fetch]\nmin_interval_s = 600\nmax_interval_s = 300",
         "fetch.max_interval_s in {path}: must be at least min_interval_s (600) (got 300)"),
        ('[fetch]\nuser_agent = "bot\\r\\nX-Evil: 1"',
         "fetch.user_agent in {path}: must be non-empty printable"),
        ("lock_wait_s = nan", "lock_wait_s in {path}: must be a finite number, at least 0 (got nan)"),
        ("lock_wait_s = -1", "lock_wait_s in {path}: must be at least 0 (got -1)"),
        ("[cluster]\nwindow_days = -4", "cluster.window_days in {path}: must be greater than 0 (got -4)"),
        ("[cluster]\nmatch_threshold = 1.5",
         "cluster.match_threshold in {path}: must be between 0 and 1 (got 1.5)"),
        ("[cluster]\nmin_cluster_size = 1", "cluster.min_cluster_size in {path}: must be at least 2 (got 1)"),
        ("[cluster]\nwindow_days = 'a week'",
         "cluster.window_days in {path}: must be a finite number, greater than 0 (got 'a week')"),
        ('[embed]\ndevice = "gpu"',
         "embed.device in {path}: must be one of 'auto', 'cpu', 'cuda' or 'mps' (got 'gpu')"),
        ("[embed]\nbatch_size = 0", "embed.batch_size in {path}: must be at least 1 (got 0)"),
        ('[embed]\nmodel = " "', "embed.model in {path}: must name a model"),
        ('[digest]\ntimezone = "Mars/Base"',
         "digest.timezone in {path}: must be an IANA time zone name like 'Europe/London' (got 'Mars/Base')"),
        ('[digest]\ntimezone = "Europe/Londn"', "did you mean 'Europe/London'?"),
        ('[digest]\ndaily_at = "7am"', "digest.daily_at in {path}: must be a time of day as HH:MM"),
        ("[digest]\ntop_stories = 0", "digest.top_stories in {path}: must be at least 1 (got 0)"),
        ('[[digest.topics]]\nname = "Rates"\ndescription = "interest rates"\nthreshold = 2',
         "digest.topics[0].threshold in {path}: must be between 0 and 1 (got 2)"),
        ('[[digest.topics]]\nname = "Rates"\ndescription = "a"\n'
         '[[digest.topics]]\nname = "Rates"\ndescription = "b"',
         "digest.topics in {path}: topic name 'Rates' appears twice"),
        ('[[digest.topics]]\nname = "Rates"', "digest.topics[0].description in {path}: is required"),
        ('[schedule]\ndigest_cron = "0 25 * * *"',
         "schedule.digest_cron in {path}: must be a cron expression of five fields"),
        ('[schedule]\ndigest_cron = "0 7 * *"', "schedule.digest_cron in {path}: must be a cron expression"),
        ("[schedule]\ningest_every_s = 0", "schedule.ingest_every_s in {path}: must be at least 1 (got 0)"),
        ("fetch = 5", "fetch in {path}: must be a table of settings (got 5)"),
    ],
)  # fmt: skip
def test_a_value_outside_what_is_allowed_is_an_error_naming_file_key_and_range(
    config, toml: str, message: str
) -> None:
    path = config(toml + "\n")
    assert message.format(path=path) in _error()


def test_several_problems_are_reported_together_on_one_line(config) -> None:
    path = config("[fetch]\nmax_bytes = -5\nmax_workers = 0\nretries = -3\n[cluster]\nwindow_days = -4\n")
    message = _error()
    assert message.startswith(f"fetch.max_bytes in {path}: must be greater than 0 (got -5); ")
    assert "fetch.max_workers" in message and "fetch.retries" in message
    assert message.endswith("; and 1 more problem")


def test_a_malformed_or_binary_settings_file_is_a_configuration_error(
    tmp_path: Path, config, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config("[fetch\nmax_bytes = 1\n")
    err = _cli_error(tmp_path, capsys)
    assert f"settings file {path} is not valid TOML:" in err and "line 1" in err
    config(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    assert f"settings file {path} is not valid TOML: not UTF-8 text" in _cli_error(tmp_path, capsys)


def test_the_file_named_by_storyline_config_is_the_one_named_in_errors(tmp_path: Path, config) -> None:
    config("[fetch]\nmax_bytes = 1000\n")  # ./storyline.toml is not read when STORYLINE_CONFIG is set
    other = config("[fetch]\nmax_bytes = 0\n", name="elsewhere.toml")
    assert _error() == f"fetch.max_bytes in {other}: must be greater than 0 (got 0)"


def test_the_documented_example_and_well_formed_values_are_accepted(config) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    example = next(b for b in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[fetch]" in b)
    assert load_settings() is not None
    config(example)
    settings = load_settings()
    assert settings.fetch.max_bytes == 10485760
    config(
        "lock_wait_s = 0\n[fetch]\nretries = 0\nretry_delay_s = 0\nmin_interval_s = 0\n"
        "[cluster]\ncontext_neighbours = 0\ntime_weight = 0\nlink_threshold = 0\n"
        '[digest]\ntimezone = "America/New_York"\ndaily_at = "7:05"\n'
        '[[digest.topics]]\nname = "Rates"\ndescription = "interest rates"\nthreshold = 1\n'
        '[schedule]\ndigest_cron = "*/30 7-19 * jan-jun mon-fri"\n'
    )
    settings = load_settings()
    assert (settings.fetch.retries, settings.cluster.context_neighbours, settings.lock_wait_s) == (0, 0, 0)
    assert settings.schedule.digest_cron == "*/30 7-19 * jan-jun mon-fri"
    for cron in ("0 7,19 * * *", "@daily", "0 6 1 * *", "15 8 * * sat#2"):
        config(f'[schedule]\ndigest_cron = "{cron}"\n')
        assert load_settings().schedule.digest_cron == cron


# Environment variables


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("STORYLINE_FETCH__MAX_BYTES", "abc",
         "fetch.max_bytes from environment variable STORYLINE_FETCH__MAX_BYTES: "
         "must be a whole number, greater than 0 (got 'abc')"),
        ("STORYLINE_FETCH__PER_HOST_LIMIT", "0",
         "fetch.per_host_limit from environment variable STORYLINE_FETCH__PER_HOST_LIMIT: "
         "must be at least 1 (got '0')"),
        ("STORYLINE_LOCK_WAIT_S", "nan",
         "lock_wait_s from environment variable STORYLINE_LOCK_WAIT_S: must be a finite number, at least 0"),
        ("STORYLINE_EMBED__DEVICE", "gpu",
         "embed.device from environment variable STORYLINE_EMBED__DEVICE: must be one of 'auto', 'cpu'"),
        ("STORYLINE_FETCH__MAX_BYTE", "100",
         "fetch.max_byte from environment variable STORYLINE_FETCH__MAX_BYTE: "
         "unknown key (did you mean max_bytes?)"),
        ("STORYLINE_FETHC__RETRIES", "1",
         "fethc from environment variable STORYLINE_FETHC__RETRIES: unknown key (did you mean fetch?)"),
        ("STORYLINE_DB__PATH", "x",
         "db from environment variable STORYLINE_DB__PATH: is not a table of settings"),
        ("STORYLINE_DIGEST__TOPICS", "[{bad",
         "digest.topics from environment variable STORYLINE_DIGEST__TOPICS: must be JSON"),
        ("STORYLINE_DIGEST__TIMEZONE", "Mars/Base",
         "digest.timezone from environment variable STORYLINE_DIGEST__TIMEZONE: "
         "must be an IANA time zone name"),
    ],
)  # fmt: skip
def test_a_bad_environment_variable_is_an_error_naming_the_variable(
    tmp_path: Path,
    make_settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(name, value)
    assert _cli_error(tmp_path, capsys).startswith(f"storyline: configuration error: {message}")


def test_the_environment_overrides_the_file_and_is_named_when_its_value_is_bad(
    config, monkeypatch: pytest.MonkeyPatch
) -> None:
    config("[fetch]\nmax_bytes = 5000\nmin_interval_s = 600\n")
    monkeypatch.setenv("STORYLINE_FETCH__MAX_BYTES", "-1")
    assert _error().startswith("fetch.max_bytes from environment variable STORYLINE_FETCH__MAX_BYTES:")
    monkeypatch.setenv("STORYLINE_FETCH__MAX_BYTES", "7000")
    monkeypatch.setenv("STORYLINE_FETCH__MAX_INTERVAL_S", "300")
    assert _error() == (
        "fetch.max_interval_s from environment variable STORYLINE_FETCH__MAX_INTERVAL_S: "
        "must be at least min_interval_s (600) (got 300)"
    )
    monkeypatch.delenv("STORYLINE_FETCH__MAX_INTERVAL_S")
    monkeypatch.setenv("STORYLINE_HOME", "/srv/storyline")  # not a setting: other tools' variables are fine
    assert load_settings().fetch.max_bytes == 7000


# The sources file


def _sources(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _sources_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_sources_file(path)
    return str(caught.value)


@pytest.mark.parametrize("second", ["Same ", " Same", "Same\t", "SAME", "same  "])
def test_two_sources_whose_names_differ_only_by_spaces_or_case_are_an_error_naming_both(
    tmp_path: Path, second: str
) -> None:
    path = _sources(
        tmp_path,
        '# two feeds\n[[sources]]\nname = "Same"\nurl = "https://a.example/rss"\n\n'
        f'[[sources]]\nname = "{second}"\nurl = "https://b.example/rss"\n',
    )
    message = _sources_error(path)
    assert message.startswith(
        f"{path}: source #2 (line 6) {' '.join(second.split())!r} "
        "has the same name as source #1 (line 2) 'Same'"
    )


def test_names_are_stored_without_surrounding_or_repeated_spaces(tmp_path: Path) -> None:
    path = _sources(
        tmp_path,
        '[[sources]]\nname = "  Harbor \t Times "\nurl = " https://harbor.example/rss "\nlanguage = " en "\n'
        '[[sources]]\nname = "Harbor Tides"\nurl = "https://tides.example/rss"\n',
    )
    sources = load_sources_file(path)
    assert [(s.name, s.url, s.language) for s in sources] == [
        ("Harbor Times", "https://harbor.example/rss", "en"),
        ("Harbor Tides", "https://tides.example/rss", None),
    ]


def test_one_feed_listed_under_two_names_is_an_error(tmp_path: Path) -> None:
    path = _sources(
        tmp_path,
        '[[sources]]\nname = "Harbor Times"\nurl = "https://harbor.example/rss"\n'
        '[[sources]]\nname = "Valley Observer"\nurl = "https://HARBOR.example/rss"\n',
    )
    assert _sources_error(path).startswith(
        f"{path}: source #2 (line 4) 'Valley Observer' has the same url as source #1 (line 1) 'Harbor Times'"
    )
    local = _sources(
        tmp_path,
        'sources = [{name = "A", url = "feeds/a.xml"}, {name = "B", url = "./feeds/../feeds/a.xml"}]\n',
    )
    assert "source #2 'B' has the same url as source #1 'A'" in _sources_error(local)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[sources]]\nname = "A"\nurl = "https://a.example/rss"\nlang = "en"\n',
         "source 'A' has unknown keys ['lang'] (did you mean 'language'?)"),
        ('[[source]]\nname = "A"\nurl = "https://a.example/rss"\n',
         "unknown top-level key 'source' (did you mean 'sources'?)"),
        ('[[sources]]\nname = "A"\nurl = "https://a.example/rss"\nlanguage = 5\n',
         "source 'A': 'language' must be a string"),
        ('[[sources]]\nname = "A"\nurl = "https://a.example/rss"\n[[sources]]\nname = " "\nurl = "x"\n',
         "source #2 (line 4) needs a non-empty 'name'"),
    ],
)  # fmt: skip
def test_other_mistakes_in_the_sources_file_are_reported(tmp_path: Path, text: str, message: str) -> None:
    assert message in _sources_error(_sources(tmp_path, text))
