"""Many sources fetched at once: each one fetched, parsed and cleaned into articles.

Plain data in (each source with its conditional-GET state, the fetch settings), plain data out (one
``FeedOutcome`` per source); no database. The ingest runs this in its own process, or one chunk of
sources per task on Dask workers (``fetch.runner = "dask"``), which is why it lives in ``pipeline``:
a worker needs nothing but these modules.

Each source gets at most ``fetch.source_budget_s`` per run. A transient failure (connect error,
5xx, 429 without Retry-After) is retried after ``retry_delay_s``, then 4x that, ..., each retry's
deadline cut to what is left of the budget; an attempt whose whole-request deadline expired is
not retried (a server that trickles bytes would otherwise cost several deadlines), and a server
that said when to come back (Retry-After) is not asked again in this run. The wait before a retry
is spent in a queue, not on a fetch thread (``fetch_many``).
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from queue import Empty, SimpleQueue
from urllib.parse import urlsplit

from pipeline.articles.normalise import entries_to_articles
from pipeline.feeds.fetch import fetch_source, is_transient, make_client
from pipeline.feeds.parse import parse_feed
from pipeline.records import Article, FetchResult, FetchState, Source
from pipeline.settings import FetchSettings

log = logging.getLogger("storyline.ingest")


@dataclass(frozen=True)
class FetchJob:
    """One source to fetch, with what the last fetch left for a conditional GET."""

    source: Source
    state: FetchState


@dataclass
class FeedOutcome:
    """What one source's fetch produced; ``result.source`` names the source."""

    result: FetchResult
    articles: list[Article] = field(default_factory=list)
    entries: int | None = None
    warning: str | None = None
    ttl_minutes: int | None = None


_host_locks: dict[str, threading.BoundedSemaphore] = {}
_host_locks_guard = threading.Lock()


def host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or "local"
    except ValueError:
        return "local"


def host_slot(url: str, limit: int) -> threading.BoundedSemaphore:
    """Per-host semaphore of this process: many feeds of one outlet never hit it all at once.

    Per process, so the Dask runner keeps a host's sources in one chunk (``chunk_by_host``)."""
    host = host_of(url)
    with _host_locks_guard:
        return _host_locks.setdefault(host, threading.BoundedSemaphore(limit))


def fetch_and_parse(
    job: FetchJob, fetch: FetchSettings, now: datetime | None = None, *, deadline_s: float | None = None
) -> FeedOutcome:
    """Fetch one source and turn its body into articles. Never raises for bad input."""
    if deadline_s is not None and deadline_s < fetch.deadline_s:
        fetch = fetch.model_copy(update={"deadline_s": deadline_s})
    with host_slot(job.source.url, fetch.per_host_limit), make_client(fetch) as client:
        result = fetch_source(job.source, job.state, fetch, client=client, now=now)
    if result.status != "ok" or result.body is None:
        return FeedOutcome(result=result)
    feed = parse_feed(result.body, content_type=result.content_type, url=result.final_url or job.source.url)
    if feed.error_class:
        # Not a feed: recorded as a failure, and the body hash is not kept so the
        # source keeps showing as failing until it serves a feed again.
        failed = replace(result, status="error", error_class=feed.error_class, error=feed.error, body=None)
        return FeedOutcome(result=failed, entries=0)
    articles, notes = entries_to_articles(feed, job.source, result.started_at)
    warning = "; ".join(n for n in [feed.warning, *notes] if n) or None
    return FeedOutcome(
        result=replace(result, body=None),
        articles=articles,
        entries=len(feed.entries),
        warning=warning,
        ttl_minutes=feed.ttl_minutes,
    )


@dataclass
class _Attempts:
    """One source's attempts in this run: its budget runs from the start of the first."""

    job: FetchJob
    started: float | None = None
    retries: int = 0


def _attempt(source: _Attempts, fetch: FetchSettings) -> FeedOutcome:
    if source.started is None:
        source.started = time.monotonic()
    left = fetch.source_budget_s - (time.monotonic() - source.started)
    return fetch_and_parse(source.job, fetch, deadline_s=left)


def _retry_in(source: _Attempts, outcome: FeedOutcome, fetch: FetchSettings) -> float | None:
    """Seconds to wait before the next attempt, or None when this outcome is the source's."""
    result = outcome.result
    retry = (
        result.failed
        and is_transient(result)
        and result.error_class != "timeout"
        and "retry-after" not in result.headers
        and source.retries < fetch.retries
    )
    if not retry or source.started is None:
        return None
    delay = fetch.retry_delay_s * 4**source.retries * (1 + random.uniform(-0.5, 0.5))
    # A retry needs time to connect and read: not worth starting with less than a few seconds.
    if time.monotonic() - source.started + delay + min(5.0, fetch.deadline_s) > fetch.source_budget_s:
        return None
    return delay


