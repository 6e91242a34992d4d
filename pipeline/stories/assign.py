"""Persistent stories from one clustering run: stable IDs, frozen history, recorded merges and splits.

HDBSCAN labels exist only inside one run. This module turns them into decisions about our own,
persistent story IDs. It is a pure function of plain data; the caller loads the inputs and writes
the returned :class:`StoryUpdate` back in one transaction.

Inputs (``assign_stories``)
    articles        the window's articles (:class:`WindowArticle`: id, effective UTC time, current story)
    labels          HDBSCAN labels for ``articles`` (same order), ``-1`` = noise
    vectors         unit embeddings of ``articles`` (same order), shape ``(n, d)``
    live            live stories the run may match (:class:`LiveStory`; centroid over all members)
    existing_ids    every story ID ever issued, live and retired (IDs are never reused)
    members_outside_window
                    story ID -> its member article IDs outside the window (so a merge can move them)
    params          :class:`MatchParams`

Output (:class:`StoryUpdate`)
    changes         one :class:`MembershipChange` per article whose story is set or changes, sorted by
                    article ID; ``reason`` is ``new`` (founds or joins a story born this run),
                    ``cluster`` (its cluster continues a live story), ``attach`` (noise close to a story),
                    ``merge`` or ``split`` (an assigned article moved by a recorded lineage event)
    new_stories     IDs born this run (new clusters and split children), in birth order
    lineage         :class:`LineageEvent`: ``merge`` (story_id retired into other_id), then ``split``
                    (story_id is a child of other_id)
    unassigned      new articles left without a story, sorted
    retired         story IDs retired by merges, sorted
    stats           counts for the run log

Rules, in the order they are applied
1. Time gate: a story can take a cluster or an article only if the cluster's newest article (or the
   article) lies within ``match_gate_days`` of the story's span ``[first_seen, last_seen]``.
2. A story is *substantial* in a cluster when it holds at least ``min_members`` of the cluster's
   members and at least ``min_share`` of them.
3. Cluster -> story: the cluster's dominant substantial story (most members, then oldest) if any
   (overlap); else the gated live story whose centroid is closest, if cosine >= ``match_threshold``;
   else, if the cluster has at least ``min_members`` unassigned articles, a new story; else its
   unassigned articles are treated like noise. Several clusters may continue the same story: HDBSCAN
   often cuts one event into pieces, and that must not create stories or splits.
4. Merge: two or more stories substantial in one cluster, whose centroids are at least
   ``match_threshold`` alike, become one. The oldest (first_seen, then ID) survives; every member of
   the others, inside and outside the window, moves to it.
5. Split: a story (not merged this run) that is the dominant substantial story of two or more
   clusters, where a part's members have a centroid below ``split_threshold`` cosine to the largest
   part's, keeps its ID on the largest part; each dissimilar part becomes a child story and only its
   members move. ``split_threshold`` sits below ``match_threshold`` so a merge is not undone by the
   next run's split (or the other way round) when similarities hover near one value.
6. Unassigned noise articles attach to the gated story (live, or born this run) with the closest
   centroid if cosine >= ``attach_threshold``; otherwise they stay unassigned.
7. Everything else is frozen: an assigned article keeps its story unless a merge or split moves it,
   and every move is in ``changes``.

New story IDs are ``"s_" + sha256(founder)[:12]``, the founder being the earliest (time, then ID)
member; if taken, the hash input gets a ``#1``, ``#2``... suffix. Same inputs give the same output:
clusters are ordered by their earliest member, never by label numbers or hash order.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

from pipeline.settings import ClusterSettings

ChangeReason = Literal["new", "cluster", "attach", "merge", "split"]


@dataclass(frozen=True)
class MatchParams:
    # Cluster centroid -> story centroid cosine to continue a story; also how alike two stories
    # must be to merge.
    match_threshold: float = 0.85
    # Single noise article -> story centroid cosine to join it.
    attach_threshold: float = 0.80
    match_gate_days: float = 30.0
    # "Substantial" part of a cluster: at least min_members articles and min_share of the cluster.
    # Also the smallest group of new articles that founds a story, and the smallest split part.
    min_share: float = 0.25
    min_members: int = 2
    # Parts of one story split only when less alike than this; kept below match_threshold so that
    # a merge and a split cannot undo each other run after run.
    split_threshold: float = 0.60

    @classmethod
    def from_settings(cls, settings: ClusterSettings) -> MatchParams:
        # A split part smaller than HDBSCAN's minimum cluster could be an artefact of one run.
        return cls(
            match_threshold=settings.match_threshold,
            attach_threshold=settings.attach_threshold,
            match_gate_days=settings.match_gate_days,
            min_members=max(2, settings.min_cluster_size),
        )


@dataclass(frozen=True)
class WindowArticle:
    article_id: str
    time: datetime
    story_id: str | None = None


@dataclass(frozen=True)
class LiveStory:
    story_id: str
    first_seen: datetime
    last_seen: datetime
    centroid: np.ndarray
    size: int


@dataclass(frozen=True)
class MembershipChange:
    article_id: str
    from_story: str | None
    to_story: str
    reason: ChangeReason


@dataclass(frozen=True)
class LineageEvent:
    kind: Literal["merge", "split"]
    story_id: str
    other_id: str


@dataclass
class StoryUpdate:
    changes: list[MembershipChange] = field(default_factory=list)
    new_stories: list[str] = field(default_factory=list)
    lineage: list[LineageEvent] = field(default_factory=list)
    unassigned: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)


def story_centroid(vectors: np.ndarray) -> np.ndarray:
    """Unit mean direction of ``vectors`` (rows); zeros when there is none."""
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] == 0:
        return np.zeros(vectors.shape[-1] if vectors.ndim == 2 else 0)
    return _unit(vectors.mean(axis=0))


def make_story_id(founder_article_id: str, taken: Set[str]) -> str:
    """Deterministic story ID for a founder article, avoiding every ID in ``taken``."""
    suffix = 0
    while True:
        seed = founder_article_id if suffix == 0 else f"{founder_article_id}#{suffix}"
        story_id = "s_" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:12]
        if story_id not in taken:
            return story_id
        suffix += 1


class _Gate:
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
class _Cluster:
    members: list[int]  # window indices, oldest first
    newest: datetime
    centroid: np.ndarray
    counts: dict[str, int]  # gated live story -> its members here, oldest story first
    fresh: list[int]  # members without a story yet
    target: str | None = None  # the live story this cluster continues
    via: str = ""  # overlap | centroid
    split_from: str | None = None
    born: str | None = None


def assign_stories(
    articles: Sequence[WindowArticle],
    labels: np.ndarray,
    vectors: np.ndarray,
    live: Sequence[LiveStory],
    *,
    existing_ids: Set[str],
    members_outside_window: Mapping[str, Sequence[str]],
    params: MatchParams = MatchParams(),  # frozen, so one shared default is safe
) -> StoryUpdate:
    """Decide the story of every article of one run's window; the rules are in the module docstring."""
    n = len(articles)
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != n:
        raise ValueError(f"{labels.shape[0]} labels for {n} articles")
    ids = [a.article_id for a in articles]
    if len(set(ids)) != n:
        raise ValueError("duplicate article_id in the window")
    if n == 0:
        return StoryUpdate(stats=_stats([], 0, 0, 0, 0))
    naive = [a.article_id for a in articles if a.time.tzinfo is None]
    naive += [s.story_id for s in live if s.first_seen.tzinfo is None or s.last_seen.tzinfo is None]
    if naive:
        # Naive times would be read as local time by timestamp() and shift every gate.
        raise ValueError(f"naive datetimes (UTC-aware expected) for {naive[:3]}")
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != n:
        raise ValueError(f"vectors of shape {vectors.shape} for {n} articles")
    dim = vectors.shape[1]

    # Oldest first, so argmax ties and every loop favour the older story.
    stories = sorted(live, key=lambda s: (s.first_seen, s.story_id))
    index = {s.story_id: k for k, s in enumerate(stories)}
    if len(index) != len(stories):
        raise ValueError("duplicate story_id among live stories")
    centroids = np.zeros((len(stories), dim))
    for k, s in enumerate(stories):
        centroids[k] = _unit(np.asarray(s.centroid, dtype=np.float64).reshape(-1))
    gate = _Gate([s.first_seen for s in stories], [s.last_seen for s in stories], params.match_gate_days)

    order = sorted(range(n), key=lambda i: (articles[i].time, articles[i].article_id))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    clusters = _build_clusters(articles, labels, vectors, order, rank, index, gate)

    for c in clusters:
        dominant = _substantial(c, params)
        if dominant:
            c.target, c.via = dominant[0], "overlap"
    rest = [c for c in clusters if c.target is None]
    if rest:
        queries = np.vstack([c.centroid for c in rest])
        for c, (k, sim) in zip(rest, gate.best(queries, [c.newest for c in rest], centroids), strict=True):
            if sim >= params.match_threshold:
                c.target, c.via = stories[k].story_id, "centroid"

    retired_into = _merges(clusters, index, centroids, params)
    _mark_splits(clusters, articles, vectors, set(retired_into) | set(retired_into.values()), params)

    # Births in cluster order, so ID collisions resolve the same way on every replay.
    taken = set(existing_ids) | set(index)
    new_stories: list[str] = []
    splits: list[LineageEvent] = []
    born_vecs: list[np.ndarray] = []
    born_first: list[datetime] = []
    born_last: list[datetime] = []
    for c in clusters:
        if c.split_from is not None:
            founders = [i for i in c.members if articles[i].story_id in (None, c.split_from)]
        elif c.target is None and len(c.fresh) >= params.min_members:
            founders = c.fresh
        else:
            continue
        c.born = make_story_id(articles[founders[0]].article_id, taken)
        taken.add(c.born)
        new_stories.append(c.born)
        born_vecs.append(story_centroid(vectors[founders]))
        born_first.append(articles[founders[0]].time)
        born_last.append(articles[founders[-1]].time)
        if c.split_from is not None:
            splits.append(LineageEvent("split", c.born, c.split_from))

    changes: dict[str, MembershipChange] = {}
    in_window = set(ids)
    for old in sorted(retired_into):
        survivor = retired_into[old]
        movers = [ids[i] for i in order if articles[i].story_id == old]
        movers += sorted(a for a in set(members_outside_window.get(old, ())) if a not in in_window)
        for aid in movers:
            changes[aid] = MembershipChange(aid, old, survivor, "merge")
    leftover: list[int] = []
    for c in clusters:
        if c.born is not None:
            for i in c.members:
                sid = articles[i].story_id
                if sid is None:
                    changes[ids[i]] = MembershipChange(ids[i], None, c.born, "new")
                elif sid == c.split_from:
                    changes[ids[i]] = MembershipChange(ids[i], sid, c.born, "split")
        elif c.target is not None:
            to = retired_into.get(c.target, c.target)
            for i in c.fresh:
                changes[ids[i]] = MembershipChange(ids[i], None, to, "cluster")
        else:
            leftover.extend(c.fresh)
    leftover.extend(i for i in order if labels[i] < 0 and articles[i].story_id is None)
    leftover.sort(key=lambda i: rank[i])

    # Noise joins a gated story that is still live after this run, or one born in it.
    keep = [k for k, s in enumerate(stories) if s.story_id not in retired_into]
    cand_ids = [stories[k].story_id for k in keep] + new_stories
    cand_vecs = np.vstack([centroids[keep], *[v.reshape(1, dim) for v in born_vecs]])
    cand_gate = _Gate(
        [stories[k].first_seen for k in keep] + born_first,
        [stories[k].last_seen for k in keep] + born_last,
        params.match_gate_days,
    )
    unassigned: list[str] = []
    attached = 0
    best = cand_gate.best(
        vectors[leftover].reshape(len(leftover), dim), [articles[i].time for i in leftover], cand_vecs
    )
    for i, (k, sim) in zip(leftover, best, strict=True):
        if sim >= params.attach_threshold:
            changes[ids[i]] = MembershipChange(ids[i], None, cand_ids[k], "attach")
            attached += 1
        else:
            unassigned.append(ids[i])

    return StoryUpdate(
        changes=[changes[a] for a in sorted(changes)],
        new_stories=new_stories,
        lineage=[LineageEvent("merge", old, retired_into[old]) for old in sorted(retired_into)] + splits,
        unassigned=sorted(unassigned),
        retired=sorted(retired_into),
        stats=_stats(clusters, attached, len(unassigned), len(retired_into), len(changes)),
    )


