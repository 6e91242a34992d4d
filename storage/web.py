"""What the web app, the Atom feeds and `storyline search` read. Every value from a request is a
bound parameter; nothing here builds SQL from its arguments.

The functions work on the live file (a read-only connection) and on the web app's in-memory
copy of it (``storage.snapshot``) alike: the copy has the same tables and views.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import numpy as np

from storage.convert import OLDEST, from_db_time
from storage.embeddings import embedding_dim, story_centroids

# Article text is cut to its lead: what pages show (and all of it the web app's copy keeps).
LEAD_CHARS = 400


@dataclass(frozen=True)
class StoryRow:
    story_id: str
    status: str
    headline: str | None
    keywords: list[str]
    first_seen: datetime
    last_seen: datetime
    article_count: int
    merged_into: str | None
    parent_id: str | None
    # When the story last gained an article (its latest membership), what moves a feed entry.
    updated: datetime


@dataclass(frozen=True)
class ArticleRow:
    article_id: str
    story_id: str
    source: str
    title: str
    url: str | None
    published_at: datetime
    is_duplicate: bool
    lead: str


_STORY_COLUMNS = """
    s.story_id, s.status, s.headline, s.keywords, s.first_seen, s.last_seen, s.article_count,
    s.merged_into, s.parent_id,
    coalesce((SELECT max(sa.assigned_at) FROM story_articles sa WHERE sa.story_id = s.story_id),
             s.updated_at) AS updated
"""


def _story(r: tuple[Any, ...]) -> StoryRow:
    return StoryRow(
        story_id=r[0], status=r[1], headline=r[2], keywords=list(r[3] or []),
        first_seen=from_db_time(r[4]) or OLDEST, last_seen=from_db_time(r[5]) or OLDEST,
        article_count=int(r[6] or 0), merged_into=r[7], parent_id=r[8], updated=from_db_time(r[9]) or OLDEST,
    )  # fmt: skip


def story_row(con: duckdb.DuckDBPyConnection, story_id: str) -> StoryRow | None:
    rows = con.execute(f"SELECT {_STORY_COLUMNS} FROM stories s WHERE s.story_id = ?", [story_id]).fetchall()
    return _story(rows[0]) if rows else None


def story_rows(con: duckdb.DuckDBPyConnection, story_ids: Sequence[str]) -> dict[str, StoryRow]:
    if not story_ids:
        return {}
    rows = con.execute(
        f"SELECT {_STORY_COLUMNS} FROM stories s WHERE list_contains(?, s.story_id)", [list(story_ids)]
    ).fetchall()
    return {r[0]: _story(r) for r in rows}


def recently_updated(
    con: duckdb.DuckDBPyConnection, *, limit: int, story_ids: Sequence[str] | None = None
) -> list[StoryRow]:
    """Live stories with a headline, most recently grown first (ties by id): a feed's entries."""
    rows = con.execute(
        f"""
        SELECT * FROM (SELECT {_STORY_COLUMNS} FROM stories s
                       WHERE s.status = 'live' AND s.article_count > 0
                         AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], s.story_id)))
        ORDER BY updated DESC, story_id LIMIT ?
        """,
        [story_ids and list(story_ids), story_ids and list(story_ids), limit],
    ).fetchall()
    return [_story(r) for r in rows]


def articles_of(con: duckdb.DuckDBPyConnection, story_ids: Sequence[str]) -> dict[str, list[ArticleRow]]:
    """Every member article of the given stories, oldest first, by story."""
    if not story_ids:
        return {}
    rows = con.execute(
        """
        SELECT a.article_id, sa.story_id, a.source, a.title, coalesce(a.url, a.canonical_url),
               a.effective_at, a.duplicate_of IS NOT NULL, left(a.text, ?)
        FROM story_articles sa JOIN articles a USING (article_id)
        WHERE list_contains(?, sa.story_id)
        ORDER BY sa.story_id, a.effective_at, a.article_id
        """,
        [LEAD_CHARS, list(story_ids)],
    ).fetchall()
    out: dict[str, list[ArticleRow]] = {sid: [] for sid in story_ids}
    for r in rows:
        out[r[1]].append(
            ArticleRow(r[0], r[1], r[2], r[3], r[4], from_db_time(r[5]) or OLDEST, bool(r[6]), r[7] or "")
        )
    return out


@dataclass(frozen=True)
class Lineage:
    # Stories retired into this one (merges), the story it split from, stories split off it.
    merged_from: list[tuple[str, str | None]]
    split_from: tuple[str, str | None] | None
    split_off: list[tuple[str, str | None]]


