"""Ingest: fetch sources, parse and clean entries, store new articles.

The database is held only for the short read and write phases; fetching runs
without it, so an analyst's read-only session delays a run by at most the
lock wait instead of failing it.

The fetching itself (per-source time budget, retries, per-host slots: ``pipeline.feeds.gather``)
runs on threads of this process, or with ``fetch.runner = "dask"`` in chunks of sources on Dask
workers (``fetch_chunks``, given by ``flows.prefect_flows``): they get each source with its
conditional-GET state as plain data and send back plain outcomes. Either way this process alone
reads the sources, decides what is due, fetches article pages for full text and writes every
result, so scheduling, backoff and Retry-After are decided exactly alike. A server that said when
to come back (Retry-After) is left alone until then in later runs too, unless ``--force``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from flows.fulltext import fetch_pages, page_counts
from flows.shared import ArticleWriter, database, recorded_run
from pipeline.feeds.gather import (
    FeedOutcome,
    FetchJob,
    chunk_by_host,
    crashed,
    fetch_many,
    host_slot,
    is_remote,
)
from pipeline.feeds.pages import PageFetch
from pipeline.feeds.schedule import next_fetch_at, retry_after_until
from pipeline.feeds.sources import load_sources_file
from pipeline.records import Article, FetchResult, Source
from pipeline.settings import FetchSettings, Settings
from storage import pages as page_store
from storage import sources
from storage.convert import utcnow
from storage.db import transaction

log = logging.getLogger("storyline.ingest")


@dataclass
class SourceOutcome:
    """Everything one source's fetch produced, ready to be written in one transaction."""

    row: sources.SourceRow
    result: FetchResult
    articles: list[Article] = field(default_factory=list)
    entries: int | None = None
    warning: str | None = None
    ttl_minutes: int | None = None
    # Article pages fetched for full text (flows.fulltext), written in the source's transaction.
    pages: list[PageFetch] = field(default_factory=list)


@dataclass
class IngestReport:
    run_id: int
    sources_total: int = 0
    sources_ok: int = 0
    sources_unchanged: int = 0
    sources_failed: int = 0
    new_articles: int = 0
    duplicates: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    # Sources not fetched because their server asked us to wait (Retry-After) until then.
    deferred: dict[str, datetime] = field(default_factory=dict)
    # Article pages fetched for full text, by outcome (extracted, no_text, error, ...).
    pages: dict[str, int] = field(default_factory=dict)
    # Where the feeds were fetched: "local" (threads of this process) or "dask".
    runner: str = "local"


# Fetches chunks of sources elsewhere (tasks on a Dask cluster): every chunk's jobs in, each chunk's
# outcomes out as chunks finish, in any order; a chunk that fails comes back as crashed outcomes.
ChunkFetcher = Callable[[list[list[FetchJob]], FetchSettings, datetime], Iterator[list[FeedOutcome]]]


def prepare(
    settings: Settings, source_list: list[Source], *, due_only: bool, force: bool, now: datetime
) -> tuple[list[sources.SourceRow], dict[str, datetime]]:
    """Read phase: sync the sources file into the database, pick the sources to fetch.

    Returns the rows to fetch and the sources deferred because their server asked us to wait."""
    with database(settings) as con:
        with transaction(con):
            sources.sync_sources(con, source_list, now)
        rows = [r for r in sources.load_sources(con) if r.enabled]
    if due_only:
        rows = [r for r in rows if r.next_fetch_at is None or r.next_fetch_at <= now]
    deferred = {}
    if not force:
        deferred = {
            r.source.name: r.retry_after_until
            for r in rows
            if r.retry_after_until and r.retry_after_until > now
        }
        rows = [r for r in rows if r.source.name not in deferred]
    return rows, deferred