def _build_clusters(
    articles: Sequence[WindowArticle],
    labels: np.ndarray,
    vectors: np.ndarray,
    order: Sequence[int],
    rank: np.ndarray,
    index: Mapping[str, int],
    gate: _Gate,
) -> list[_Cluster]:
    grouped: dict[int, list[int]] = {}
    for i in order:
        if labels[i] >= 0:
            grouped.setdefault(int(labels[i]), []).append(i)
    clusters = []
    # Earliest member first (members are oldest first): label numbers mean nothing across runs.
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
            _Cluster(
                members=members,
                newest=newest,
                centroid=story_centroid(vectors[members]),
                # Oldest story first, so the stable sort in _substantial breaks ties by age.
                counts=dict(sorted(counts.items(), key=lambda kv: index[kv[0]])),
                fresh=[i for i in members if articles[i].story_id is None],
            )
        )
    return clusters


def _substantial(c: _Cluster, params: MatchParams) -> list[str]:
    """Stories holding a substantial part of the cluster; the dominant one (most, then oldest) first."""
    size = len(c.members)
    subs = [s for s, k in c.counts.items() if k >= params.min_members and k / size >= params.min_share]
    return sorted(subs, key=lambda s: -c.counts[s])


def _merges(
    clusters: Sequence[_Cluster],
    index: Mapping[str, int],
    centroids: np.ndarray,
    params: MatchParams,
) -> dict[str, str]:
    """Retired story -> survivor. Co-membership alone is not enough: the stories must also be alike,
    so that one run's chaining cluster cannot fuse two unrelated events for good."""
    root: dict[str, str] = {}

    def find(s: str) -> str:
        while root.get(s, s) != s:
            s = root[s]
        return s

    for c in clusters:
        subs = sorted(_substantial(c, params), key=lambda s: index[s])
        for other in subs[1:]:
            if float(centroids[index[subs[0]]] @ centroids[index[other]]) < params.match_threshold:
                continue
            a, b = find(subs[0]), find(other)
            if a != b:
                # The older root absorbs the younger, so a component's root is its survivor.
                older, younger = sorted((a, b), key=lambda s: index[s])
                root[younger] = older
    return {s: find(s) for s in sorted(root) if find(s) != s}


