"""Story briefs: what building them reads (member articles) and the story_briefs table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.briefs.records import Brief, BriefArticle, BriefSentence
from pipeline.briefs.sentences import LEAD_CHARS
from storage.batch import registered, strings
from storage.convert import OLDEST, from_db_time, to_db_time

METHOD = "extractive-v1"

_SENTENCE = pa.struct(
    [
        ("text", pa.string()),
        ("article_id", pa.string()),
        ("source", pa.string()),
        ("published_at", pa.timestamp("us")),
    ]
)


def brief_articles(
    con: duckdb.DuckDBPyConnection, story_ids: Sequence[str], *, before: datetime | None = None
) -> dict[str, list[BriefArticle]]:
    """Every member article of the given stories (timed before ``before``, if given), by story."""
    if not story_ids:
        return {}
    with registered(con, "briefed", {"story_id": strings(story_ids)}):
        table = con.sql(
            f"""
            SELECT sa.story_id, a.article_id, a.source, a.title, left(a.text, {LEAD_CHARS}) AS lead,
                   a.effective_at, a.duplicate_of IS NOT NULL AS is_duplicate
            FROM story_articles sa
            SEMI JOIN briefed b ON b.story_id = sa.story_id
            JOIN articles a USING (article_id)
            WHERE ?::TIMESTAMP IS NULL OR a.effective_at < ?::TIMESTAMP
            ORDER BY sa.story_id, a.effective_at, a.article_id
            """,
            params=[to_db_time(before), to_db_time(before)],
        ).to_arrow_table()
    out: dict[str, list[BriefArticle]] = {}
    columns = [
        table[name].to_pylist()
        for name in ("story_id", "article_id", "source", "title", "lead", "effective_at", "is_duplicate")
    ]
    for sid, aid, source, title, text, at, dup in zip(*columns, strict=True):
        out.setdefault(sid, []).append(
            BriefArticle(aid, source, title, text or "", from_db_time(at) or OLDEST, bool(dup))
        )
    return out


def live_without_brief(con: duckdb.DuckDBPyConnection, seen_since: datetime) -> list[str]:
    """Live stories seen since a time that have no brief yet (a database from before briefs)."""
    rows = con.execute(
        """
        SELECT s.story_id FROM stories s LEFT JOIN story_briefs b USING (story_id)
        WHERE s.status = 'live' AND s.last_seen >= ? AND b.story_id IS NULL ORDER BY s.story_id
        """,
        [to_db_time(seen_since)],
    ).fetchall()
    return [r[0] for r in rows]


def _sentences(items: Sequence[BriefSentence]) -> list[dict[str, Any]]:
    return [
        {"text": s.text, "article_id": s.article_id, "source": s.source,
         "published_at": to_db_time(s.published_at)}
        for s in items
    ]  # fmt: skip


def save_briefs(con: duckdb.DuckDBPyConnection, briefs: Sequence[Brief], now: datetime) -> None:
    """Insert or replace the briefs (one statement from an Arrow batch), inside the caller's transaction."""
    if not briefs:
        return
    batch = pa.table(
        {
            "story_id": pa.array([b.story_id for b in briefs], pa.string()),
            "sentences": pa.array([_sentences(b.sentences) for b in briefs], pa.list_(_SENTENCE)),
            "new_day": pa.array([b.new_day for b in briefs], pa.date32()),
            "new_sentences": pa.array([_sentences(b.new_sentences) for b in briefs], pa.list_(_SENTENCE)),
            "article_count": pa.array([b.article_count for b in briefs], pa.int32()),
        }
    )
    con.register("brief_batch", batch)
    try:
        con.execute(
            """
            INSERT INTO story_briefs
            SELECT story_id, sentences, new_day, new_sentences, article_count, ?, ? FROM brief_batch
            ON CONFLICT (story_id) DO UPDATE SET sentences = excluded.sentences,
                new_day = excluded.new_day, new_sentences = excluded.new_sentences,
                article_count = excluded.article_count, method = excluded.method,
                updated_at = excluded.updated_at
            """,
            [METHOD, to_db_time(now)],
        ).fetchall()
    finally:
        con.unregister("brief_batch")


def _from_rows(items: list[dict[str, Any]] | None) -> list[BriefSentence]:
    return [
        BriefSentence(s["text"], s["article_id"], s["source"], from_db_time(s["published_at"]) or OLDEST)
        for s in items or []
    ]


def has_briefs(con: duckdb.DuckDBPyConnection) -> bool:
    """False on a database that no read-write open has migrated to briefs yet (read-only opens
    never migrate)."""
    rows = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'story_briefs'").fetchall()
    return bool(rows[0][0])


def load_briefs(con: duckdb.DuckDBPyConnection, story_ids: Sequence[str]) -> dict[str, Brief]:
    """Stored briefs of the given stories, by story id (stories without one are absent)."""
    if not story_ids or not has_briefs(con):
        return {}
    with registered(con, "wanted_briefs", {"story_id": strings(story_ids)}):
        rows = con.execute(
            """
            SELECT b.story_id, b.sentences, b.new_day, b.new_sentences, b.article_count
            FROM story_briefs b SEMI JOIN wanted_briefs w ON w.story_id = b.story_id
            """
        ).fetchall()
    return {
        r[0]: Brief(story_id=r[0], sentences=_from_rows(r[1]), new_day=r[2], new_sentences=_from_rows(r[3]),
                    article_count=int(r[4]))
        for r in rows
    }  # fmt: skip
