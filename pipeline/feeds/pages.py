"""Fetch one article page behind a feed entry, under the feed fetcher's rules.

The same fetch as for feeds (pipeline.feeds.fetch: connect and read timeouts, a whole-request
deadline, gzip, a size cap counted after decoding, conditional GET, a descriptive User-Agent),
with a page's own size cap, and with the address rule for URLs taken from feed content: an
article link's host is untrusted, so it must resolve to public addresses only and every connection
(redirects included) goes only to the addresses checked — unless the source itself is configured
on a loopback, private or link-local address (a feed on your own network links to pages there),
in which case the feed redirect rule applies (no hop from a public address to an internal one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from pipeline.feeds.addresses import Resolver, is_public_address, resolve_host, url_addresses
from pipeline.feeds.fetch import fetch_source
from pipeline.records import FetchResult, FetchState, Source
from pipeline.settings import FetchSettings


@dataclass(frozen=True)
class PageFetch:
    """What became of one article's page; one row of `page_fetches`.

    status: extracted (the article's text is the page's), no_text (fetched, but nothing longer than
    the feed text came out), not_modified (304: the page is as when it gave no text), skipped
    (robots.txt disallows it) or error (error_class / error, as for feeds, plus blocked_address).
    """

    url: str
    article_id: str
    source: str
    fetched_at: datetime
    status: str
    http_status: int | None = None
    bytes: int = 0
    chars: int = 0
    etag: str | None = None
    last_modified: str | None = None
    error_class: str | None = None
    error: str | None = None


def source_is_internal(source_url: str, resolve: Resolver = resolve_host) -> bool:
    """Whether a source is configured on a non-public address (then its pages may be too)."""
    if urlsplit(source_url).scheme.lower() not in ("http", "https"):
        return False
    _, addresses = url_addresses(source_url, resolve)
    return bool(addresses) and not any(is_public_address(a) for a in addresses)


def page_settings(settings: FetchSettings) -> FetchSettings:
    """The feed fetch settings with a page's size cap."""
    return settings.model_copy(update={"max_bytes": settings.fulltext_max_bytes})


def fetch_page(
    url: str,
    state: FetchState,
    settings: FetchSettings,
    *,
    client: httpx.Client,
    internal_source: bool,
    resolve: Resolver = resolve_host,
    now: datetime | None = None,
) -> FetchResult:
    """GET one page (or robots.txt) under the rules above. Never raises; ``settings`` should come
    from page_settings."""
    if urlsplit(url).scheme.lower() not in ("http", "https"):
        return _refused(url, "invalid_url", f"not an http(s) URL: {url!r}", now)
    if not internal_source:
        host, addresses = url_addresses(url, resolve)
        internal = [a for a in addresses if not is_public_address(a)]
        if internal:
            return _refused(
                url,
                "blocked_address",
                f"{host} resolves to {', '.join(internal)}, not a public address; article links from "
                "a public source may only lead to public addresses",
                now,
            )
    return fetch_source(
        Source(name=url, url=url),
        state,
        settings,
        client=client,
        now=now,
        resolve=resolve,
        public_only=not internal_source,
    )


def _refused(url: str, error_class: str, error: str, now: datetime | None) -> FetchResult:
    return FetchResult(
        source=url,
        url=url,
        status="error",
        started_at=now or datetime.now(UTC),
        error_class=error_class,
        error=error,
    )
