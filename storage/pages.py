"""Article pages fetched for their full text (`page_fetches`), and which pages are already done."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb
import pyarrow as pa

from pipeline.feeds.pages import PageFetch
from pipeline.records import Article, FetchState
from storage.convert import to_db_time


def page_states(con: duckdb.DuckDBPyConnection, urls: Sequence[str]) -> dict[str, FetchState]:
    """For each of ``urls`` fetched before: its validators (conditional GET)."""
    if not urls:
        return {}
    rows = con.execute(
        "SELECT url, etag, last_modified FROM page_fetches WHERE list_contains(?, url)",
        [list(dict.fromkeys(urls))],
    ).fetchall()
    return {r[0]: FetchState(etag=r[1], last_modified=r[2]) for r in rows}


def extracted_urls(con: duckdb.DuckDBPyConnection, urls: Sequence[str]) -> set[str]:
    """Those of ``urls`` (links or canonical URLs) whose page text is already stored."""
    if not urls:
        return set()
    wanted = list(dict.fromkeys(urls))
    rows = con.execute(
        """
        SELECT url FROM page_fetches WHERE status = 'extracted' AND list_contains($1, url)
        UNION
        SELECT canonical_url FROM articles WHERE text_source = 'page' AND list_contains($1, canonical_url)
        UNION
        SELECT url FROM articles WHERE text_source = 'page' AND list_contains($1, url)
        """,
        [wanted],
    ).fetchall()
    return {r[0] for r in rows}


# Page outcomes worth asking again about (with the stored validators), once they are old enough:
# a page that gave no text may fill in (a script-built page, a paywall lifted), a transient
# failure may pass. Errors such as 404, too_large or blocked_address are final.
RETRY_ERRORS = ("timeout", "connect_error", "network_error", "http_5xx", "rate_limited", "over_budget")


def retry_urls(con: duckdb.DuckDBPyConnection, urls: Sequence[str], fetched_before: datetime) -> set[str]:
    """Those of ``urls`` whose last fetch gave no text or failed transiently before ``fetched_before``."""
    if not urls:
        return set()
    rows = con.execute(
        """
        SELECT url FROM page_fetches
        WHERE list_contains(?, url) AND fetched_at < ?
          AND (status IN ('no_text', 'not_modified') OR (status = 'error' AND list_contains(?, error_class)))
        """,
        [list(dict.fromkeys(urls)), to_db_time(fetched_before), list(RETRY_ERRORS)],
    ).fetchall()
    return {r[0] for r in rows}


def feed_text_ids(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str]) -> set[str]:
    """Those of ``article_ids`` stored with their feed's text."""
    if not article_ids:
        return set()
    rows = con.execute(
        "SELECT article_id FROM articles WHERE text_source = 'feed' AND list_contains(?, article_id)",
        [list(dict.fromkeys(article_ids))],
    ).fetchall()
    return {r[0] for r in rows}


def upgrade_texts(con: duckdb.DuckDBPyConnection, articles: Sequence[Article]) -> int:
    """Give stored articles with feed text the page text they now have (inside the caller's
    transaction); their embeddings are dropped so the next embed step encodes the new text.
    Returns how many were upgraded. (The fingerprint stays the feed text's.)"""
    pages = [a for a in articles if a.text_source == "page"]
    ids = feed_text_ids(con, [a.article_id for a in pages])
    upgraded = [a for a in pages if a.article_id in ids]
    if not upgraded:
        return 0
    texts = {a.article_id: a.text for a in upgraded}  # one statement for all; the last text wins
    con.execute(
        """
        UPDATE articles SET text = u.text, text_source = 'page'
        FROM (SELECT unnest($1) AS article_id, unnest($2) AS text) AS u
        WHERE articles.article_id = u.article_id
        """,
        [list(texts), list(texts.values())],
    )
    has_embeddings = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'embeddings'"
    ).fetchone()
    if has_embeddings and has_embeddings[0]:
        con.execute("DELETE FROM embeddings WHERE list_contains(?, article_id)", [list(texts)])
    return len(upgraded)


_SCHEMA = pa.schema(
    [
        ("url", pa.string()),
        ("article_id", pa.string()),
        ("source", pa.string()),
        ("fetched_at", pa.timestamp("us")),
        ("status", pa.string()),
        ("http_status", pa.int32()),
        ("bytes", pa.int64()),
        ("chars", pa.int32()),
        ("etag", pa.string()),
        ("last_modified", pa.string()),
        ("error_class", pa.string()),
        ("error", pa.string()),
    ]
)


def record_page_fetches(con: duckdb.DuckDBPyConnection, pages: Sequence[PageFetch]) -> None:
    """Upsert one row per page URL (inside the caller's transaction). A 304 keeps the stored
    validators and status; the last of one URL's rows in a batch wins."""
    latest = {p.url: p for p in pages}
    if not latest:
        return
    table = pa.Table.from_pylist(
        [
            {
                "url": p.url,
                "article_id": p.article_id,
                "source": p.source,
                "fetched_at": to_db_time(p.fetched_at),
                "status": p.status,
                "http_status": p.http_status,
                "bytes": p.bytes,
                "chars": p.chars,
                "etag": p.etag,
                "last_modified": p.last_modified,
                "error_class": p.error_class,
                "error": p.error,
            }
            for p in latest.values()
        ],
        schema=_SCHEMA,
    )
    con.register("page_batch", table)
    try:
        con.execute(
            """
            INSERT INTO page_fetches BY NAME SELECT * FROM page_batch
            ON CONFLICT (url) DO UPDATE SET
                article_id = excluded.article_id, source = excluded.source,
                fetched_at = excluded.fetched_at, http_status = excluded.http_status,
                bytes = excluded.bytes, error_class = excluded.error_class, error = excluded.error,
                status = CASE WHEN excluded.status = 'not_modified' THEN page_fetches.status
                              ELSE excluded.status END,
                chars = CASE WHEN excluded.status = 'not_modified' THEN page_fetches.chars
                             ELSE excluded.chars END,
                etag = coalesce(excluded.etag, page_fetches.etag),
                last_modified = coalesce(excluded.last_modified, page_fetches.last_modified)
            """
        ).fetchall()
    finally:
        con.unregister("page_batch")
