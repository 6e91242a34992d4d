"""The page phase of an ingest: full text behind teasers (README "Full text").

Runs after every feed is fetched and before anything is written, as a phase of its own rather
than inside each source's fetch, because only then is it known which entries are new: one short
read of the database says which articles are not stored yet and which of their pages were
fetched before (validators for conditional GET; an extracted page is never fetched again), so a
feed re-read every 15 minutes costs no page requests for the entries it already gave. The
fetches and the extraction run without the database, on ``fetch.max_workers`` threads, at most
``fetch.per_host_limit`` requests per host at a time (the same per-host slots as feeds), with a
pause of ``fetch.fulltext_delay_s`` (or the host's robots.txt Crawl-delay) between the requests
to one host. A page that fails is recorded for its article (``page_fetches``); the article keeps
its feed text and the source does not fail.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx

from flows.shared import database
from pipeline.articles.extract import extract_main_text
from pipeline.articles.fulltext import drop_lines, page_mode, repeated_lines, wants_page, with_page_text
from pipeline.feeds.addresses import Resolver, resolve_host
from pipeline.feeds.fetch import make_client
from pipeline.feeds.pages import PageFetch, fetch_page, page_settings, source_is_internal
from pipeline.feeds.robots import ROBOTS_MAX_BYTES, RobotsCache
from pipeline.records import Article, FetchResult, FetchState, Source
from pipeline.settings import FetchSettings, Settings
from storage import articles as article_store
from storage import pages as page_store
from storage.convert import utcnow

log = logging.getLogger("storyline.fulltext")

HostSlot = Callable[[str, int], AbstractContextManager[object]]


class SourceOutcome(Protocol):
    """What this phase reads of flows.ingest.SourceOutcome (a dataclass; not imported: no cycle)."""

    row: Any
    articles: list[Article]
    pages: list[PageFetch]


Outcome = TypeVar("Outcome", bound=SourceOutcome)


@dataclass(frozen=True)
class PageJob:
    article: Article
    source: str  # the configured source (sources.name)
    internal: bool  # the source is on a non-public address, so its pages may be too
    state: FetchState


class HostPacer:
    """At least ``delay`` seconds between the starts of two requests to one host."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self._next: dict[str, float] = {}
        self._guard = threading.Lock()
        self._sleep = sleep

    def wait(self, url: str, delay: float) -> None:
        host = _host(url)
        with self._guard:
            now = time.monotonic()
            start = max(now, self._next.get(host, now))
            self._next[host] = start + delay
        if start > now:
            self._sleep(start - now)


def plan_pages(
    settings: Settings, outcomes: list[SourceOutcome], source_list: list[Source], resolve: Resolver
) -> list[PageJob]:
    """Read phase: the new articles whose pages to fetch, with what we know of each page."""
    fetch = settings.fetch
    configured = {s.name: s for s in source_list}
    wanted: list[tuple[Article, str]] = []
    for outcome in outcomes:
        name = outcome.row.source.name
        source = configured.get(name, outcome.row.source)
        mode = page_mode(fetch.fulltext, source.fulltext)
        wanted.extend((a, name) for a in outcome.articles if wants_page(a, mode, fetch.fulltext_min_chars))
    if not wanted:
        return []
    links = [u for a, _ in wanted for u in (a.url, a.canonical_url) if u]
    with database(settings) as con:
        fresh = {a.article_id for a in article_store.new_articles(con, [a for a, _ in wanted])}
        done = page_store.extracted_urls(con, links)
        known = page_store.page_states(con, links)
        retry = page_store.retry_urls(con, links, utcnow() - timedelta(seconds=fetch.fulltext_retry_s))
        stored = page_store.feed_text_ids(con, [a.article_id for a, _ in wanted if a.article_id not in fresh])
    internal: dict[str, bool] = {}
    per_source: dict[str, int] = {}
    jobs = []
    for article, name in wanted:
        url = article.url or ""
        if url in done or article.canonical_url in done:
            continue
        # New articles; and stored ones still in the feed whose page is worth asking again about.
        if article.article_id not in fresh and not (article.article_id in stored and url in retry):
            continue
        if per_source.get(name, 0) >= fetch.fulltext_max_pages:
            continue
        per_source[name] = per_source.get(name, 0) + 1
        if name not in internal:
            source = configured.get(name)
            internal[name] = source_is_internal(source.url if source else "", resolve)
        jobs.append(PageJob(article, name, internal[name], known.get(url, FetchState())))
    return jobs


