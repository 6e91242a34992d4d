"""Stories: what a cluster run reads (window, live stories) and writes (memberships, lineage)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import duckdb
import numpy as np
import pyarrow as pa

from storage.convert import OLDEST, from_db_time, to_db_time
from storage.embeddings import embedding_dim, vectors_to_numpy


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
        rows = [(self, i) for i in range(len(self))]
        rows += [(other, i) for i, a in enumerate(other.article_ids) if a not in seen]
        rows.sort(key=lambda r: (r[0].times[r[1]], r[0].article_ids[r[1]]))
        return WindowData(
            article_ids=[w.article_ids[i] for w, i in rows],
            sources=[w.sources[i] for w, i in rows],
            titles=[w.titles[i] for w, i in rows],
            texts=[w.texts[i] for w, i in rows],
            times=[w.times[i] for w, i in rows],
            story_ids=[w.story_ids[i] for w, i in rows],
            is_duplicate=[w.is_duplicate[i] for w, i in rows],
            vectors=np.vstack([w.vectors[i] for w, i in rows]),
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
    return _window_data(con, model, "list_contains(?, a.article_id)", [list(article_ids)])


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
    if not story_ids:
        return {}
    rows = con.execute(
        """
        SELECT story_id, article_id FROM story_articles
        WHERE list_contains(?, story_id) AND NOT list_contains(?, article_id)
        ORDER BY story_id, article_id
        """,
        [list(story_ids), list(window_ids)],
    ).fetchall()
    out: dict[str, list[str]] = {}
    for story_id, article_id in rows:
        out.setdefault(story_id, []).append(article_id)
    return out


def all_story_ids(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute("SELECT story_id FROM stories").fetchall()}


def current_assignments(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str]) -> dict[str, str]:
    rows = con.execute(
        "SELECT article_id, story_id FROM story_articles WHERE list_contains(?, article_id)",
        [list(article_ids)],
    ).fetchall()
    return dict(rows)


class _Change(Protocol):
    article_id: str
    from_story: str | None
    to_story: str
    reason: str


class _Lineage(Protocol):
    kind: str
    story_id: str
    other_id: str


def _with_batch(
    con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, pa.Array], sql: str, params: dict[str, Any]
) -> None:
    con.register(name, pa.table(columns))
    try:
        con.execute(sql, params).fetchall()
    finally:
        con.unregister(name)


class ConcurrentUpdate(Exception):
    """Story memberships changed since the window was read; the step should run again."""


def apply_story_update(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: int,
    now: datetime,
    changes: Sequence[_Change],
    new_stories: Iterable[str],
    lineage: Sequence[_Lineage],
    retired: Iterable[str],
) -> None:
    """Write one cluster run's decisions. Call inside a transaction.

    Refuses (ConcurrentUpdate) when an article's current story is not the one the
    decision was based on, so two overlapping cluster runs can never interleave.
    """
    db_now = to_db_time(now)
    if changes:
        current = current_assignments(con, [c.article_id for c in changes])
        stale = [c.article_id for c in changes if current.get(c.article_id) != c.from_story]
        if stale:
            raise ConcurrentUpdate(f"{len(stale)} article(s) changed story since the window was read")
    parent_of = {ev.story_id: ev.other_id for ev in lineage if ev.kind == "split"}
    born = list(new_stories)
    # Set-based writes from Arrow batches: a run can assign thousands of articles, and one
    # statement per row costs ~2 ms each.
    if born:
        _with_batch(
            con,
            "born",
            {
                "story_id": pa.array(born, pa.string()),
                "parent_id": pa.array([parent_of.get(s) for s in born], pa.string()),
            },
            """
            INSERT INTO stories
                (story_id, created_at, created_run, first_seen, last_seen, parent_id, updated_at)
            SELECT story_id, $now, $run, $now, $now, parent_id, $now FROM born
            """,
            {"now": db_now, "run": run_id},
        )
    if changes:
        batch = {
            "article_id": pa.array([c.article_id for c in changes], pa.string()),
            "from_story": pa.array([c.from_story for c in changes], pa.string()),
            "to_story": pa.array([c.to_story for c in changes], pa.string()),
            "reason": pa.array([c.reason for c in changes], pa.string()),
        }
        _with_batch(
            con,
            "moves",
            batch,
            """
            INSERT INTO story_articles (article_id, story_id, assigned_at, run_id, method)
            SELECT article_id, to_story, $now, $run, reason FROM moves
            ON CONFLICT (article_id) DO UPDATE SET story_id = excluded.story_id,
                assigned_at = excluded.assigned_at, run_id = excluded.run_id, method = excluded.method
            """,
            {"now": db_now, "run": run_id},
        )
        _with_batch(
            con,
            "moves",
            batch,
            """
            INSERT INTO membership_changes (run_id, changed_at, article_id, from_story, to_story, reason)
            SELECT $run, $now, article_id, from_story, to_story, reason FROM moves
            """,
            {"now": db_now, "run": run_id},
        )
    for ev in lineage:
        con.execute(
            "INSERT INTO story_lineage VALUES (?, ?, ?, ?, ?)",
            [run_id, db_now, ev.kind, ev.story_id, ev.other_id],
        )
        if ev.kind == "merge":
            con.execute(
                "UPDATE stories SET status = 'merged', merged_into = ?, updated_at = ? WHERE story_id = ?",
                [ev.other_id, db_now, ev.story_id],
            )
    retired = list(retired)
    if retired:
        con.execute(
            "UPDATE stories SET status = 'merged', updated_at = ? WHERE list_contains(?, story_id) "
            "AND status = 'live'",
            [db_now, retired],
        )
    touched = sorted({c.to_story for c in changes} | {c.from_story for c in changes if c.from_story})
    refresh_story_stats(con, touched, now)


def refresh_story_stats(con: duckdb.DuckDBPyConnection, story_ids: Sequence[str], now: datetime) -> None:
    if not story_ids:
        return
    con.execute(
        """
        UPDATE stories SET
            first_seen = coalesce(m.first_seen, stories.first_seen),
            last_seen = coalesce(m.last_seen, stories.last_seen),
            article_count = coalesce(m.n, 0),
            updated_at = ?
        FROM (
            SELECT s.story_id, min(a.effective_at) AS first_seen, max(a.effective_at) AS last_seen,
                   count(a.article_id) AS n
            FROM (SELECT unnest(?) AS story_id) s
            LEFT JOIN story_articles sa ON sa.story_id = s.story_id
            LEFT JOIN articles a ON a.article_id = sa.article_id
            GROUP BY s.story_id
        ) m
        WHERE stories.story_id = m.story_id
        """,
        [to_db_time(now), list(story_ids)],
    )


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
