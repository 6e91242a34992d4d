"""Articles: idempotent inserts and the queries the later steps need."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from pipeline.records import Article
from storage.convert import from_db_time, to_db_time
from storage.db import scalar

_ARTICLE_SCHEMA = pa.schema(
    [
        ("article_id", pa.string()),
        ("source", pa.string()),
        ("external_id", pa.string()),
        ("guid", pa.string()),
        ("url", pa.string()),
        ("canonical_url", pa.string()),
        ("title", pa.string()),
        ("text", pa.string()),
        ("published_at", pa.timestamp("us")),
        ("fetched_at", pa.timestamp("us")),
        ("effective_at", pa.timestamp("us")),
        ("language", pa.string()),
        ("content_hash", pa.string()),
        ("fingerprint", pa.uint64()),
        ("duplicate_of", pa.string()),
        ("run_id", pa.int64()),
        ("via_feed", pa.string()),
        ("text_source", pa.string()),
    ]
)


def _already_stored(con: duckdb.DuckDBPyConnection, articles: Sequence[Article]) -> set[str]:
    """Ids of batch articles that are the same article as one already stored.

    Same article = same id, or same canonical URL (two feeds listing one page
    under different GUIDs), or same text from the same source (a re-post).
    """
    batch = pa.table(
        {
            "article_id": [a.article_id for a in articles],
            "canonical_url": [a.canonical_url for a in articles],
            "source": [a.source for a in articles],
            "content_hash": [a.content_hash for a in articles],
        }
    )
    con.register("incoming_batch", batch)
    try:
        rows = con.execute(
            """
            SELECT b.article_id FROM incoming_batch b
            WHERE EXISTS (SELECT 1 FROM articles a WHERE a.article_id = b.article_id)
               OR (b.canonical_url IS NOT NULL
                   AND EXISTS (SELECT 1 FROM articles a WHERE a.canonical_url = b.canonical_url))
               OR EXISTS (SELECT 1 FROM articles a
                          WHERE a.source = b.source AND a.content_hash = b.content_hash)
            """
        ).fetchall()
    finally:
        con.unregister("incoming_batch")
    return {r[0] for r in rows}


class StoredCheck:
    """Tells new articles from stored ones, batch after batch, for a writer that holds the database
    through a whole phase (``flows.shared.ArticleWriter``): one query for everything arriving, then
    what earlier batches let through counts as stored. A query per batch would scan the articles
    table each time (canonical_url and content_hash have no index), which made the write phase of
    a 10,000-feed ingest quadratic (bench/fetch_scale.py). Nothing else may insert articles
    meanwhile: the writer's connection holds the file's lock."""

    def __init__(self, con: duckdb.DuckDBPyConnection, arriving: Sequence[Article]) -> None:
        self.con = con
        self.checked = {a.article_id for a in arriving}
        self.stored = _already_stored(con, arriving) if arriving else set()
        self.ids: set[str] = set()
        self.urls: set[str] = set()
        self.hashes: set[tuple[str, str]] = set()

    def new(self, articles: Sequence[Article]) -> list[Article]:
        """The articles not stored yet, first of each duplicate group kept; from now on they count
        as stored (the caller inserts them)."""
        unchecked = [a for a in articles if a.article_id not in self.checked]
        stored = _already_stored(self.con, unchecked) if unchecked else set()
        fresh = []
        for a in articles:
            key_hash = (a.source, a.content_hash)
            if (
                a.article_id in self.stored
                or a.article_id in stored
                or a.article_id in self.ids
                or (a.canonical_url and a.canonical_url in self.urls)
                or key_hash in self.hashes
            ):
                continue
            self.ids.add(a.article_id)
            if a.canonical_url:
                self.urls.add(a.canonical_url)
            self.hashes.add(key_hash)
            fresh.append(a)
        return fresh


def new_articles(con: duckdb.DuckDBPyConnection, articles: Sequence[Article]) -> list[Article]:
    """The articles of a batch that are not stored yet, first of each duplicate group kept."""
    if not articles:
        return []
    return StoredCheck(con, articles).new(articles)


def insert_articles(
    con: duckdb.DuckDBPyConnection,
    articles: Sequence[Article],
    *,
    run_id: int | None,
    fingerprints: Mapping[str, int] | None = None,
    checked: bool = False,
) -> list[str]:
    """Insert articles not stored yet; returns the ids actually inserted.

    Idempotent: inserting the same batch twice inserts nothing the second time. ``checked``: the
    caller already dropped what is stored (a ``StoredCheck``), so the batch goes in as it is.
    """
    fresh = list(articles) if checked else new_articles(con, articles)
    if not fresh:
        return []
    fps = fingerprints or {}
    table = pa.Table.from_pylist(
        [
            {
                "article_id": a.article_id,
                "source": a.source,
                "external_id": a.external_id,
                "guid": a.guid,
                "url": a.url,
                "canonical_url": a.canonical_url,
                "title": a.title,
                "text": a.text,
                "published_at": to_db_time(a.published_at),
                "fetched_at": to_db_time(a.fetched_at),
                "effective_at": to_db_time(a.published_at or a.fetched_at),
                "language": a.language,
                "content_hash": a.content_hash,
                "fingerprint": fps.get(a.article_id),
                "duplicate_of": a.duplicate_of,
                "run_id": run_id,
                "via_feed": a.via_feed,
                "text_source": a.text_source,
            }
            for a in fresh
        ],
        schema=_ARTICLE_SCHEMA,
    )
    con.register("articles_batch", table)
    try:
        con.execute("INSERT INTO articles BY NAME SELECT * FROM articles_batch").fetchall()
    finally:
        con.unregister("articles_batch")
    return [a.article_id for a in fresh]


@dataclass(frozen=True)
class StoredFingerprint:
    article_id: str
    source: str
    fingerprint: int
    effective_at: datetime


def recent_fingerprints(con: duckdb.DuckDBPyConnection, since: datetime) -> list[StoredFingerprint]:
    """Originals to compare new articles against for syndication detection."""
    rows = con.execute(
        """
        SELECT article_id, source, fingerprint, effective_at FROM articles
        WHERE fingerprint IS NOT NULL AND duplicate_of IS NULL AND effective_at >= ?
        ORDER BY effective_at, article_id
        """,
        [to_db_time(since)],
    ).fetchall()
    return [StoredFingerprint(r[0], r[1], int(r[2]), from_db_time(r[3]) or since) for r in rows]


def count_articles(con: duckdb.DuckDBPyConnection) -> int:
    return int(scalar(con, "SELECT count(*) FROM articles"))


def timed_between(con: duckdb.DuckDBPyConnection, after: datetime, until: datetime) -> int:
    """Articles whose time lies in (after, until]."""
    return int(
        scalar(
            con,
            "SELECT count(*) FROM articles WHERE effective_at > ? AND effective_at <= ?",
            [to_db_time(after), to_db_time(until)],
        )
    )


def latest_published_at(con: duckdb.DuckDBPyConnection, not_after: datetime) -> datetime | None:
    """Newest publication date (as the feed or archive gave it) not after a moment."""
    return from_db_time(
        scalar(con, "SELECT max(published_at) FROM articles WHERE published_at <= ?", [to_db_time(not_after)])
    )


def article_time_range(con: duckdb.DuckDBPyConnection) -> tuple[datetime | None, datetime | None]:
    """Earliest and latest effective time of any stored article (the span a replay covers)."""
    rows = con.execute("SELECT min(effective_at), max(effective_at) FROM articles").fetchall()
    return from_db_time(rows[0][0]), from_db_time(rows[0][1])


def oldest_arrived_after(con: duckdb.DuckDBPyConnection, run_id: int | None) -> datetime | None:
    """Earliest effective time of the articles stored by runs after ``run_id`` (all if None)."""
    return from_db_time(
        scalar(
            con, "SELECT min(effective_at) FROM articles WHERE run_id > ?", [-1 if run_id is None else run_id]
        )
    )
