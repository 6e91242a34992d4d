"""Cluster: group the active window's articles and keep story IDs stable.

Read phase (window, live stories) → pure compute (HDBSCAN window clustering,
matching clusters to stories) → write phase (memberships, lineage, labels) in
one transaction.

The window holds W days of news on two clocks. Dated articles: the W days up
to the newest publication date not after the clock, so an archive, a bundle
of old sample feeds or a week of failed fetches is clustered as it was when
fresh. Undated articles (timed by when we first saw them): the W days up to
the clock. In live operation both end at about now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from flows.briefing import refresh_briefs
from flows.labelling import relabel_stories
from flows.shared import database, recorded_run
from flows.window_graph import clustered, keep_graph, previous_graph, uses_graph
from pipeline.embed.base import embed_input
from pipeline.settings import Settings
from pipeline.stories.assign import (
    LiveStory,
    MatchParams,
    StoryUpdate,
    WindowArticle,
    assign_stories,
    story_centroid,
)
from pipeline.stories.cluster import ClusterParams, cluster_window
from pipeline.stories.context import nearest_context
from storage import embeddings as embedding_store
from storage import runs
from storage import stories as story_store
from storage.articles import latest_published_at, timed_between
from storage.convert import utcnow
from storage.db import transaction

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection


@dataclass
class ClusterReport:
    run_id: int
    as_of: datetime
    window_start: datetime | None = None
    window_end: datetime | None = None
    window_articles: int = 0
    context_articles: int = 0
    clusters: int = 0
    stories_touched: int = 0
    new_stories: int = 0
    merges: int = 0
    splits: int = 0
    assigned: int = 0
    unassigned: int = 0
    # True when nothing had changed since the last cluster run, so this one decided nothing.
    skipped: bool = False
    # Large windows: "built" (the neighbour graph afresh) or "updated" (the last run's graph).
    graph: str | None = None

    @property
    def unassigned_share(self) -> float:
        """Share of the window's articles that belong to no story after this run."""
        return self.unassigned / self.window_articles if self.window_articles else 0.0


def compute_update(
    window: story_store.WindowData,
    live: list[story_store.StoredStory],
    outside: dict[str, list[str]],
    existing_ids: set[str],
    settings: Settings,
    labels: np.ndarray | None = None,
) -> tuple[np.ndarray, StoryUpdate]:
    """The pure part: window labels (unless given), then story decisions."""
    if labels is None:
        times, texts = _times_and_texts(window)
        labels = cluster_window(window.vectors, texts, times, ClusterParams.from_settings(settings.cluster))
    update = assign_stories(
        [
            WindowArticle(article_id=a, time=t, story_id=s)
            for a, t, s in zip(window.article_ids, window.times, window.story_ids, strict=True)
        ],
        labels,
        window.vectors,
        [
            LiveStory(
                story_id=s.story_id,
                first_seen=s.first_seen,
                last_seen=s.last_seen,
                centroid=story_centroid(s.member_vectors),
                size=s.size,
            )
            for s in live
        ],
        existing_ids=existing_ids,
        members_outside_window=outside,
        params=MatchParams.from_settings(settings.cluster),
    )
    return labels, update


def _times_and_texts(window: story_store.WindowData) -> tuple[np.ndarray, list[str]]:
    """What the clustering reads of each article: its time (epoch seconds) and its text."""
    times = np.array([t.timestamp() for t in window.times], dtype=np.float64)
    texts = [embed_input(title, text) for title, text in zip(window.titles, window.texts, strict=True)]
    return times, texts


def _load_context(
    con: DuckDBPyConnection,
    settings: Settings,
    window: story_store.WindowData,
    *,
    since: datetime,
    until: datetime,
) -> story_store.WindowData:
    """The most similar older articles of each window article that has no story yet."""
    model = settings.embed.model
    fresh = [i for i, s in enumerate(window.story_ids) if s is None]
    if not fresh or settings.cluster.context_neighbours <= 0:
        return story_store.load_articles(con, model, [])
    ids, vectors = story_store.context_pool(con, model, since, until)
    in_window = set(window.article_ids)
    keep = [k for k, a in enumerate(ids) if a not in in_window]
    picked = nearest_context(window.vectors[fresh], vectors[keep], settings.cluster.context_neighbours)
    return story_store.load_articles(con, model, [ids[keep[k]] for k in picked])