def store_outcomes(
    settings: Settings, run_id: int, outcomes: list[SourceOutcome], *, now: datetime
) -> IngestReport:
    """Write phase: one transaction per source, so a crash keeps every source already written."""
    report = IngestReport(run_id=run_id, sources_total=len(outcomes))
    with database(settings) as con:
        writer = ArticleWriter(con, run_id=run_id, arriving=[a for o in outcomes for a in o.articles])
        for outcome in sorted(outcomes, key=lambda o: o.row.source.name):
            result = outcome.result
            with transaction(con):
                stored = writer.store(outcome.articles)
                page_store.record_page_fetches(con, outcome.pages)
                page_store.upgrade_texts(con, outcome.articles)
                failures = outcome.row.consecutive_failures + 1 if result.failed else 0
                sources.record_fetch(
                    con,
                    run_id=run_id,
                    result=result,
                    entries=outcome.entries,
                    new_articles=stored.inserted,
                    warning=outcome.warning,
                    next_fetch_at=next_fetch_at(
                        now,
                        result,
                        consecutive_failures=failures,
                        ttl_minutes=outcome.ttl_minutes or outcome.row.ttl_minutes,
                        settings=settings.fetch,
                    ),
                    ttl_minutes=outcome.ttl_minutes,
                    disable_reason="410 Gone" if result.error_class == "gone" else None,
                    retry_after_until=retry_after_until(result, now, settings.fetch),
                )
            report.new_articles += stored.inserted
            for status, count in page_counts(outcome.pages).items():
                report.pages[status] = report.pages.get(status, 0) + count
            report.duplicates += stored.duplicates
            if result.failed:
                report.sources_failed += 1
                report.failures[result.source] = f"{result.error_class}: {result.error}"
            elif result.status == "ok":
                report.sources_ok += 1
            else:
                report.sources_unchanged += 1
    return report


def _log_outcome(outcome: FeedOutcome) -> None:
    result = outcome.result
    if result.failed:
        log.info("%s: failed: %s: %s", result.source, result.error_class, result.error)
    else:
        log.info("%s: %s, %d articles", result.source, result.status, len(outcome.articles))


def fetch_all(
    rows: list[sources.SourceRow],
    settings: Settings,
    now: datetime,
    *,
    progress: bool = True,
    fetch_chunks: ChunkFetcher | None = None,
) -> list[SourceOutcome]:
    """Fetch the sources, with a progress bar on a terminal: on ``fetch.max_workers`` threads here,
    or in chunks through ``fetch_chunks``. Local-path sources are always read here, where the
    sources file is (a remote worker has another disk)."""
    if not rows:
        return []
    by_name = {r.source.name: r for r in rows}
    jobs = [FetchJob(r.source, r.state) for r in rows]
    feeds: dict[str, FeedOutcome] = {}
    bar = tqdm(
        total=len(rows), desc="fetching", unit="source", disable=None if progress else True, leave=False
    )

    def done(outcome: FeedOutcome) -> None:
        _log_outcome(outcome)
        feeds[outcome.result.source] = outcome
        bar.update(1)

    try:
        if fetch_chunks is None:
            fetch_many(jobs, settings.fetch, now, done=done)
        else:
            here = [j for j in jobs if not is_remote(j)]
            chunks = chunk_by_host([j for j in jobs if is_remote(j)], settings.fetch.chunk)
            for chunk in fetch_chunks(chunks, settings.fetch, now) if chunks else ():
                for outcome in chunk:
                    done(outcome)
            fetch_many(here, settings.fetch, now, done=done)
    finally:
        bar.close()
    # Every source gets its fetch recorded, even one whose outcome a lost worker never sent.
    lost = RuntimeError("no outcome came back for this source")
    return [
        _with_row(by_name[j.source.name], feeds.get(j.source.name) or crashed(j, lost, now)) for j in jobs
    ]


def _with_row(row: sources.SourceRow, feed: FeedOutcome) -> SourceOutcome:
    return SourceOutcome(
        row=row,
        result=feed.result,
        articles=feed.articles,
        entries=feed.entries,
        warning=feed.warning,
        ttl_minutes=feed.ttl_minutes,
    )


def ingest_step(
    settings: Settings,
    *,
    due_only: bool = False,
    force: bool = False,
    progress: bool = True,
    fetch_chunks: ChunkFetcher | None = None,
) -> IngestReport:
    """Fetch the sources (all enabled ones, or only those due), store what is new.

    ``fetch_chunks``: fetch the sources in chunks elsewhere (the Dask runner); by default, here."""
    now = utcnow()
    source_list = load_sources_file(Path(settings.sources))
    with recorded_run(settings, "ingest") as run:
        rows, deferred = prepare(settings, source_list, due_only=due_only, force=force, now=now)
        outcomes = fetch_all(rows, settings, now, progress=progress, fetch_chunks=fetch_chunks)
        outcomes = fetch_pages(settings, outcomes, source_list, host_slot=host_slot)
        report = store_outcomes(settings, run.run_id, outcomes, now=now)
        report.deferred = deferred
        report.runner = settings.fetch.runner if fetch_chunks is not None else "local"
        run.stats = report.__dict__
    log.info(
        "ingest: %d sources, %d new articles, %d failed, %d deferred",
        report.sources_total, report.new_articles, report.sources_failed, len(report.deferred),
    )  # fmt: skip
    return report
