"""Ingest: fetch sources, parse and clean entries, store new articles.

The database is held only for the short read and write phases; fetching runs
without it, so an analyst's read-only session delays a run by at most the
lock wait instead of failing it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import task_run
from prefect.task_runners import ThreadPoolTaskRunner

from flows.shared import ArticleWriter, database, recorded_run
from pipeline.articles.normalise import entries_to_articles
from pipeline.feeds.fetch import fetch_source, is_transient, make_client
from pipeline.feeds.parse import parse_feed
from pipeline.feeds.schedule import next_fetch_at
from pipeline.feeds.sources import load_sources_file
from pipeline.records import Article, FetchResult, Source
from pipeline.settings import Settings, load_settings
from storage import sources
from storage.convert import utcnow
from storage.db import transaction


class TransientFetchError(Exception):
    """Raised inside the fetch task so Prefect retries it; the last attempt records instead."""


@dataclass
class SourceOutcome:
    """Everything one source's fetch produced, ready to be written in one transaction."""

    row: sources.SourceRow
    result: FetchResult
    articles: list[Article] = field(default_factory=list)
    entries: int | None = None
    warning: str | None = None
    ttl_minutes: int | None = None


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


_host_locks: dict[str, threading.BoundedSemaphore] = {}
_host_locks_guard = threading.Lock()


def _host_slot(url: str, limit: int) -> threading.BoundedSemaphore:
    """Per-host semaphore: many feeds of one outlet never hit it all at once."""
    host = urlsplit(url).hostname or "local"
    with _host_locks_guard:
        return _host_locks.setdefault(host, threading.BoundedSemaphore(limit))


def fetch_and_parse(row: sources.SourceRow, settings: Settings, now: datetime | None = None) -> SourceOutcome:
    """Fetch one source and turn its body into articles. Never raises for bad input."""
    with _host_slot(row.source.url, settings.fetch.per_host_limit), make_client(settings.fetch) as client:
        result = fetch_source(row.source, row.state, settings.fetch, client=client, now=now)
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


# No Prefect timeout here: it cannot interrupt a blocking call in a worker thread. Each
# attempt is bounded by the fetch's own whole-request deadline (settings.fetch.deadline_s).
@task(name="fetch-source", cache_policy=NO_CACHE)
def fetch_source_task(row: sources.SourceRow, settings: Settings) -> SourceOutcome:
    outcome = fetch_and_parse(row, settings)
    attempts_left = task_run.get_run_count() <= settings.fetch.retries
    # A server that said when to come back (429/503 Retry-After) is not asked again this run.
    told_to_wait = "retry-after" in outcome.result.headers
    if outcome.result.failed and is_transient(outcome.result) and attempts_left and not told_to_wait:
        raise TransientFetchError(f"{row.source.name}: {outcome.result.error_class}: {outcome.result.error}")
    return outcome


def _is_transient_failure(_task: object, _run: object, state: object) -> bool:
    return isinstance(state.result(raise_on_failure=False), TransientFetchError)  # type: ignore[attr-defined]


def prepare(
    settings: Settings, source_list: list[Source], *, due_only: bool, now: datetime
) -> list[sources.SourceRow]:
    """Read phase: sync the sources file into the database, pick the sources to fetch."""
    with database(settings) as con:
        with transaction(con):
            sources.sync_sources(con, source_list, now)
        rows = [r for r in sources.load_sources(con) if r.enabled]
    if due_only:
        rows = [r for r in rows if r.next_fetch_at is None or r.next_fetch_at <= now]
    return rows


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
                )
            report.new_articles += stored.inserted
            report.duplicates += stored.duplicates
            if result.failed:
                report.sources_failed += 1
                report.failures[result.source] = f"{result.error_class}: {result.error}"
            elif result.status == "ok":
                report.sources_ok += 1
            else:
                report.sources_unchanged += 1
    return report


def _collect(futures: list, rows: list[sources.SourceRow], now: datetime) -> list[SourceOutcome]:
    outcomes = []
    for fut, row in zip(futures, rows, strict=True):
        try:
            outcomes.append(fut.result())
        except Exception as exc:  # a task that crashed still gets its failure recorded
            result = FetchResult(
                source=row.source.name,
                url=row.source.url,
                status="error",
                started_at=now,
                error_class=getattr(exc, "error_class", type(exc).__name__),
                error=str(exc),
            )
            outcomes.append(SourceOutcome(row=row, result=result))
    return outcomes


# The worker cap is the default; callers narrow it with
# ingest_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=settings.fetch.max_workers)).
@flow(name="ingest", task_runner=ThreadPoolTaskRunner(max_workers=8))
def ingest_flow(settings: Settings | None = None, due_only: bool = False) -> IngestReport:
    """Fetch the sources (all enabled ones, or only those due), store what is new."""
    settings = settings or load_settings()
    logger = get_run_logger()
    now = utcnow()
    source_list = load_sources_file(Path(settings.sources))
    delays = [settings.fetch.retry_delay_s * 4**i for i in range(settings.fetch.retries)]
    fetch = fetch_source_task.with_options(
        retries=settings.fetch.retries,
        retry_delay_seconds=delays or 0,
        retry_jitter_factor=0.5,
        retry_condition_fn=_is_transient_failure,
    )
    with recorded_run(settings, "ingest") as run:
        rows = prepare(settings, source_list, due_only=due_only, now=now)
        futures = [fetch.submit(row=row, settings=settings) for row in rows]
        outcomes = _collect(futures, rows, now)
        report = store_outcomes(settings, run.run_id, outcomes, now=now)
        run.stats = report.__dict__
    logger.info(
        "ingest: %d sources, %d new articles, %d failed", report.sources_total, report.new_articles,
        report.sources_failed,
    )  # fmt: skip
    return report
