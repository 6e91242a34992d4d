"""`storyline import` and `backfill` on bad input: every problem is one line's, reported by its number,
and that line is skipped or stored undated — never the whole file lost."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.cli import EXIT_OK, main
from flows.importer import EXAMPLES, import_step
from pipeline.articles.normalise import MAX_TEXT_CHARS, MAX_TITLE_CHARS
from tests.builders import archive_record, query, write_archive

IMPORTED = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _record(ident: str, published_at: object, **fields: object) -> dict[str, object]:
    record = archive_record(ident, f"Headline {ident}", f"Body of article {ident}.", source="Wire",
                            published_at="")  # fmt: skip
    return record | {"published_at": published_at} | fields


def _stored(db: Path) -> dict[str, tuple]:
    rows = query(db, "SELECT external_id, published_at, title, text FROM articles")
    return {r[0]: r[1:] for r in rows}


def test_a_line_dated_year_one_is_stored_undated_and_the_rest_of_the_file_is_imported(
    tmp_path: Path, make_settings
) -> None:
    archive = write_archive(
        tmp_path / "a.jsonl", [_record("old", "0001-01-01"), _record("ok", "2026-01-02T10:00:00Z")]
    )
    db = tmp_path / "a.duckdb"
    assert main(["import", str(archive), "--db", str(db)]) == EXIT_OK
    stored = _stored(db)
    assert stored["old"][0] is None
    assert str(stored["ok"][0]) == "2026-01-02 10:00:00"
    ((status, stats),) = query(db, "SELECT status, stats FROM runs WHERE kind = 'import'")
    assert status == "ok" and json.loads(stats)["undated"] == 1


@pytest.mark.slow
def test_backfill_of_an_archive_with_a_year_one_date_completes(tmp_path: Path, make_settings) -> None:
    # Dated just before now, as the year-one article counts as arriving now: a short replay.
    recent = datetime.now(UTC) - timedelta(hours=6)
    archive = write_archive(
        tmp_path / "b.jsonl",
        [_record("old", "0001-01-01T00:00:00Z"), _record("ok", recent.isoformat()), _record("ok2", "junk")],
    )
    db = tmp_path / "b.duckdb"
    assert main(["backfill", str(archive), "--db", str(db), "--step", "1d"]) == EXIT_OK
    assert sorted(_stored(db)) == ["ok", "ok2", "old"]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("0001-01-01", "not after 1970"),
        ("1970-01-01T00:00:00Z", "not after 1970"),
        ("0001-01-01T00:00:00+05:00", "out of range"),
        ("yesterday", "not a valid ISO 8601 date"),
        ("99999-01-01", "not a valid ISO 8601 date"),
        ("2024-02-30", "not a valid ISO 8601 date"),
        (1700000000, "JSON int"),
        (["2024-01-01"], "JSON list"),
        ((IMPORTED + timedelta(hours=2)).isoformat(), "in the future"),
        ("9999-12-31T23:59:59Z", "in the future"),
    ],
)
def test_an_unusable_date_leaves_the_article_undated_and_is_reported_with_its_line_number(
    tmp_path: Path, make_settings, value: object, why: str
) -> None:
    archive = write_archive(tmp_path / "d.jsonl", [_record("good", "2026-03-01"), _record("bad", value)])
    report = import_step(make_settings(), archive, imported_at=IMPORTED)
    assert (report.lines, report.imported, report.rejected) == (2, 2, {})
    assert report.undated.count == 1
    assert list(report.undated.lines) == [2]
    assert why in report.undated.lines[2]
    stored = _stored(make_settings().db)
    assert stored["bad"][0] is None and str(stored["good"][0]) == "2026-03-01 00:00:00"


def test_dates_within_the_feed_tolerance_of_the_import_time_are_kept_and_absent_dates_are_not_reported(
    tmp_path: Path, make_settings
) -> None:
    soon = IMPORTED + timedelta(minutes=30)
    archive = write_archive(
        tmp_path / "f.jsonl",
        [_record("soon", soon.isoformat()), _record("none", None), _record("empty", "")],
    )
    report = import_step(make_settings(), archive, imported_at=IMPORTED)
    assert report.imported == 3 and report.undated.count == 0
    assert _stored(make_settings().db)["soon"][0] == soon.replace(tzinfo=None)


def test_the_report_counts_every_undated_line_and_names_the_first_few(tmp_path: Path, make_settings) -> None:
    lines = [_record(f"x{k}", "yesterday") for k in range(EXAMPLES + 5)]
    report = import_step(make_settings(), write_archive(tmp_path / "u.jsonl", lines), imported_at=IMPORTED)
    assert report.undated.count == EXAMPLES + 5
    assert list(report.undated.lines) == list(range(1, EXAMPLES + 1))
    notes = report.line_notes()
    assert notes[0] == f"{EXAMPLES + 5} line(s) stored undated, their date unusable:"
    assert notes[1] == "  line 1: published_at 'yesterday' is not a valid ISO 8601 date"
    assert notes[-1] == "  ... and 5 more" and len(notes) == EXAMPLES + 2


def test_a_line_over_the_feed_size_cap_is_skipped_and_reported_without_losing_the_others(
    tmp_path: Path, make_settings
) -> None:
    settings = make_settings(fetch={"max_bytes": 4096})
    huge = _record("huge", "2026-03-01", text="word " * 10_000)  # ~50 kB on one line
    exact = json.dumps(_record("fits", "2026-03-01"))
    archive = write_archive(tmp_path / "c.jsonl", [_record("before", "2026-03-01"), huge, exact])
    report = import_step(settings, archive, imported_at=IMPORTED)
    assert report.lines == 3 and report.imported == 2
    assert list(report.rejected) == [2]
    assert "bytes" in report.rejected[2] and "4,096" in report.rejected[2]
    assert sorted(_stored(settings.db)) == ["before", "fits"]


def test_a_long_title_and_text_are_cut_to_the_per_article_caps_and_reported(
    tmp_path: Path, make_settings
) -> None:
    record = _record("long", "2026-03-01")
    record["title"] = "Headline " * 500
    record["text"] = "A sentence of the article body. " * 10_000
    report = import_step(make_settings(), write_archive(tmp_path / "l.jsonl", [record]), imported_at=IMPORTED)
    assert report.imported == 1 and report.cut.count == 1
    assert "title" in report.cut.lines[1] and "text" in report.cut.lines[1]
    _, title, text = _stored(make_settings().db)["long"]
    assert len(title) <= MAX_TITLE_CHARS and title.startswith("Headline Headline")
    assert MAX_TEXT_CHARS - 100 < len(text) <= MAX_TEXT_CHARS and text.endswith("…")


def test_control_characters_are_stripped_and_half_characters_replaced_without_aborting_the_file(
    tmp_path: Path, make_settings
) -> None:
    lines = [
        _record(
            "nul", "2026-03-01", title="Null\u0000byte \u0007title", text="Body\u0000 with\u001b it.\nNext"
        ),
        _record("half", "2026-03-01", title="Half \ud800 a character"),
        _record("ok", "2026-03-01"),
    ]
    report = import_step(make_settings(), write_archive(tmp_path / "c.jsonl", lines), imported_at=IMPORTED)
    assert (report.imported, report.rejected) == (3, {})
    stored = _stored(make_settings().db)
    assert stored["nul"][1:] == ("Nullbyte title", "Body with it.\nNext")
    assert stored["half"][1] == "Half \ufffd a character"
    assert list(report.invalid_utf8.lines) == [2]


def test_invalid_utf8_is_replaced_and_the_lines_are_reported(tmp_path: Path, make_settings) -> None:
    good = json.dumps(_record("good", "2026-03-01")).encode()
    latin = json.dumps(_record("latin", "2026-03-01", title="Café")).encode().replace(b"\\u00e9", b"\xe9")
    archive = tmp_path / "i.jsonl"
    also = good.replace(b"good", b"also")
    archive.write_bytes(b"\xef\xbb\xbf" + good + b"\n" + latin + b"\n" + also + b"\n")
    report = import_step(make_settings(), archive, imported_at=IMPORTED)
    assert (report.lines, report.imported, report.rejected) == (3, 3, {}), "a byte order mark is not an error"
    assert report.invalid_utf8.count == 1 and list(report.invalid_utf8.lines) == [2]
    assert _stored(make_settings().db)["latin"][1] == "Caf\ufffd"


def test_json_nested_too_deeply_is_one_rejected_line(tmp_path: Path, make_settings) -> None:
    archive = write_archive(tmp_path / "n.jsonl", ["[" * 100_000, _record("ok", "2026-03-01")])
    report = import_step(make_settings(), archive, imported_at=IMPORTED)
    assert report.imported == 1 and list(report.rejected) == [1]
