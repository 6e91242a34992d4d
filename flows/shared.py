"""What several flows share: the database of the settings, the run record, and the one path by
which new articles enter the database."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import duckdb

from pipeline.articles.syndication import DEFAULT_MAX_GAP, OriginalsIndex, find_duplicates, fingerprint
from pipeline.records import Article
from pipeline.settings import Settings
from storage import articles as article_store
from storage import runs
from storage.convert import utcnow
from storage.db import open_db


@contextmanager
def database(settings: Settings, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """The configured database for one short phase of work, waiting up to the configured lock wait."""
    with open_db(settings.db, read_only=read_only, lock_wait_s=settings.lock_wait_s) as con:
        yield con


@dataclass
class RunRecord:
    """The `runs` row of one step execution while it runs."""

    run_id: int
    stats: dict[str, Any] = field(default_factory=dict)
    finished: bool = False

    def finish(self, con: duckdb.DuckDBPyConnection, stats: dict[str, Any]) -> None:
        """Mark the run done on ``con`` — inside the transaction that writes its results, so the
        results and the record of them commit together."""
        runs.finish_run(con, self.run_id, stats=stats)
        self.finished = True


@contextmanager
def recorded_run(settings: Settings, kind: str, *, as_of: datetime | None = None) -> Iterator[RunRecord]:
    """A `runs` row for the block: 'running' while it runs, 'failed' with the error if it raises,
    else 'ok' with ``record.stats`` (unless the block called ``record.finish`` itself)."""
    with database(settings) as con:
        record = RunRecord(runs.start_run(con, kind, as_of=as_of))
    with runs.failure_recorded(settings.db, record.run_id, lock_wait_s=settings.lock_wait_s):
        yield record
    if not record.finished:
        with database(settings) as con:
            record.finish(con, record.stats)


@dataclass(frozen=True)
class StoredBatch:
    inserted: int
    duplicates: int


class ArticleWriter:
    """The one path by which new articles enter the database: drop what is already stored,
    fingerprint the rest, mark syndicated copies of earlier originals, insert. Built once per write
    phase, holding the connection throughout: what is stored is looked up once for all arriving
    articles (``StoredCheck``), not per batch.

    Lookback: a copy is matched to an original at most ``DEFAULT_MAX_GAP`` (4 days) apart, so
    stored originals are read from that long before the earliest arriving article on; originals
    stored through this writer are added as they go in (``find_duplicates`` grows the index), so
    copies within one run are found too.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, *, run_id: int, arriving: Sequence[Article]) -> None:
        self.con = con
        self.run_id = run_id
        earliest = min((_time(a) for a in arriving), default=utcnow())
        self.originals = OriginalsIndex(article_store.recent_fingerprints(con, earliest - DEFAULT_MAX_GAP))
        self.stored = article_store.StoredCheck(con, arriving)

    def store(self, articles: Sequence[Article]) -> StoredBatch:
        """Store what is new among ``articles``, inside the caller's transaction."""
        fresh = self.stored.new(articles)
        prints = {a.article_id: fingerprint(a.text) for a in fresh}
        copies = find_duplicates(fresh, self.originals, prints)
        fresh = [replace(a, duplicate_of=copies.get(a.article_id)) for a in fresh]
        inserted = article_store.insert_articles(
            self.con, fresh, run_id=self.run_id, fingerprints=prints, checked=True
        )
        return StoredBatch(inserted=len(inserted), duplicates=len(copies))


def _time(article: Article) -> datetime:
    return article.published_at or article.fetched_at
