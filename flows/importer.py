"""Import: load articles from JSON Lines without fetching (archives, benchmark sets)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from flows.shared import ArticleWriter, database, recorded_run
from pipeline.articles.normalise import article_from_record
from pipeline.records import Article
from pipeline.settings import Settings
from storage import sources
from storage.convert import utcnow
from storage.db import transaction

BATCH = 5000


@dataclass
class ImportReport:
    run_id: int
    lines: int = 0
    imported: int = 0
    already_stored: int = 0
    duplicates: int = 0
    rejected: dict[int, str] = field(default_factory=dict)


def read_jsonl(path: Path, imported_at: datetime, report: ImportReport) -> Iterator[Article]:
    """Articles of a JSON Lines file; a bad line is reported by number, never fatal."""
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            report.lines += 1
            try:
                record = json.loads(line)
                yield article_from_record(record, imported_at=imported_at)
            except (ValueError, TypeError) as exc:
                report.rejected[number] = str(exc)[:200]


def import_step(settings: Settings, path: Path, *, imported_at: datetime | None = None) -> ImportReport:
    """Import in time order (so the earliest copy of a syndicated text is the original)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a file")
    imported_at = imported_at or utcnow()
    with recorded_run(settings, "import") as run:
        report = ImportReport(run_id=run.run_id)
        articles = sorted(
            read_jsonl(path, imported_at, report),
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
            stats = {k: v for k, v in report.__dict__.items() if k != "rejected"}
            run.finish(con, stats | {"rejected": len(report.rejected)})
    return report
