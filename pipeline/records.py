"""Plain data passed between pipeline steps, storage and flows.

Every time here is timezone-aware UTC. Nothing in this module knows about
Prefect or DuckDB: flows fill these from storage and hand them to pipeline
functions, which return new ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Source:
    """One feed from the sources file."""

    name: str
    url: str
    language: str | None = None
    # A folder of the sources file or an OPML export ("News", "News/World"); filters the digest.
    category: str | None = None
    # A feed that lists many publishers' items (Google News): each item counts for its publisher.
    aggregator: bool = False
    # Fetch each entry's linked page for its full text: True always, False never, None as
    # fetch.fulltext says.
    fulltext: bool | None = None


@dataclass(frozen=True)
class FetchState:
    """What we remember about a source between fetches (for conditional GET)."""

    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None


@dataclass
class FetchResult:
    """Outcome of one fetch attempt; never raised, always recorded.

    status is one of:
      ok            new body to parse
      not_modified  HTTP 304 (conditional GET hit)
      unchanged     200 (or a local file) whose body hash equals the last one
      error         see error_class / error
    """

    source: str
    url: str
    status: str
    started_at: datetime
    duration_ms: int = 0
    http_status: int | None = None
    body: bytes | None = None
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    bytes_read: int = 0
    final_url: str | None = None
    permanent_redirect: bool = False
    error_class: str | None = None
    error: str | None = None
    # Caching / politeness hints from the response, raw header values.
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == "error"


@dataclass(frozen=True)
class FeedEntry:
    """One item of a parsed feed, before cleaning. Strings may hold HTML."""

    guid: str | None
    link: str | None
    title: str | None
    summary: str | None
    content: str | None
    published_at: datetime | None
    author: str | None = None
    # The item's real publisher, as an aggregator names it (RSS <source url="...">Name</source>).
    publisher: str | None = None


@dataclass
class ParsedFeed:
    """Result of parsing feed bytes. A feed that yields nothing has an error."""

    entries: list[FeedEntry]
    title: str | None = None
    version: str | None = None
    ttl_minutes: int | None = None
    # Set when the document was not well-formed but entries were salvaged.
    warning: str | None = None
    # Set when nothing usable came out (HTML page, empty body, garbage).
    error_class: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Article:
    """A cleaned article, ready to store. article_id is stable across fetches."""

    article_id: str
    source: str
    title: str
    text: str
    url: str | None
    canonical_url: str | None
    published_at: datetime | None
    fetched_at: datetime
    guid: str | None = None
    external_id: str | None = None
    language: str | None = None
    content_hash: str = ""
    # Set when this article is a syndicated/near-identical copy of an older one.
    duplicate_of: str | None = None
    # The configured source (sources.name) it was fetched through; differs from ``source`` when an
    # aggregator's item counts for its publisher. None for imported articles.
    via_feed: str | None = None
    # Where the text came from: "feed" (the entry itself) or "page" (extracted from the linked page).
    text_source: str = "feed"
