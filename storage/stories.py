"""Stories: what a cluster run reads (window, live stories), and lookups of stories by id.

The writes of a run are in ``storage.story_updates`` (re-exported here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import numpy as np

from storage.batch import registered, strings
from storage.convert import OLDEST, from_db_time, to_db_time
from storage.embeddings import embedding_dim, vectors_to_numpy
from storage.story_updates import ConcurrentUpdate, apply_story_update, refresh_story_stats

# The writes of a cluster run, importable from here as they always were.
__all__ = ["ConcurrentUpdate", "apply_story_update", "refresh_story_stats"]


@dataclass
class WindowData:
    """Articles of one cluster run that have an embedding, in (time, id) order."""

    article_ids: list[str]
    sources: list[str]
    titles: list[str]
    texts: list[str]
    times: list[datetime]
    story_ids: list[str | None]
    is_duplicate: list[bool]
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.article_ids)

    def plus(self, other: WindowData) -> WindowData:
        """Both sets of articles (each once), in (time, id) order."""
        if len(other) == 0:
            return self
        if len(self) == 0:
            return other
        seen = set(self.article_ids)
        extra = [i for i, a in enumerate(other.article_ids) if a not in seen]
        times = self.times + [other.times[i] for i in extra]
        ids = self.article_ids + [other.article_ids[i] for i in extra]
        order = sorted(range(len(ids)), key=lambda k: (times[k], ids[k]))

        def pick(mine: list[Any], theirs: list[Any]) -> list[Any]:
            both = mine + [theirs[i] for i in extra]
            return [both[k] for k in order]

        return WindowData(
            article_ids=[ids[k] for k in order],
            sources=pick(self.sources, other.sources),
            titles=pick(self.titles, other.titles),
            texts=pick(self.texts, other.texts),
            times=[times[k] for k in order],
            story_ids=pick(self.story_ids, other.story_ids),
            is_duplicate=pick(self.is_duplicate, other.is_duplicate),
            vectors=np.concatenate([self.vectors, other.vectors[extra]])[order],
        )


_ARTICLE_ROWS = """
    SELECT a.article_id, a.source, a.title, a.text, a.effective_at, sa.story_id,
           a.duplicate_of IS NOT NULL AS is_duplicate, e.vector
    FROM articles a
    JOIN embeddings e ON e.article_id = a.article_id AND e.model = ?
    LEFT JOIN story_articles sa ON sa.article_id = a.article_id
"""


def _window_data(con: duckdb.DuckDBPyConnection, model: str, where: str, params: list[Any]) -> WindowData:
    dim = embedding_dim(con)
    if dim is None:
        return WindowData([], [], [], [], [], [], [], np.zeros((0, 0), dtype=np.float32))
    table = con.sql(
        f"{_ARTICLE_ROWS} WHERE {where} ORDER BY a.effective_at, a.article_id", params=[model, *params]
    ).to_arrow_table()
    return WindowData(
        article_ids=table["article_id"].to_pylist(),
        sources=table["source"].to_pylist(),
        titles=table["title"].to_pylist(),
        texts=table["text"].to_pylist(),
        times=[from_db_time(t) or OLDEST for t in table["effective_at"].to_pylist()],
        story_ids=table["story_id"].to_pylist(),
        is_duplicate=table["is_duplicate"].to_pylist(),
        vectors=vectors_to_numpy(table["vector"], dim),
    )


def load_window(
    con: duckdb.DuckDBPyConnection,
    model: str,
    start: datetime,
    end: datetime,
    *,
    undated_start: datetime | None = None,
    undated_end: datetime | None = None,
) -> WindowData:
    """Embedded articles published in [start, end]; undated ones (timed by when they were first
    seen) in [undated_start, undated_end], which default to the same bounds."""
    return _window_data(
        con,
        model,
        """CASE WHEN a.published_at IS NOT NULL THEN a.published_at BETWEEN ? AND ?
                ELSE a.effective_at BETWEEN ? AND ? END""",
        [
            to_db_time(start),
            to_db_time(end),
            to_db_time(undated_start or start),
            to_db_time(undated_end or end),
        ],
    )


def load_articles(con: duckdb.DuckDBPyConnection, model: str, article_ids: Sequence[str]) -> WindowData:
    """The given embedded articles, as window rows."""
    if not article_ids:
        return _window_data(con, model, "FALSE", [])
    with registered(con, "wanted_articles", {"article_id": strings(article_ids)}):
        return _window_data(con, model, "a.article_id IN (SELECT article_id FROM wanted_articles)", [])


def context_pool(
    con: duckdb.DuckDBPyConnection, model: str, since: datetime, until: datetime
) -> tuple[list[str], np.ndarray]:
    """Ids and vectors of embedded articles timed in [since, until]: where context comes from."""
    dim = embedding_dim(con)
    if dim is None:
        return [], np.zeros((0, 0), dtype=np.float32)
    table = con.sql(
        """
        SELECT a.article_id, e.vector FROM articles a
        JOIN embeddings e ON e.article_id = a.article_id AND e.model = ?
        WHERE a.effective_at BETWEEN ? AND ?
        ORDER BY a.effective_at, a.article_id
        """,
        params=[model, to_db_time(since), to_db_time(until)],
    ).to_arrow_table()
    return table["article_id"].to_pylist(), vectors_to_numpy(table["vector"], dim)


@dataclass
class StoredStory:
    story_id: str
    first_seen: datetime
    last_seen: datetime
    size: int
    member_vectors: np.ndarray


def load_live_stories(con: duckdb.DuckDBPyConnection, model: str, seen_since: datetime) -> list[StoredStory]:
    """Live stories last seen since ``seen_since``, with their members' vectors (for centroids)."""
    dim = embedding_dim(con)
    if dim is None:
        return []
    table = con.sql(
        """
        SELECT s.story_id, s.first_seen, s.last_seen, s.article_count, e.vector
        FROM stories s
        JOIN story_articles sa ON sa.story_id = s.story_id
        JOIN embeddings e ON e.article_id = sa.article_id AND e.model = ?
        WHERE s.status = 'live' AND s.last_seen >= ?
        ORDER BY s.story_id, sa.article_id
        """,
        params=[model, to_db_time(seen_since)],
    ).to_arrow_table()
    if table.num_rows == 0:
        return []
    ids = table["story_id"].to_pylist()
    firsts = table["first_seen"].to_pylist()
    lasts = table["last_seen"].to_pylist()
    sizes = table["article_count"].to_pylist()
    vectors = vectors_to_numpy(table["vector"], dim)
    stories = []
    start = 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or ids[i] != ids[start]:
            stories.append(
                StoredStory(
                    story_id=ids[start],
                    first_seen=from_db_time(firsts[start]) or OLDEST,
                    last_seen=from_db_time(lasts[start]) or OLDEST,
                    size=int(sizes[start]),
                    member_vectors=vectors[start:i],
                )
            )
            start = i
    return stories


