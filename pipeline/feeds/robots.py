"""robots.txt for article pages: fetched once per host per run, and honoured for our User-Agent.

Following RFC 9309: a robots.txt that is missing or refused with a 4xx allows everything; one that
cannot be reached (5xx, timeout, network error) disallows everything for this run, since the site
may be saying "not now". A Crawl-delay for our agent (or *) lengthens the politeness pause.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit
from urllib.robotparser import RobotFileParser

from pipeline.records import FetchResult

# Robots files are small; anything bigger is read up to this much (as Google does with 500 KiB).
ROBOTS_MAX_BYTES = 512 * 1024
# A Crawl-delay above this is taken as this: the page phase of one run must end.
MAX_CRAWL_DELAY_S = 60.0

# Fetches a robots.txt URL within the caller's rules (deadline, size cap, address checks).
RobotsFetcher = Callable[[str], FetchResult]


@dataclass(frozen=True)
class RobotsVerdict:
    allowed: bool
    crawl_delay_s: float | None = None
    # Why everything is disallowed when robots.txt could not be read; None otherwise.
    reason: str | None = None


@dataclass
class _HostRules:
    parser: RobotFileParser | None  # None: nothing disallowed
    blocked: str | None = None  # set: everything disallowed, and why


def robots_url(page_url: str) -> str:
    parts = urlsplit(page_url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), "/robots.txt", "", ""))


def rules_from_fetch(result: FetchResult) -> _HostRules:
    """The rules a robots.txt fetch gives (RFC 9309 on errors)."""
    if result.status == "ok" and result.body is not None:
        parser = RobotFileParser()
        parser.parse(result.body.decode("utf-8", errors="replace").splitlines())
        return _HostRules(parser)
    code = result.http_status or 0
    if result.failed and (code >= 500 or result.error_class in ("timeout", "connect_error", "network_error")):
        return _HostRules(None, blocked=f"robots.txt unreachable ({result.error_class}: {result.error})")
    # 4xx (none there), too large or any other refusal: no rules to honour.
    return _HostRules(None)


class RobotsCache:
    """robots.txt rules per scheme and host for one run; safe to share between threads (each host's
    file is fetched once, by the first thread that needs it)."""

    def __init__(self, fetch: RobotsFetcher, user_agent: str) -> None:
        self._fetch = fetch
        self._agent = user_agent
        self._rules: dict[str, _HostRules] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def verdict(self, page_url: str) -> RobotsVerdict:
        key = robots_url(page_url)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            rules = self._rules.get(key)
            if rules is None:
                rules = self._rules[key] = rules_from_fetch(self._fetch(key))
        if rules.blocked:
            return RobotsVerdict(False, reason=rules.blocked)
        if rules.parser is None:
            return RobotsVerdict(True)
        delay = rules.parser.crawl_delay(self._agent)
        return RobotsVerdict(
            rules.parser.can_fetch(self._agent, page_url),
            min(float(delay), MAX_CRAWL_DELAY_S) if delay is not None else None,
        )