def lineage_of(con: duckdb.DuckDBPyConnection, story_id: str) -> Lineage:
    rows = con.execute(
        """
        SELECT l.kind, l.story_id, l.other_id, s.headline, o.headline
        FROM story_lineage l
        LEFT JOIN stories s ON s.story_id = l.story_id
        LEFT JOIN stories o ON o.story_id = l.other_id
        WHERE l.story_id = ? OR l.other_id = ?
        ORDER BY l.changed_at, l.story_id
        """,
        [story_id, story_id],
    ).fetchall()
    merged_from = [(r[1], r[3]) for r in rows if r[0] == "merge" and r[2] == story_id]
    split_from = next(((r[2], r[4]) for r in rows if r[0] == "split" and r[1] == story_id), None)
    split_off = [(r[1], r[3]) for r in rows if r[0] == "split" and r[2] == story_id]
    return Lineage(merged_from, split_from, split_off)


def sources_with_history(con: duckdb.DuckDBPyConnection, per_source: int) -> list[dict[str, Any]]:
    """Every source's health, with its latest ``per_source`` fetch attempts (newest first)."""
    cur = con.execute("SELECT * FROM source_health ORDER BY health <> 'ok' DESC, name")
    columns = [d[0] for d in cur.description or []]
    sources = [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]
    rows = con.execute(
        """
        SELECT source, started_at, status, http_status, entries, new_articles, error_class, error, duration_ms
        FROM (SELECT *, row_number() OVER (PARTITION BY source ORDER BY started_at DESC, fetch_id DESC) AS n
              FROM fetches)
        WHERE n <= ? ORDER BY source, started_at DESC
        """,
        [per_source],
    ).fetchall()
    history: dict[str, list[dict[str, Any]]] = {}
    names = ["started_at", "status", "http_status", "entries", "new_articles", "error_class", "error",
             "duration_ms"]  # fmt: skip
    for r in rows:
        history.setdefault(r[0], []).append(dict(zip(names, r[1:], strict=True)))
    for s in sources:
        s["fetches"] = history.get(s["name"], [])
    return sources


LabelRow = tuple[str, str | None, list[str], datetime, datetime]


def live_labels(con: duckdb.DuckDBPyConnection) -> list[LabelRow]:
    """(story id, headline, keywords, first seen, last seen) of every live story, for search."""
    rows = con.execute(
        "SELECT story_id, headline, keywords, first_seen, last_seen FROM stories WHERE status = 'live'"
    ).fetchall()
    return [(r[0], r[1], list(r[2] or []), from_db_time(r[3]) or OLDEST, from_db_time(r[4]) or OLDEST)
            for r in rows]  # fmt: skip


def news_days(con: duckdb.DuckDBPyConnection) -> tuple[datetime | None, datetime | None]:
    """The first and last article times (UTC): the range the date picker offers."""
    rows = con.execute("SELECT min(effective_at), max(effective_at) FROM articles").fetchall()
    return from_db_time(rows[0][0]), from_db_time(rows[0][1])


Signature = tuple[int, datetime | None]


def membership_signatures(con: duckdb.DuckDBPyConnection) -> dict[str, Signature]:
    """Live story -> (members, latest assignment): a centroid is still right while this is unchanged."""
    rows = con.execute(
        """
        SELECT sa.story_id, count(*), max(sa.assigned_at) FROM story_articles sa
        JOIN stories s ON s.story_id = sa.story_id AND s.status = 'live' GROUP BY sa.story_id
        """
    ).fetchall()
    return {r[0]: (int(r[1]), r[2]) for r in rows}


def centroid_matrix(
    ids: Sequence[str], centres: dict[str, np.ndarray], dim: int
) -> tuple[list[str], np.ndarray]:
    """The ids that have a centroid (in the given order) and their centroids, one row each."""
    kept = [s for s in ids if s in centres]
    return kept, np.stack([centres[s] for s in kept]) if kept else np.zeros((0, dim), np.float32)


def live_centroids(con: duckdb.DuckDBPyConnection, model: str) -> tuple[list[str], np.ndarray]:
    """Every live story's unit centroid, in story id order."""
    ids = sorted(membership_signatures(con))
    return centroid_matrix(ids, story_centroids(con, model, ids), embedding_dim(con) or 0)


def latest_story_article(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The time of the newest article that belongs to a story: the front page's default day."""
    rows = con.execute(
        "SELECT max(a.effective_at) FROM story_articles sa JOIN articles a USING (article_id)"
    ).fetchall()
    return from_db_time(rows[0][0])