def _nothing_new_since(con: DuckDBPyConnection, model: str, end: datetime, now: datetime) -> int | None:
    """The last cluster run's id if this one would see exactly what it saw (no vector written
    since it started, the same newest publication date, no article timed after its clock);
    rerunning then decides nothing new, and on a 10k window it costs tens of seconds."""
    last = runs.last_ok(con, "cluster")
    if last is None:
        return None
    run_id, started, as_of = last
    if as_of is None or as_of > now:
        return None
    unchanged = (
        embedding_store.created_since(con, model, started) == 0
        and latest_published_at(con, not_after=as_of) == end
        and timed_between(con, as_of, now) == 0
    )
    return run_id if unchanged else None


def cluster_step(settings: Settings, *, as_of: datetime | None = None) -> ClusterReport:
    """One cluster run with the clock at ``as_of`` (default: now)."""
    now = as_of or utcnow()
    model = settings.embed.model
    window_len = timedelta(days=settings.cluster.window_days)
    gate = timedelta(days=settings.cluster.match_gate_days)
    with recorded_run(settings, "cluster", as_of=now) as run:
        with database(settings) as con:
            end = latest_published_at(con, not_after=now) or now
            start = end - window_len
            previous = _nothing_new_since(con, model, end, now)
            if previous is not None:
                run.finish(con, {"skipped": f"no new article since cluster run {previous}"})
                return ClusterReport(
                    run_id=run.run_id, as_of=now, window_start=start, window_end=end, skipped=True
                )
            window = story_store.load_window(
                con, model, start, end, undated_start=now - window_len, undated_end=now
            )
            context = _load_context(con, settings, window, since=start - gate, until=now)
            window = window.plus(context)
            live = story_store.load_live_stories(con, model, seen_since=start - gate)
            outside = story_store.members_outside(con, [s.story_id for s in live], window.article_ids)
            existing = story_store.all_story_ids(con)
            kept = previous_graph(con, settings) if uses_graph(settings, len(window)) else None
        report = ClusterReport(run_id=run.run_id, as_of=now, window_start=start, window_end=end)
        report.window_articles = len(window) - len(context)
        report.context_articles = len(context)
        graph = None
        if uses_graph(settings, len(window)):
            times, texts = _times_and_texts(window)
            graph = clustered(settings, window, times, texts, kept, context=set(context.article_ids))
            report.graph = "updated" if graph.updated else "built"
        labels, update = compute_update(
            window, live, outside, existing, settings, None if graph is None else graph.labels
        )
        report.clusters = len(set(labels.tolist()) - {-1})
        report.new_stories = len(update.new_stories)
        report.merges = sum(1 for ev in update.lineage if ev.kind == "merge")
        report.splits = sum(1 for ev in update.lineage if ev.kind == "split")
        report.stories_touched = len({c.to_story for c in update.changes})
        report.assigned = sum(1 for c in update.changes if c.from_story is None)
        context_ids = set(context.article_ids)
        report.unassigned = sum(1 for a in update.unassigned if a not in context_ids)
        with database(settings) as con, transaction(con):
            story_store.apply_story_update(
                con,
                run_id=run.run_id,
                now=now,
                changes=update.changes,
                new_stories=update.new_stories,
                lineage=update.lineage,
                retired=update.retired,
            )
            touched = sorted({c.to_story for c in update.changes})
            relabel_stories(con, model, touched)
            refresh_briefs(con, touched, timezone=settings.digest.timezone, seen_since=start - gate, now=now)
            run.finish(con, report.__dict__ | {"unassigned_share": report.unassigned_share})
        if graph is not None:
            keep_graph(settings, run.run_id, graph)
    return report