class PageFetcher:
    """Fetches and extracts pages for one run: one client, robots.txt cache and pacer shared by
    the worker threads."""

    def __init__(self, settings: FetchSettings, host_slot: HostSlot, resolve: Resolver) -> None:
        self.settings = page_settings(settings)
        self.robots_settings = settings.model_copy(update={"max_bytes": ROBOTS_MAX_BYTES})
        self.host_slot = host_slot
        self.resolve = resolve
        self.client: httpx.Client = make_client(self.settings)
        self.pacer = HostPacer()
        self.robots = {
            flag: RobotsCache(
                lambda url, flag=flag: self._fetch(url, FetchState(), flag, robots=True), settings.user_agent
            )
            for flag in (False, True)
        }
        self.started: dict[str, float] = {}
        self._guard = threading.Lock()

    def close(self) -> None:
        self.client.close()

    def _fetch(
        self, url: str, state: FetchState, internal: bool, *, robots: bool = False, left: float = 0
    ) -> FetchResult:
        settings = self.robots_settings if robots else self.settings
        if left and left < settings.deadline_s:
            settings = settings.model_copy(update={"deadline_s": max(left, 0.1)})
        return fetch_page(
            url, state, settings, client=self.client, internal_source=internal, resolve=self.resolve
        )

    def run_safely(self, job: PageJob) -> tuple[PageJob, str | None, PageFetch]:
        """run, with a bug recorded as the page's failure instead of ending the ingest."""
        try:
            return self.run(job)
        except Exception as exc:
            record = PageFetch(
                url=job.article.url or "",
                article_id=job.article.article_id,
                source=job.source,
                fetched_at=utcnow(),
                status="error",
                error_class="internal_error",
                error=f"{type(exc).__name__}: {exc}",
            )
            return job, None, record

    def run(self, job: PageJob) -> tuple[PageJob, str | None, PageFetch]:
        """One page: its extracted text (None when there is none to use) and its record. Never
        raises for a bad page or server."""
        article, url = job.article, job.article.url or ""
        record = PageFetch(
            url=url, article_id=article.article_id, source=job.source, fetched_at=utcnow(), status="error"
        )
        with self._guard:
            first = self.started.setdefault(job.source, time.monotonic())
        left = self.settings.source_budget_s - (time.monotonic() - first)
        if left <= 0.5:
            return (
                job,
                None,
                replace(
                    record,
                    error_class="over_budget",
                    error=f"the source's {self.settings.source_budget_s:g} s budget was spent",
                ),
            )
        with self.host_slot(url, self.settings.per_host_limit):
            verdict = self.robots[job.internal].verdict(url)
            if not verdict.allowed:
                return (
                    job,
                    None,
                    replace(
                        record,
                        status="skipped",
                        error_class="robots_disallowed",
                        error=verdict.reason or "robots.txt disallows it for our User-Agent",
                    ),
                )
            self.pacer.wait(url, max(self.settings.fulltext_delay_s, verdict.crawl_delay_s or 0.0))
            result = self._fetch(url, job.state, job.internal, left=left)
        record = replace(
            record,
            http_status=result.http_status,
            bytes=result.bytes_read,
            etag=result.etag,
            last_modified=result.last_modified,
        )
        if result.failed:
            return job, None, replace(record, error_class=result.error_class, error=result.error)
        if result.status != "ok" or result.body is None:
            return job, None, replace(record, status="not_modified")
        # The status is settled in fetch_pages, once lines repeated across pages are known.
        return job, extract_main_text(result.body, result.final_url or url), replace(record, status="ok")


def fetch_pages(
    settings: Settings,
    outcomes: list[Outcome],
    source_list: list[Source],
    *,
    host_slot: HostSlot,
    resolve: Resolver = resolve_host,
) -> list[Outcome]:
    """The outcomes with page text in place of teasers and each page's record attached."""
    jobs = plan_pages(settings, outcomes, source_list, resolve)
    if not jobs:
        return outcomes
    started = time.monotonic()
    fetcher = PageFetcher(settings.fetch, host_slot, resolve)
    pool = ThreadPoolExecutor(max_workers=settings.fetch.max_workers, thread_name_prefix="page")
    try:
        done = list(pool.map(fetcher.run_safely, jobs))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        fetcher.close()
    texts, records = _settle(done)
    extracted = len(texts)
    # bench/fulltext.py reads the seconds, the last argument, for its pages per second.
    log.info("pages: %d fetched, %d with full text, %.3f s", len(jobs), extracted, time.monotonic() - started)
    return [
        replace(
            o,  # type: ignore[type-var]
            articles=[texts.get(a.article_id, a) for a in o.articles],
            pages=records.get(o.row.source.name, []),
        )
        for o in outcomes
    ]


def _settle(
    done: list[tuple[PageJob, str | None, PageFetch]],
) -> tuple[dict[str, Article], dict[str, list[PageFetch]]]:
    """Articles with page text by id, and the page records by source: lines that recur on several
    of one host's pages (furniture a page's markup did not give away) are dropped first."""
    repeated = repeated_lines((_host(j.article.url), t) for j, t, _ in done if t)
    texts: dict[str, Article] = {}
    records: dict[str, list[PageFetch]] = {}
    for job, text, record in done:
        if text is not None:
            text = drop_lines(text, repeated.get(_host(job.article.url), set()))
            updated = with_page_text(job.article, text)
            if updated is None:
                record = replace(record, status="no_text", chars=len(text))
            else:
                texts[updated.article_id] = updated
                record = replace(record, status="extracted", chars=len(updated.text))
        records.setdefault(job.source, []).append(record)
    return texts, records


def _host(url: str | None) -> str:
    return (urlsplit(url or "").hostname or "").lower()


def page_counts(pages: list[PageFetch]) -> dict[str, int]:
    return dict(Counter(page.status for page in pages))


__all__ = ["HostPacer", "PageFetcher", "PageJob", "fetch_pages", "page_counts", "plan_pages"]