def members_outside(
    con: duckdb.DuckDBPyConnection, story_ids: Sequence[str], window_ids: Sequence[str]
) -> dict[str, list[str]]:
    """Story -> its members that are not among ``window_ids``, sorted."""
    if not story_ids:
        return {}
    with (
        registered(con, "wanted_stories", {"story_id": strings(story_ids)}),
        registered(con, "window_articles", {"article_id": strings(window_ids)}),
    ):
        table = con.sql(
            """
            SELECT sa.story_id, sa.article_id FROM story_articles sa
            SEMI JOIN wanted_stories w ON w.story_id = sa.story_id
            ANTI JOIN window_articles x ON x.article_id = sa.article_id
            ORDER BY sa.story_id, sa.article_id
            """
        ).to_arrow_table()
    out: dict[str, list[str]] = {}
    for story_id, article_id in zip(
        table["story_id"].to_pylist(), table["article_id"].to_pylist(), strict=True
    ):
        out.setdefault(story_id, []).append(article_id)
    return out


def all_story_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT story_id FROM stories").fetchall()}


def resolve_story(con: duckdb.DuckDBPyConnection, story_id: str) -> str | None:
    """Follow merges from a (possibly retired) story id to the live story that holds it now."""
    seen = set()
    current: str | None = story_id
    while current is not None and current not in seen:
        seen.add(current)
        rows = con.execute("SELECT status, merged_into FROM stories WHERE story_id = ?", [current]).fetchall()
        if not rows:
            return None
        status, merged_into = rows[0]
        if status == "live":
            return current
        current = merged_into
    return None


def stories_listing(con: duckdb.DuckDBPyConnection, limit: int) -> list[dict[str, Any]]:
    cur = con.execute(
        """
        SELECT story_id, headline, article_count, independent_article_count, source_count,
               independent_source_count, first_seen, last_seen, keywords
        FROM story_summary WHERE status = 'live'
        ORDER BY last_seen::DATE DESC, independent_source_count DESC, article_count DESC, story_id
        LIMIT ?
        """,
        [limit],
    )
    columns = [d[0] for d in cur.description or []]
    return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def unassigned_count(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> int:
    rows = con.execute(
        """
        SELECT count(*) FROM articles a
        WHERE a.effective_at BETWEEN ? AND ?
          AND NOT EXISTS (SELECT 1 FROM story_articles sa WHERE sa.article_id = a.article_id)
        """,
        [to_db_time(start), to_db_time(end)],
    ).fetchall()
    return int(rows[0][0])
