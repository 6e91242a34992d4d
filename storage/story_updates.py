"""Stories: what a cluster run writes (memberships, new and retired stories, lineage, story stats).

Every write is one set-based statement over an Arrow batch: a run can assign 100,000 articles, and
one statement per row costs ~2 ms each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

import duckdb
import pyarrow as pa

from storage.batch import registered, strings
from storage.convert import to_db_time


class _Change(Protocol):
    article_id: str
    from_story: str | None
    to_story: str
    reason: str


class _Lineage(Protocol):
    kind: str
    story_id: str
    other_id: str


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
    stamp = {"now": to_db_time(now), "run": run_id}
    moves = {
        "article_id": strings(c.article_id for c in changes),
        "from_story": strings(c.from_story for c in changes),
        "to_story": strings(c.to_story for c in changes),
        "reason": strings(c.reason for c in changes),
    }
    with registered(con, "moves", moves):
        if changes:
            _check_unchanged(con)
        parent_of = {ev.story_id: ev.other_id for ev in lineage if ev.kind == "split"}
        born = list(new_stories)
        if born:
            _insert_stories(con, born, [parent_of.get(s) for s in born], stamp)
        if changes:
            _move_articles(con, stamp)
    _record_lineage(con, lineage, stamp)
    _retire(con, list(retired), stamp)
    touched = sorted({c.to_story for c in changes} | {c.from_story for c in changes if c.from_story})
    refresh_story_stats(con, touched, now)


def _check_unchanged(con: duckdb.DuckDBPyConnection) -> None:
    stale = con.execute(
        """
        SELECT count(*) FROM moves m
        LEFT JOIN story_articles sa ON sa.article_id = m.article_id
        WHERE sa.story_id IS DISTINCT FROM m.from_story
        """
    ).fetchall()[0][0]
    if stale:
        raise ConcurrentUpdate(f"{stale} article(s) changed story since the window was read")


def _insert_stories(
    con: duckdb.DuckDBPyConnection, born: list[str], parents: list[str | None], stamp: dict[str, object]
) -> None:
    with registered(con, "born", {"story_id": strings(born), "parent_id": strings(parents)}):
        con.execute(
            """
            INSERT INTO stories
                (story_id, created_at, created_run, first_seen, last_seen, parent_id, updated_at)
            SELECT story_id, $now, $run, $now, $now, parent_id, $now FROM born
            """,
            stamp,
        ).fetchall()


def _move_articles(con: duckdb.DuckDBPyConnection, stamp: dict[str, object]) -> None:
    """Set each moved article's story and keep the record of the move (table ``moves``)."""
    con.execute(
        """
        INSERT INTO story_articles (article_id, story_id, assigned_at, run_id, method)
        SELECT article_id, to_story, $now, $run, reason FROM moves
        ON CONFLICT (article_id) DO UPDATE SET story_id = excluded.story_id,
            assigned_at = excluded.assigned_at, run_id = excluded.run_id, method = excluded.method
        """,
        stamp,
    ).fetchall()
    con.execute(
        """
        INSERT INTO membership_changes (run_id, changed_at, article_id, from_story, to_story, reason)
        SELECT $run, $now, article_id, from_story, to_story, reason FROM moves
        """,
        stamp,
    ).fetchall()


def _record_lineage(
    con: duckdb.DuckDBPyConnection, lineage: Sequence[_Lineage], stamp: dict[str, object]
) -> None:
    """The lineage rows in the order given; a merged story is retired into its survivor."""
    if not lineage:
        return
    events = {
        "position": pa.array(range(len(lineage)), pa.int64()),
        "kind": strings(ev.kind for ev in lineage),
        "story_id": strings(ev.story_id for ev in lineage),
        "other_id": strings(ev.other_id for ev in lineage),
    }
    with registered(con, "events", events):
        con.execute(
            """
            INSERT INTO story_lineage (run_id, changed_at, kind, story_id, other_id)
            SELECT $run, $now, kind, story_id, other_id FROM events ORDER BY position
            """,
            stamp,
        ).fetchall()
        con.execute(
            """
            UPDATE stories SET status = 'merged', merged_into = e.other_id, updated_at = $now
            FROM events e
            WHERE e.kind = 'merge' AND stories.story_id = e.story_id
            """,
            {"now": stamp["now"]},
        ).fetchall()


def _retire(con: duckdb.DuckDBPyConnection, retired: list[str], stamp: dict[str, object]) -> None:
    if not retired:
        return
    with registered(con, "retired", {"story_id": strings(retired)}):
        con.execute(
            """
            UPDATE stories SET status = 'merged', updated_at = $now
            FROM retired r
            WHERE stories.story_id = r.story_id AND stories.status = 'live'
            """,
            {"now": stamp["now"]},
        ).fetchall()


def refresh_story_stats(con: duckdb.DuckDBPyConnection, story_ids: Sequence[str], now: datetime) -> None:
    """Span and size of the given stories from their members now."""
    if not story_ids:
        return
    with registered(con, "restated", {"story_id": strings(story_ids)}):
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
                FROM restated s
                LEFT JOIN story_articles sa ON sa.story_id = s.story_id
                LEFT JOIN articles a ON a.article_id = sa.article_id
                GROUP BY s.story_id
            ) m
            WHERE stories.story_id = m.story_id
            """,
            [to_db_time(now)],
        ).fetchall()
