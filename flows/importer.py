"""Import: load articles from JSON Lines without fetching (archives, benchmark sets)."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from flows.shared import ArticleWriter, database, recorded_run
from pipeline.articles.normalise import MAX_TEXT_CHARS, MAX_TITLE_CHARS, RecordIssues, article_from_record
from pipeline.records import Article
from pipeline.settings import Settings
from storage import sources
from storage.convert import utcnow
from storage.db import transaction

BATCH = 5000
# Lines named per kind of problem in the report (the counts cover them all).
EXAMPLES = 10
# A line over the byte cap is skipped in pieces of this size, never held whole in memory.
_SKIP_CHUNK = 1024 * 1024


@dataclass
class LineIssues:
    """Stored lines with one kind of problem: how many, and the first few by number with what."""

    count: int = 0
    lines: dict[int, str] = field(default_factory=dict)

    def add(self, number: int, why: str) -> None:
        self.count += 1
        if len(self.lines) < EXAMPLES:
            self.lines[number] = why


@dataclass
class ImportReport:
    run_id: int
    lines: int = 0
    imported: int = 0
    already_stored: int = 0
    duplicates: int = 0
    # Lines skipped, by number, with why.
    rejected: dict[int, str] = field(default_factory=dict)
    # Lines whose published_at was there but unusable (not a date, not after 1970, in the future):
    # their articles are stored undated.
    undated: LineIssues = field(default_factory=LineIssues)
    # Lines with bytes that are not UTF-8 (or escapes of half a character): replaced with U+FFFD.
    invalid_utf8: LineIssues = field(default_factory=LineIssues)
    # Lines whose title or text was longer than the per-article caps: stored cut.
    cut: LineIssues = field(default_factory=LineIssues)

    def line_notes(self) -> list[str]:
        """Lines for the user about lines stored with a problem: a count per kind, then the first few."""
        notes = []
        for what, issues in (
            ("stored undated, their date unusable", self.undated),
            ("with invalid UTF-8, replaced with U+FFFD", self.invalid_utf8),
            ("with title or text cut to the size caps", self.cut),
        ):
            if issues.count:
                notes.append(f"{issues.count} line(s) {what}:")
                notes.extend(f"  line {number}: {why}" for number, why in issues.lines.items())
                if issues.count > len(issues.lines):
                    notes.append(f"  ... and {issues.count - len(issues.lines)} more")
        return notes

    def stats(self) -> dict[str, int]:
        """The counts, for the run record."""
        return {
            "lines": self.lines,
            "imported": self.imported,
            "already_stored": self.already_stored,
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "undated": self.undated.count,
            "invalid_utf8": self.invalid_utf8.count,
            "cut": self.cut.count,
        }


def _numbered_lines(handle: BinaryIO, max_bytes: int) -> Iterator[tuple[int, bytes | None, int]]:
    """(number, bytes, length) of each line; a line longer than ``max_bytes`` comes as None with
    its length, having been skipped without being read whole into memory."""
    number = 0
    while line := handle.readline(max_bytes + 1):
        number += 1
        if len(line) <= max_bytes or line.endswith(b"\n"):
            yield number, line, len(line)
            continue
        length = len(line)
        while not line.endswith(b"\n"):
            line = handle.readline(_SKIP_CHUNK)
            if not line:
                break
            length += len(line)
        yield number, None, length


def read_jsonl(
    path: Path, imported_at: datetime, report: ImportReport, *, max_line_bytes: int
) -> Iterator[Article]:
    """Articles of a JSON Lines file; a bad line is reported by number and skipped, never fatal."""
    with path.open("rb") as handle:
        for number, raw, length in _numbered_lines(handle, max_line_bytes):
            if raw is not None and not raw.strip():
                continue
            report.lines += 1
            if raw is None:
                report.rejected[number] = f"line of {length:,} bytes, over the {max_line_bytes:,}-byte cap"
                continue
            article = _read_line(number, raw, imported_at, report)
            if article is not None:
                yield article


def _read_line(number: int, raw: bytes, imported_at: datetime, report: ImportReport) -> Article | None:
    """The article of one line, its problems added to the report; None for a rejected line."""
    if number == 1 and raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8) :]
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.decode("utf-8", errors="replace")
        report.invalid_utf8.add(number, f"invalid UTF-8 at byte {exc.start + 1}")
    issues = RecordIssues()
    try:
        article = article_from_record(json.loads(line), imported_at=imported_at, issues=issues)
    except (ValueError, TypeError) as exc:
        report.rejected[number] = str(exc)[:200]
        return None
    except RecursionError:
        report.rejected[number] = "JSON nested too deeply"
        return None
    except Exception as exc:  # one odd line must never cost the rest of the file
        report.rejected[number] = f"{type(exc).__name__}: {exc}"[:200]
        return None
    if issues.date:
        report.undated.add(number, issues.date)
    if issues.broken_characters:
        report.invalid_utf8.add(number, "escape of half a character (a lone surrogate such as \\ud800)")
    if issues.cut:
        caps = {"title": MAX_TITLE_CHARS, "text": MAX_TEXT_CHARS}
        report.cut.add(number, ", ".join(f"{what} cut to {caps[what]:,} characters" for what in issues.cut))
    return article


def import_step(settings: Settings, path: Path, *, imported_at: datetime | None = None) -> ImportReport:
    """Import in time order (so the earliest copy of a syndicated text is the original).

    Lines are capped at the feed size cap (``fetch.max_bytes``); dates are judged against
    ``imported_at`` as feed dates are against the fetch time.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a file")
    imported_at = imported_at or utcnow()
    with recorded_run(settings, "import") as run:
        report = ImportReport(run_id=run.run_id)
        articles = sorted(
            read_jsonl(path, imported_at, report, max_line_bytes=settings.fetch.max_bytes),
            key=lambda a: (a.published_at or imported_at, a.article_id),
        )
        with database(settings) as con:
            with transaction(con):
                sources.ensure_import_sources(con, {a.source for a in articles}, imported_at)
            writer = ArticleWriter(con, run_id=run.run_id, arriving=articles)
            for start in range(0, len(articles), BATCH):
                batch = articles[start : start + BATCH]
                with transaction(con):
                    stored = writer.store(batch)
                report.imported += stored.inserted
                report.already_stored += len(batch) - stored.inserted
                report.duplicates += stored.duplicates
            run.finish(con, report.stats())
    return report
