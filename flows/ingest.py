"""Ingest: fetch sources, parse and clean entries, store new articles.

The database is held only for the short read and write phases; fetching runs
without it, so an analyst's read-only session delays a run by at most the
lock wait instead of failing it.

Each source gets at most ``fetch.source_budget_s`` per run. A transient failure (connect error,
5xx, 429 without Retry-After) is retried after ``retry_delay_s``, then 4x that, ..., each retry's
deadline cut to what is left of the budget; an attempt whose whole-request deadline expired is
not retried (a server that trickles bytes would otherwise cost several deadlines), and a server
that said when to come back (Retry-After) is not asked again in this run — nor, until then, in
later runs, unless ``--force``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from tqdm import tqdm

from flows.fulltext import fetch_pages, page_counts
from flows.shared import ArticleWriter, database, recorded_run
from pipeline.articles.normalise import entries_to_articles
from pipeline.feeds.fetch import fetch_source, is_transient, make_client
from pipeline.feeds.pages import PageFetch
from pipeline.feeds.parse import parse_feed
from pipeline.feeds.schedule import next_fetch_at, retry_after_until
from pipeline.feeds.sources import load_sources_file
from pipeline.records import Article, FetchResult, Source
from pipeline.settings import Settings
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


_host_locks: dict[str, threading.BoundedSemaphore] = {}
_host_locks_guard = threading.Lock()


def _host_slot(url: str, limit: int) -> threading.BoundedSemaphore:
    """Per-host semaphore: many feeds of one outlet never hit it all at once."""
    host = urlsplit(url).hostname or "local"
    with _host_locks_guard:
        return _host_locks.setdefault(host, threading.BoundedSemaphore(limit))


def fetch_and_parse(
    row: sources.SourceRow,
    settings: Settings,
    now: datetime | None = None,
    *,
    deadline_s: float | None = None,
) -> SourceOutcome:
    """Fetch one source and turn its body into articles. Never raises for bad input."""
    fetch = settings.fetch
    if deadline_s is not None and deadline_s < fetch.deadline_s:
        fetch = fetch.model_copy(update={"deadline_s": deadline_s})
    with _host_slot(row.source.url, fetch.per_host_limit), make_client(fetch) as client:
        result = fetch_source(row.source, row.state, fetch, client=client, now=now)
    if result.status != "ok" or result.body is None:
        return SourceOutcome(row=row, result=result)
    feed = parse_feed(result.body, content_type=result.content_type, url=result.final_url or row.source.url)
    if feed.error_class:
        # Not a feed: recorded as a failure, and the body hash is not kept so the
        # source keeps showing as failing until it serves a feed again.
        failed = replace(result, status="error", error_class=feed.error_class, error=feed.error, body=None)
        return SourceOutcome(row=row, result=failed, entries=0)
    articles, notes = entries_to_articles(feed, row.source, result.started_at)
    warning = "; ".join(n for n in [feed.warning, *notes] if n) or None
    return SourceOutcome(
        row=row,
        result=replace(result, body=None),
        articles=articles,
        entries=len(feed.entries),
        warning=warning,
        ttl_minutes=feed.ttl_minutes,
    )


def fetch_with_retries(
    row: sources.SourceRow, settings: Settings, *, sleep: Callable[[float], None] = time.sleep
) -> SourceOutcome:
    """One source's fetch within its time budget for this run (see the module docstring)."""
    f = settings.fetch
    started = time.monotonic()
    attempt = 0
    while True:
        left = f.source_budget_s - (time.monotonic() - started)
        outcome = fetch_and_parse(row, settings, deadline_s=left)
        result = outcome.result
        retry = (
            result.failed
            and is_transient(result)
            and result.error_class != "timeout"
            and "retry-after" not in result.headers
            and attempt < f.retries
        )
        if not retry:
            return outcome
        delay = f.retry_delay_s * 4**attempt * (1 + random.uniform(-0.5, 0.5))
        # A retry needs time to connect and read: not worth starting with less than a few seconds.
        if time.monotonic() - started + delay + min(5.0, f.deadline_s) > f.source_budget_s:
            return outcome
        attempt += 1
        log.info("%s: %s, retry %d in %.1fs", row.source.name, result.error_class, attempt, delay)
        sleep(delay)


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


def _crashed(row: sources.SourceRow, exc: BaseException, now: datetime) -> SourceOutcome:
    """A fetch that raised (a bug, not bad input) still gets its failure recorded."""
    result = FetchResult(
        source=row.source.name,
        url=row.source.url,
        status="error",
        started_at=now,
        error_class=getattr(exc, "error_class", type(exc).__name__),
        error=str(exc),
    )
    return SourceOutcome(row=row, result=result)


def fetch_all(
    rows: list[sources.SourceRow], settings: Settings, now: datetime, *, progress: bool = True
) -> list[SourceOutcome]:
    """Fetch the sources on ``fetch.max_workers`` threads, with a progress bar on a terminal."""
    outcomes: list[SourceOutcome] = []
    if not rows:
        return outcomes
    bar = tqdm(
        total=len(rows), desc="fetching", unit="source", disable=None if progress else True, leave=False
    )
    pool = ThreadPoolExecutor(max_workers=settings.fetch.max_workers, thread_name_prefix="fetch")
    try:
        futures = {pool.submit(fetch_with_retries, row, settings): row for row in rows}
        for future in as_completed(futures):
            row = futures[future]
            try:
                outcome = future.result()
            except Exception as exc:
                outcome = _crashed(row, exc, now)
            result = outcome.result
            if result.failed:
                log.info("%s: failed: %s: %s", row.source.name, result.error_class, result.error)
            else:
                log.info("%s: %s, %d articles", row.source.name, result.status, len(outcome.articles))
            outcomes.append(outcome)
            bar.update(1)
    finally:
        # On an interrupt nothing waits for fetches in flight: they hold no database connection.
        pool.shutdown(wait=False, cancel_futures=True)
        bar.close()
    return outcomes


def ingest_step(
    settings: Settings, *, due_only: bool = False, force: bool = False, progress: bool = True
) -> IngestReport:
    """Fetch the sources (all enabled ones, or only those due), store what is new."""
    now = utcnow()
    source_list = load_sources_file(Path(settings.sources))
    with recorded_run(settings, "ingest") as run:
        rows, deferred = prepare(settings, source_list, due_only=due_only, force=force, now=now)
        outcomes = fetch_all(rows, settings, now, progress=progress)
        outcomes = fetch_pages(settings, outcomes, source_list, host_slot=_host_slot)
        report = store_outcomes(settings, run.run_id, outcomes, now=now)
        report.deferred = deferred
        run.stats = report.__dict__
    log.info(
        "ingest: %d sources, %d new articles, %d failed, %d deferred",
        report.sources_total, report.new_articles, report.sources_failed, len(report.deferred),
    )  # fmt: skip
    return report