def _mark_splits(
    clusters: Sequence[_Cluster],
    articles: Sequence[WindowArticle],
    vectors: np.ndarray,
    frozen: Set[str],
    params: MatchParams,
) -> None:
    """Set ``split_from`` on clusters holding a part of a story unlike that story's largest part."""
    parts: dict[str, list[_Cluster]] = {}
    for c in clusters:
        if c.via == "overlap" and c.target is not None and c.target not in frozen:
            parts.setdefault(c.target, []).append(c)
    for story_id in sorted(parts):
        if len(parts[story_id]) < 2:
            continue
        # Stable sort: among equal parts the one with the earliest member keeps the ID.
        ranked = sorted(parts[story_id], key=lambda c: -c.counts[story_id])

        def part_centroid(c: _Cluster, story_id: str = story_id) -> np.ndarray:
            return story_centroid(vectors[[i for i in c.members if articles[i].story_id == story_id]])

        keep = part_centroid(ranked[0])
        for c in ranked[1:]:
            if float(keep @ part_centroid(c)) < params.split_threshold:
                c.split_from = story_id


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else np.zeros_like(v)


def _stats(
    clusters: Sequence[_Cluster], attached: int, unassigned: int, merged: int, changed: int
) -> dict[str, int]:
    return {
        "clusters": len(clusters),
        "continued_overlap": sum(c.via == "overlap" and c.born is None for c in clusters),
        "continued_centroid": sum(c.via == "centroid" for c in clusters),
        "born": sum(c.born is not None and c.split_from is None for c in clusters),
        "split": sum(c.split_from is not None for c in clusters),
        "merged": merged,
        "attached": attached,
        "unassigned": unassigned,
        "changed": changed,
    }
