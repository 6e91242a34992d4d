"""Refresh the briefs of stories whose membership changed, inside the cluster run's transaction.

Every story a run touched gets a new brief (its "what is new today" moves with each article,
unlike its headline, which changes only on material growth), and so does any live story of
the run's reach that has none yet (a database from before briefs existed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import duckdb

from pipeline.briefs.brief import build_brief
from pipeline.briefs.records import Brief
from storage import briefs as brief_store


def refresh_briefs(
    con: duckdb.DuckDBPyConnection,
    story_ids: Sequence[str],
    *,
    timezone: str,
    seen_since: datetime,
    now: datetime,
) -> int:
    """Build and store the briefs; returns how many were written."""
    todo = sorted(set(story_ids) | set(brief_store.live_without_brief(con, seen_since)))
    if not todo:
        return 0
    zone = ZoneInfo(timezone)
    members = brief_store.brief_articles(con, todo)
    briefs = [build_brief(sid, members[sid], zone) for sid in todo if members.get(sid)]
    brief_store.save_briefs(con, briefs, now)
    return len(briefs)


def briefs_as_of(
    con: duckdb.DuckDBPyConnection, story_ids: Sequence[str], *, end: datetime, timezone: str
) -> dict[str, Brief]:
    """The briefs as they stood at ``end`` (a past day's digest must not quote later articles):
    the stored brief where it covers nothing later, else one built from the articles before ``end``.
    Read-only: nothing is stored."""
    stored = brief_store.load_briefs(con, story_ids)
    zone = ZoneInfo(timezone)
    last_day = end.astimezone(zone).date() if end.tzinfo else end.date()
    stale = [sid for sid, b in stored.items() if b.new_day is not None and b.new_day >= last_day]
    # new_day is the story's latest day: from the day ``end`` falls on, the brief may quote later articles.
    members = brief_store.brief_articles(con, stale, before=end)
    for sid in stale:
        if members.get(sid):
            stored[sid] = build_brief(sid, members[sid], zone)
    return stored
