"""What a daily digest reads: the day's stories with their articles, and the day's fetch figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from storage.convert import from_db_time, to_db_time

SUMMARY_CHARS = 400


@dataclass
class DigestRow:
    story_id: str
    headline: str | None
    keywords: list[str]
    first_seen: datetime
    article_id: str
    title: str
    source: str
    url: str | None
    effective_at: datetime
    is_duplicate: bool
    summary: str
    language: str | None = None
    # The category of the configured source the article came through (None: none, or imported).
    category: str | None = None


def stories_of_day(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> list[DigestRow]:
    """Every article up to ``end`` of the live stories that have an article in [start, end)."""
    rows = con.sql(
        f"""
        WITH day_stories AS (
            SELECT DISTINCT sa.story_id FROM story_articles sa JOIN articles a USING (article_id)
            WHERE a.effective_at >= ? AND a.effective_at < ?
        )
        SELECT s.story_id, s.headline, s.keywords, s.first_seen, a.article_id, a.title, a.source,
               coalesce(a.url, a.canonical_url), a.effective_at, a.duplicate_of IS NOT NULL,
               left(a.text, {SUMMARY_CHARS}), a.language, src.category
        FROM day_stories d
        JOIN stories s ON s.story_id = d.story_id AND s.status = 'live'
        JOIN story_articles sa ON sa.story_id = s.story_id
        JOIN articles a ON a.article_id = sa.article_id
        -- The feed it came through: an aggregator's item has its publisher as source.
        LEFT JOIN sources src ON src.name = coalesce(a.via_feed, a.source)
        WHERE a.effective_at < ?
        ORDER BY s.story_id, a.effective_at, a.article_id
        """,
        params=[to_db_time(start), to_db_time(end), to_db_time(end)],
    ).fetchall()
    return [
        DigestRow(
            story_id=r[0],
            headline=r[1],
            keywords=list(r[2] or []),
            first_seen=from_db_time(r[3]) or start,
            article_id=r[4],
            title=r[5],
            source=r[6],
            url=r[7],
            effective_at=from_db_time(r[8]) or start,
            is_duplicate=bool(r[9]),
            summary=r[10] or "",
            language=r[11],
            category=r[12],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class DayFigures:
    sources_total: int
    sources_ok: int
    sources_failed: int
    articles_in: int


def day_figures(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> DayFigures:
    """Sources fetched on the day (ok = at least one successful attempt) and articles that came in."""
    window = [to_db_time(start), to_db_time(end)]
    rows = con.execute(
        """
        WITH per_source AS (
            SELECT source, bool_or(status <> 'error') AS any_ok FROM fetches
            WHERE started_at >= ? AND started_at < ? GROUP BY source
        )
        SELECT (SELECT count(*) FROM sources WHERE enabled OR last_attempt_at IS NOT NULL),
               count(*) FILTER (WHERE any_ok), count(*) FILTER (WHERE NOT any_ok),
               (SELECT count(*) FROM articles WHERE effective_at >= ? AND effective_at < ?)
        FROM per_source
        """,
        window + window,
    ).fetchall()
    total, ok, failed, articles = rows[0]
    return DayFigures(int(total), int(ok or 0), int(failed or 0), int(articles))


def latest_day_start(con: duckdb.DuckDBPyConnection, not_after: datetime) -> datetime | None:
    rows = con.execute(
        "SELECT max(effective_at) FROM articles WHERE effective_at <= ?", [to_db_time(not_after)]
    ).fetchall()
    return from_db_time(rows[0][0]) if rows else None
