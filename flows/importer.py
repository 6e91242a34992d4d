"""Import: load articles from JSON Lines without fetching (archives, benchmark sets)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from pipeline.articles import article_from_record
from pipeline.dedupe import find_duplicates, fingerprint
from pipeline.models import Article
from pipeline.settings import Settings
from storage import articles as article_store
from storage import runs
from storage.convert import utcnow
from storage.db import open_db, transaction
from storage.importer import ensure_import_sources

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


def import_jsonl(settings: Settings, path: Path, *, imported_at: datetime | None = None) -> ImportReport:
    """Import in time order (so the earliest copy of a syndicated text is the original)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not a file")
    imported_at = imported_at or utcnow()
    with open_db(settings.db, lock_wait_s=settings.lock_wait_s) as con:
        run_id = runs.start_run(con, "import")
    with runs.failure_recorded(settings.db, run_id, lock_wait_s=settings.lock_wait_s):
        report = ImportReport(run_id=run_id)
        articles = sorted(
            read_jsonl(path, imported_at, report),
            key=lambda a: (a.published_at or imported_at, a.article_id),
        )
        with open_db(settings.db, lock_wait_s=settings.lock_wait_s) as con:
            with transaction(con):
                ensure_import_sources(con, {a.source for a in articles}, imported_at)
            earliest = min((a.published_at or imported_at for a in articles), default=imported_at)
            originals = article_store.recent_fingerprints(
                con, earliest - timedelta(days=settings.cluster.window_days)
            )
            for start in range(0, len(articles), BATCH):
                batch = articles[start : start + BATCH]
                with transaction(con):
                    fresh = article_store.new_articles(con, batch)
                    prints = {a.article_id: fingerprint(a.text) for a in fresh}
                    copies = find_duplicates(fresh, originals, prints)
                    fresh = [replace(a, duplicate_of=copies.get(a.article_id)) for a in fresh]
                    inserted = article_store.insert_articles(con, fresh, run_id=run_id, fingerprints=prints)
                report.imported += len(inserted)
                report.already_stored += len(batch) - len(inserted)
                report.duplicates += sum(1 for a in fresh if a.duplicate_of)
                originals.extend(
                    article_store.StoredFingerprint(
                        a.article_id, a.source, prints[a.article_id], a.published_at or imported_at
                    )
                    for a in fresh
                    if a.duplicate_of is None
                )
            runs.finish_run(
                con,
                run_id,
                status="ok",
                stats={k: v for k, v in report.__dict__.items() if k != "rejected"}
                | {"rejected": len(report.rejected)},
            )
    return report
