"""The `storyline` command line: what users type, what it prints, and what its exit codes mean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.cli import EXIT_DB, EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from tests.builders import (
    FLOOD_REPORTS,
    RATE_RISE_REPORTS,
    archive_record,
    count_rows,
    query,
    write_archive,
)


def _records() -> list[dict[str, object]]:
    """The flood and the rate rise, three outlets each, as an archive holds them."""
    out = []
    for k, text in enumerate(FLOOD_REPORTS + RATE_RISE_REPORTS):
        title, body = text.split(". ", 1)
        out.append(
            archive_record(
                1000 + k,  # numeric ids are kept as text
                title,
                body,
                source=["Wire", "Daily", "Courier"][k % 3],
                url=f"https://news.example/{k}?utm_source=feed",
                published_at=f"2026-11-2{k // 3}T0{k}:00:00Z",
                story="ignored extra key",
            )
        )
    return out


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    broken = ["", "{not json", ["a list"], {"id": "x", "title": None, "text": ""}]
    return write_archive(tmp_path / "archive.jsonl", [*_records(), *broken])


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "ingest", "embed", "cluster", "import", "backfill", "stories", "sql", "sources",
                    "digest", "export", "serve", "web", "search", "feed"):  # fmt: skip
        assert command in out
    assert "Exit codes" in out


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["frobnicate"])
    assert exit_.value.code == EXIT_USAGE


def test_a_missing_or_broken_sources_file_is_a_configuration_error(
    tmp_path: Path, make_settings, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "x.duckdb"
    assert main(["ingest", "--sources", str(tmp_path / "nope.toml"), "--db", str(db)]) == EXIT_USAGE
    assert "sources file" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("[[sources]]\nname = 'a'\n")
    assert main(["ingest", "--sources", str(bad), "--db", str(db)]) == EXIT_USAGE
    assert "needs a non-empty 'url'" in capsys.readouterr().err


def test_bad_settings_from_file_or_environment_are_configuration_errors(
    tmp_path: Path, make_settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STORYLINE_CONFIG", str(tmp_path / "missing.toml"))
    assert main(["stories", "--db", str(tmp_path / "x.duckdb")]) == EXIT_USAGE
    assert "STORYLINE_CONFIG" in capsys.readouterr().err
    config = tmp_path / "storyline.toml"
    config.write_text("[cluster]\nwindow_days = 'a week'\n")
    monkeypatch.setenv("STORYLINE_CONFIG", str(config))
    assert main(["stories", "--db", str(tmp_path / "x.duckdb")]) == EXIT_USAGE
    assert "window_days" in capsys.readouterr().err


def test_a_database_that_cannot_be_created_or_does_not_exist_is_a_database_error(
    tmp_path: Path, make_settings, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", str(archive), "--db", str(tmp_path / "no" / "such" / "dir.duckdb")]) == EXIT_DB
    assert "does not exist" in capsys.readouterr().err
    assert main(["stories", "--db", str(tmp_path / "never-created.duckdb")]) == EXIT_DB
    assert "does not exist yet" in capsys.readouterr().err


def test_import_keeps_ids_ignores_extra_keys_reports_bad_lines_and_is_idempotent(
    tmp_path: Path, make_settings, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "i.duckdb"
    assert main(["import", str(archive), "--db", str(db)]) == EXIT_OK
    captured = capsys.readouterr()
    assert "lines: 9, imported: 6, already stored: 0" in captured.out and "rejected: 3" in captured.out
    assert "line 8:" in captured.err and "line 9: record is a JSON list" in captured.err
    rows = query(
        db, "SELECT external_id, source, canonical_url, published_at FROM articles ORDER BY external_id"
    )
    assert [r[0] for r in rows] == [str(1000 + k) for k in range(6)]
    assert rows[0][2] == "https://news.example/0", "tracking parameters are dropped"
    assert str(rows[5][3]) == "2026-11-21 05:00:00"
    assert main(["import", str(archive), "--db", str(db)]) == EXIT_OK
    assert "imported: 0, already stored: 6" in capsys.readouterr().out
    assert count_rows(db, "articles") == 6


def test_import_of_a_file_with_no_usable_line_fails(tmp_path: Path, make_settings) -> None:
    junk = tmp_path / "junk.jsonl"
    junk.write_text("nope\n[1]\n")
    assert main(["import", str(junk), "--db", str(tmp_path / "j.duckdb")]) == EXIT_FAILED
    assert main(["import", str(tmp_path / "absent.jsonl"), "--db", str(tmp_path / "j.duckdb")]) == EXIT_USAGE


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_imported_articles_cluster_into_stories_that_sql_can_list(
    tmp_path: Path, make_settings, archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "c.duckdb"
    assert main(["import", str(archive), "--db", str(db)]) == EXIT_OK
    assert main(["cluster", "--db", str(db), "--as-of", "2026-11-22T00:00:00Z"]) == EXIT_OK
    assert "2 touched (2 new" in capsys.readouterr().out
    assert count_rows(db, "embeddings") == 6, "cluster embeds what lacks a vector"
    sql = "SELECT article_count, source_count FROM story_summary ORDER BY first_seen"
    assert main(["sql", sql, "--db", str(db), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == [
        {"article_count": 3, "source_count": 3},
        {"article_count": 3, "source_count": 3},
    ]
    runs = query(db, "SELECT kind, status, as_of FROM runs ORDER BY run_id")
    assert [(k, s) for k, s, _ in runs] == [("import", "ok"), ("embed", "ok"), ("cluster", "ok")]
    assert str(runs[-1][2]) == "2026-11-22 00:00:00"
