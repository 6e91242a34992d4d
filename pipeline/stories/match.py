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

# Queries compared at a time, so a large window never builds a huge matrix.
_BLOCK = 1024
# Up to this many query x candidate pairs every cosine is computed in float64, as it always was.
# Beyond it a float32 product screens the pairs first and only those near the floor are computed
# in float64: half the arithmetic, and the gate and the argmax run on a few pairs instead of all.
_EXACT_PAIRS = 1 << 22
# float32 cosines of unit vectors of a few hundred dimensions are within ~1e-5 of the float64 ones.
_SCREEN_MARGIN = 1e-3


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

    def allows(self, x: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Elementwise: may the story at ``columns[i]`` take the thing at epoch second ``x[i]``."""
        return np.maximum(0.0, np.maximum(self._first[columns] - x, x - self._last[columns])) <= self._gate

    def best(
        self, queries: np.ndarray, times: Sequence[datetime], candidates: np.ndarray, floor: float
    ) -> list[tuple[int, float]]:
        """For each query row, the gated candidate with the highest cosine (ties: lowest index) and that
        cosine when it is at least ``floor``; else (-1, -inf)."""
        n, m = queries.shape[0], candidates.shape[0]
        if m == 0 or n == 0:
            return [(-1, -np.inf)] * n
        if n * m <= _EXACT_PAIRS:
            found = self._best_exact(queries, times, candidates)
        else:
            found = self._best_screened(queries, times, candidates, floor)
        return [(k, sim) if sim >= floor else (-1, -np.inf) for k, sim in found]

    def _best_exact(
        self, queries: np.ndarray, times: Sequence[datetime], candidates: np.ndarray
    ) -> list[tuple[int, float]]:
        out: list[tuple[int, float]] = []
        for start in range(0, queries.shape[0], _BLOCK):
            stop = start + _BLOCK
            sims = np.where(self.mask(times[start:stop]), queries[start:stop] @ candidates.T, -np.inf)
            best = np.argmax(sims, axis=1)
            out.extend(zip(best.tolist(), sims[np.arange(len(best)), best].tolist(), strict=True))
        return out

    def _best_screened(
        self, queries: np.ndarray, times: Sequence[datetime], candidates: np.ndarray, floor: float
    ) -> list[tuple[int, float]]:
        """Exact wherever the answer reaches ``floor``: the best candidate's float32 cosine lies within
        the margin of its float64 one, so it is never screened out."""
        out: list[tuple[int, float]] = [(-1, -np.inf)] * queries.shape[0]
        x = np.array([t.timestamp() for t in times], dtype=np.float64)
        screen32 = candidates.astype(np.float32)
        scale = float(np.linalg.norm(queries, axis=1).max() * np.linalg.norm(candidates, axis=1).max())
        bar = floor - _SCREEN_MARGIN * max(scale, 1.0)
        for start in range(0, queries.shape[0], _BLOCK):
            block = queries[start : start + _BLOCK]
            rows, cols = np.nonzero(block.astype(np.float32) @ screen32.T >= bar)
            rows += start
            keep = self.allows(x[rows], cols)
            rows, cols = rows[keep], cols[keep]
            sims = np.einsum("ij,ij->i", queries[rows], candidates[cols])
            # Per row: highest cosine first, then the lowest index.
            order = np.lexsort((cols, -sims, rows))
            first = order[np.r_[True, rows[order][1:] != rows[order][:-1]]] if len(order) else order
            for r, k, sim in zip(
                rows[first].tolist(), cols[first].tolist(), sims[first].tolist(), strict=True
            ):
                out[r] = (k, sim)
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
        counts = Counter(articles[i].story_id for i in members if articles[i].story_id in index)
        if counts:
            # Stories outside the gate or not live (unknown here) stay frozen and take no part.
            columns = np.array([index[s] for s in counts], dtype=np.int64)
            allowed = gate.allows(np.full(len(columns), newest.timestamp()), columns)
            counts = Counter(
                {s: k for (s, k), ok in zip(counts.items(), allowed.tolist(), strict=True) if ok}
            )
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
        found = gate.best(queries, [c.newest for c in rest], centroids, params.match_threshold)
        for c, (k, sim) in zip(rest, found, strict=True):
            if sim >= params.match_threshold:
                c.target, c.via = stories[k].story_id, "centroid"
