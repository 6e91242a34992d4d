"""Builders shared by the test files: feed documents, sources files and import archives, articles,
read-only queries on a DuckDB file, fetch settings for a local server, and report texts to cluster.

A builder used by one file only stays in that file; this module holds what two or more files need.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np

from pipeline.records import Article

if TYPE_CHECKING:
    from pipeline.settings import Settings

# The fixed clock of these builders: Friday 20 November 2026, the week the bundled samples cover.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FEED_DATE = "Fri, 20 Nov 2026 10:00:00 GMT"

# Reports of two events, three outlets each, as "Headline. Body".
FLOOD_REPORTS = [
    "Floods force thousands from their homes in Valencia. Torrential rain overnight sent rivers over their "
    "banks across the Valencia region, and emergency services evacuated more than 3,000 residents.",
    "Valencia flooding: 3,000 evacuated as rivers burst banks. Spanish emergency crews moved thousands of "
    "people out of low-lying districts around Valencia after a night of torrential rain.",
    "Heavy rain floods eastern Spain, thousands evacuated. Authorities in Valencia said about 3,000 people "
    "had left their homes after overnight downpours made the Turia and Jucar rivers overflow.",
]
RATE_RISE_REPORTS = [
    "Bank of Canada raises interest rate to 5%. The Bank of Canada lifted its benchmark rate by a quarter "
    "point on Wednesday, saying inflation remains too high.",
    "Canada's central bank hikes rates again. Governor Tiff Macklem said the quarter-point increase to 5 per "
    "cent was needed because price growth has proved stubborn.",
    "Bank of Canada increases key rate by 25 basis points. Markets had expected the move after strong jobs "
    "data, and the Bank of Canada signalled that further hikes are possible.",
]


# Feeds


def rss_item(
    guid: str | None,
    title: str | None,
    text: str,
    *,
    date: str | None = FEED_DATE,
    link: str | None = None,
) -> str:
    """An RSS <item>: an opaque GUID (isPermaLink="false"), title, link and pubDate where given."""
    parts = []
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{guid}</guid>')
    if title is not None:
        parts.append(f"<title>{title}</title>")
    if link is not None:
        parts.append(f"<link>{link}</link>")
    if date is not None:
        parts.append(f"<pubDate>{date}</pubDate>")
    parts.append(f"<description>{text}</description>")
    return "<item>" + "".join(parts) + "</item>"


def rss(
    *items: str,
    title: str = "T",
    link: str | None = "https://example.org/",
    encoding: str = "utf-8",
    doctype: str = "",
) -> str:
    """An RSS 2.0 document around `items`, declaring `encoding` (the caller encodes the text)."""
    channel_link = f"<link>{link}</link>" if link is not None else ""
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>{doctype}<rss version="2.0"><channel>'
        f"<title>{title}</title>{channel_link}{''.join(items)}</channel></rss>"
    )


def external_entity_doctype(system_url: str) -> str:
    """A DOCTYPE declaring the entity &x; as the contents of `system_url` (which must never be read)."""
    return f'<!DOCTYPE r [<!ENTITY x SYSTEM "{system_url}">]>'


# Files the command line reads


def write_sources(path: Path, urls: Mapping[str, str]) -> Path:
    """A sources.toml with one [[sources]] entry per name -> URL, in order."""
    entries = (
        f"[[sources]]\nname = {json.dumps(name)}\nurl = {json.dumps(url)}\n\n" for name, url in urls.items()
    )
    path.write_text("".join(entries), encoding="utf-8")
    return path


def archive_record(
    ident: str | int,
    title: str,
    text: str,
    *,
    source: str,
    published_at: datetime | str,
    url: str | None = None,
    **extra: object,
) -> dict[str, object]:
    """One record of a JSONL archive for `storyline import`/`backfill`; the URL defaults to one on the
    source's own site."""
    when = published_at.isoformat() if isinstance(published_at, datetime) else published_at
    return {
        "id": ident,
        "source": source,
        "url": url or f"https://{source.lower()}.example/{ident}",
        "published_at": when,
        "title": title,
        "text": text,
        **extra,
    }


def write_archive(path: Path, lines: Iterable[object]) -> Path:
    """A JSONL archive: each line a string as given (to write broken lines) or a value as JSON."""
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path


# Articles


def article(
    article_id: str,
    text: str = "",
    *,
    title: str = "Headline",
    source: str = "Wire",
    at: datetime = NOW,
    url: str | None = None,
    canonical_url: str | None = None,
    content_hash: str = "",
) -> Article:
    """An article as the pipeline stores it, published and fetched at `at`."""
    return Article(
        article_id=article_id,
        source=source,
        title=title,
        text=text,
        url=url,
        canonical_url=canonical_url,
        published_at=at,
        fetched_at=at,
        content_hash=content_hash,
    )


# Reading a database the way an analyst does: read-only, one short connection per query


def query(db: Path, sql: str, params: list[Any] | None = None) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def query_dicts(db: Path, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """Rows as column name -> value."""
    with duckdb.connect(str(db), read_only=True) as con:
        cur = con.execute(sql, params or [])
        columns = [d[0] for d in cur.description]
        return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def count_rows(db: Path, table: str) -> int:
    return query(db, f"SELECT count(*) FROM {table}")[0][0]


def source_health(db: Path) -> dict[str, dict[str, Any]]:
    """The source_health view, by source name."""
    return {row["name"]: row for row in query_dicts(db, "SELECT * FROM source_health")}


def last_fetches(db: Path) -> dict[str, dict[str, Any]]:
    """The latest row of the fetches table for each source, by source name."""
    return {row["source"]: row for row in query_dicts(db, "SELECT * FROM fetches ORDER BY fetch_id")}


def process_holding(db: Path, *, read_only: bool, seconds: float) -> subprocess.Popen[str]:
    """Another process that opens `db` and keeps it open (and locked) for `seconds`; it holds the file
    by the time this returns."""
    code = textwrap.dedent(
        f"""
        import duckdb, time
        con = duckdb.connect({str(db)!r}, read_only={read_only})
        print("holding", flush=True)
        time.sleep({seconds})
        con.close()
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
    return proc


# Settings


def quick_fetch(settings: Settings, **changes: object) -> Settings:
    """`settings` fetching from a local test server: a one-second read timeout and one retry after
    50 ms, plus any other fetch settings in `changes`."""
    for name, value in ({"read_timeout_s": 1.0, "retries": 1, "retry_delay_s": 0.05} | changes).items():
        setattr(settings.fetch, name, value)
    return settings


STORY_T0 = 1_717_200_000.0


def story_vectors(
    n_stories: int, seed: int, dim: int = 48
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Stories of 1-40 articles around their own centres, with their own words, over four days."""
    rng = np.random.default_rng(seed)
    sizes = np.minimum(rng.zipf(1.8, size=n_stories), 40)
    truth = np.repeat(np.arange(n_stories), sizes)
    centres = rng.normal(size=(n_stories, dim))
    vecs = centres[truth] + rng.normal(scale=0.5, size=(len(truth), dim))
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    vocab = [f"w{k}" for k in range(5000)]
    texts = [
        " ".join(vocab[(s * 7 + int(w)) % 5000] for w in rng.integers(0, 12, size=30)) + " Report."
        for s in truth
    ]
    times = (
        STORY_T0
        + rng.uniform(0, 4 * 86400.0, size=n_stories)[truth]
        + rng.exponential(3600.0, size=len(truth))
    )
    return vecs, texts, times, truth