def crashed(job: FetchJob, exc: BaseException, now: datetime) -> FeedOutcome:
    """A fetch that raised (a bug, or a lost worker: not bad input) still gets its failure recorded."""
    result = FetchResult(
        source=job.source.name,
        url=job.source.url,
        status="error",
        started_at=now,
        error_class=getattr(exc, "error_class", type(exc).__name__),
        error=str(exc),
    )
    return FeedOutcome(result=result)


def fetch_many(
    jobs: list[FetchJob],
    fetch: FetchSettings,
    now: datetime | None = None,
    *,
    done: Callable[[FeedOutcome], None] | None = None,
) -> list[FeedOutcome]:
    """Fetch ``jobs`` on ``fetch.max_workers`` threads; one outcome per job, in the order they end.

    Nothing waits on a thread but a request: at most ``per_host_limit`` attempts of one host are
    handed to the threads at a time (the rest of that host's wait in a queue of their own), and a
    source waiting to be retried waits in a timer queue, its host slot free meanwhile. Before, a
    host whose feeds were slow had every thread waiting for its slots, and each retry slept on a
    thread: with 1% failing feeds, retry sleeps held the 8 threads for half of a 10,000-feed fetch
    (bench/fetch_scale.py). ``done`` is called with each outcome as it comes, on the calling thread
    (progress, logging)."""
    now = now or datetime.now(UTC)
    outcomes: list[FeedOutcome] = []
    if not jobs:
        return outcomes
    waiting: dict[str, deque[_Attempts]] = {}
    for job in jobs:
        waiting.setdefault(host_of(job.source.url), deque()).append(_Attempts(job))
    active = dict.fromkeys(waiting, 0)
    later: list[tuple[float, int, _Attempts]] = []  # (when, tie-breaker, source) to retry
    finished: SimpleQueue[Future[FeedOutcome]] = SimpleQueue()
    running: dict[Future[FeedOutcome], _Attempts] = {}
    pool = ThreadPoolExecutor(max_workers=fetch.max_workers, thread_name_prefix="fetch")

    def start(host: str) -> None:
        queue = waiting[host]
        while queue and active[host] < fetch.per_host_limit:
            source = queue.popleft()
            active[host] += 1
            future = pool.submit(_attempt, source, fetch)
            running[future] = source
            future.add_done_callback(finished.put)

    try:
        for host in waiting:
            start(host)
        while running or later:
            timeout = max(0.0, later[0][0] - time.monotonic()) if later else None
            try:
                future: Future[FeedOutcome] | None = finished.get(timeout=timeout)
            except Empty:
                future = None
            if future is not None:
                source = running.pop(future)
                host = host_of(source.job.source.url)
                active[host] -= 1
                try:
                    outcome = future.result()
                    delay = _retry_in(source, outcome, fetch)
                except Exception as exc:
                    outcome, delay = crashed(source.job, exc, now), None
                if delay is None:
                    outcomes.append(outcome)
                    if done:
                        done(outcome)
                else:
                    source.retries += 1
                    log.info(
                        "%s: %s, retry %d in %.1fs",
                        source.job.source.name, outcome.result.error_class, source.retries, delay,
                    )  # fmt: skip
                    heapq.heappush(later, (time.monotonic() + delay, id(source), source))
                start(host)
            while later and later[0][0] <= time.monotonic():
                source = heapq.heappop(later)[2]
                host = host_of(source.job.source.url)
                waiting[host].appendleft(source)
                start(host)
    finally:
        # On an interrupt nothing waits for fetches in flight: they hold no database connection.
        pool.shutdown(wait=False, cancel_futures=True)
    return outcomes


def is_remote(job: FetchJob) -> bool:
    """An http(s) source, which any machine can fetch; a local path means this machine's disk."""
    return urlsplit(job.source.url or "").scheme.lower() in ("http", "https")


def chunk_by_host(jobs: list[FetchJob], size: int) -> list[list[FetchJob]]:
    """Jobs in chunks of about ``size``, all sources of one host in the same chunk.

    Per-host slots are per process: with a host's sources in one chunk (one task, one worker), at
    most ``per_host_limit`` requests go to a host at a time, as when one process fetches everything.
    A host with more than ``size`` sources makes one larger chunk rather than be split. Largest
    hosts first into the emptiest chunk, so chunks come out even."""
    by_host: dict[str, list[FetchJob]] = {}
    for job in jobs:
        by_host.setdefault(host_of(job.source.url), []).append(job)
    count = max(1, -(-len(jobs) // size))
    chunks: list[list[FetchJob]] = [[] for _ in range(count)]
    for group in sorted(by_host.values(), key=len, reverse=True):
        min(chunks, key=len).extend(group)
    return [c for c in chunks if c]
