"""Matching one run's clusters to live stories: the time gate, the clusters, rules 1-3 of ``assign``.

A cluster continues a live story by overlap (the dominant *substantial* story among its members)
or, failing that, by centroid (the closest gated story at ``match_threshold`` or more).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from pipeline.stories.records import LiveStory, MatchParams, WindowArticle, story_centroid


class Gate:
    """Which stories a moment may join: it lies within the gate of the story's [first, last] span."""

    def __init__(self, first: Sequence[datetime], last: Sequence[datetime], days: float) -> None:
        self._first = np.array([t.timestamp() for t in first], dtype=np.float64)
        self._last = np.array([t.timestamp() for t in last], dtype=np.float64)
        self._gate = timedelta(days=days).total_seconds()

    def mask(self, times: Sequence[datetime]) -> np.ndarray:
        """Boolean (len(times), n_stories): may the story at column j take the thing at row i."""
        x = np.array([t.timestamp() for t in times], dtype=np.float64)[:, None]
        return np.maximum(0.0, np.maximum(self._first[None, :] - x, x - self._last[None, :])) <= self._gate

    def best(
        self, queries: np.ndarray, times: Sequence[datetime], candidates: np.ndarray
    ) -> list[tuple[int, float]]:
        """For each query row, the gated candidate with the highest cosine (ties: lowest index) and that
        cosine, -inf when none is gated. Chunked so a large window never builds a huge matrix."""
        out: list[tuple[int, float]] = []
        if candidates.shape[0] == 0:
            return [(-1, -np.inf)] * queries.shape[0]
        for start in range(0, queries.shape[0], 1024):
            stop = start + 1024
            sims = np.where(self.mask(times[start:stop]), queries[start:stop] @ candidates.T, -np.inf)
            best = np.argmax(sims, axis=1)
            out.extend(zip(best.tolist(), sims[np.arange(len(best)), best].tolist(), strict=True))
        return out


@dataclass
class WindowCluster:
    """One HDBSCAN cluster of the run, and what the assignment decides about it."""

    members: list[int]  # window indices, oldest first
    newest: datetime
    centroid: np.ndarray
    counts: dict[str, int]  # gated live story -> its members here, oldest story first
    fresh: list[int]  # members without a story yet
    target: str | None = None  # the live story this cluster continues
    via: str = ""  # overlap | centroid
    split_from: str | None = None
    born: str | None = None


def build_clusters(
    articles: Sequence[WindowArticle],
    labels: np.ndarray,
    vectors: np.ndarray,
    order: Sequence[int],
    rank: np.ndarray,
    index: Mapping[str, int],
    gate: Gate,
) -> list[WindowCluster]:
    """The run's clusters, earliest member first (label numbers mean nothing across runs).

    ``order``: window indices oldest first; ``rank``: each index's place in it; ``index``: live
    story ID -> its column in ``gate`` (oldest story first)."""
    grouped: dict[int, list[int]] = {}
    for i in order:
        if labels[i] >= 0:
            grouped.setdefault(int(labels[i]), []).append(i)
    clusters = []
    for members in sorted(grouped.values(), key=lambda m: rank[m[0]]):
        newest = articles[members[-1]].time
        allowed = gate.mask([newest])[0]
        counts: Counter[str] = Counter()
        for i in members:
            sid = articles[i].story_id
            # Stories outside the gate or not live (unknown here) stay frozen and take no part.
            if sid is not None and sid in index and allowed[index[sid]]:
                counts[sid] += 1
        clusters.append(
            WindowCluster(
                members=members,
                newest=newest,
                centroid=story_centroid(vectors[members]),
                # Oldest story first, so the stable sort in substantial breaks ties by age.
                counts=dict(sorted(counts.items(), key=lambda kv: index[kv[0]])),
                fresh=[i for i in members if articles[i].story_id is None],
            )
        )
    return clusters


def substantial(c: WindowCluster, params: MatchParams) -> list[str]:
    """Stories holding a substantial part of the cluster; the dominant one (most, then oldest) first."""
    size = len(c.members)
    subs = [s for s, k in c.counts.items() if k >= params.min_members and k / size >= params.min_share]
    return sorted(subs, key=lambda s: -c.counts[s])


def set_targets(
    clusters: Sequence[WindowCluster],
    stories: Sequence[LiveStory],
    centroids: np.ndarray,
    gate: Gate,
    params: MatchParams,
) -> None:
    """Rule 3: the live story each cluster continues, by overlap, else by centroid; None for neither."""
    for c in clusters:
        dominant = substantial(c, params)
        if dominant:
            c.target, c.via = dominant[0], "overlap"
    rest = [c for c in clusters if c.target is None]
    if rest:
        queries = np.vstack([c.centroid for c in rest])
        for c, (k, sim) in zip(rest, gate.best(queries, [c.newest for c in rest], centroids), strict=True):
            if sim >= params.match_threshold:
                c.target, c.via = stories[k].story_id, "centroid"
