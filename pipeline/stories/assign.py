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

from collections.abc import Mapping, Sequence, Set

import numpy as np

from pipeline.stories.lineage import mark_splits, merges
from pipeline.stories.match import Gate, WindowCluster, build_clusters, set_targets
from pipeline.stories.records import (
    ChangeReason,
    LineageEvent,
    LiveStory,
    MatchParams,
    MembershipChange,
    StoryUpdate,
    WindowArticle,
    make_story_id,
    story_centroid,
    unit,
)

# The records are part of this entry point's signature: importable from here as well.
__all__ = [
    "ChangeReason",
    "LineageEvent",
    "LiveStory",
    "MatchParams",
    "MembershipChange",
    "StoryUpdate",
    "WindowArticle",
    "assign_stories",
    "make_story_id",
    "story_centroid",
]

# The shipped defaults (a frozen dataclass: one shared instance is safe as an argument default).
_DEFAULTS = MatchParams()


def assign_stories(
    articles: Sequence[WindowArticle],
    labels: np.ndarray,
    vectors: np.ndarray,
    live: Sequence[LiveStory],
    *,
    existing_ids: Set[str],
    members_outside_window: Mapping[str, Sequence[str]],
    params: MatchParams = _DEFAULTS,
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
        centroids[k] = unit(np.asarray(s.centroid, dtype=np.float64).reshape(-1))
    gate = Gate([s.first_seen for s in stories], [s.last_seen for s in stories], params.match_gate_days)

    order = sorted(range(n), key=lambda i: (articles[i].time, articles[i].article_id))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    clusters = build_clusters(articles, labels, vectors, order, rank, index, gate)
    set_targets(clusters, stories, centroids, gate, params)
    retired_into = merges(clusters, index, centroids, params)
    mark_splits(clusters, articles, vectors, set(retired_into) | set(retired_into.values()), params)
    born = _births(clusters, articles, vectors, set(existing_ids) | set(index), params)

    changes: dict[str, MembershipChange] = {}
    in_window = set(ids)
    window_members: dict[str, list[str]] = {}
    for i in order:
        sid = articles[i].story_id
        if sid is not None and sid in retired_into:
            window_members.setdefault(sid, []).append(ids[i])
    for old in sorted(retired_into):
        survivor = retired_into[old]
        movers = window_members.get(old, [])
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
    targets = [stories[k] for k in keep] + born
    attached_to = _attach(
        [articles[i] for i in leftover],
        vectors[leftover].reshape(len(leftover), dim),
        targets,
        np.vstack([centroids[keep], *[b.centroid.reshape(1, dim) for b in born]]),
        params,
    )
    unassigned: list[str] = []
    for i, k in zip(leftover, attached_to, strict=True):
        if k >= 0:
            changes[ids[i]] = MembershipChange(ids[i], None, targets[k].story_id, "attach")
        else:
            unassigned.append(ids[i])
    attached = len(leftover) - len(unassigned)

    splits = [LineageEvent("split", c.born, c.split_from) for c in clusters if c.born and c.split_from]
    return StoryUpdate(
        changes=[changes[a] for a in sorted(changes)],
        new_stories=[b.story_id for b in born],
        lineage=[LineageEvent("merge", old, retired_into[old]) for old in sorted(retired_into)] + splits,
        unassigned=sorted(unassigned),
        retired=sorted(retired_into),
        stats=_stats(clusters, attached, len(unassigned), len(retired_into), len(changes)),
    )


def _attach(
    articles: Sequence[WindowArticle],
    vectors: np.ndarray,
    targets: Sequence[LiveStory],
    centroids: np.ndarray,
    params: MatchParams,
) -> list[int]:
    """Rule 6: for each article, the index in ``targets`` of the gated story with the closest
    centroid (``centroids``, same order) if its cosine reaches ``attach_threshold``; else -1."""
    gate = Gate([t.first_seen for t in targets], [t.last_seen for t in targets], params.match_gate_days)
    best = gate.best(vectors, [a.time for a in articles], centroids, params.attach_threshold)
    return [k if sim >= params.attach_threshold else -1 for k, sim in best]


def _births(
    clusters: Sequence[WindowCluster],
    articles: Sequence[WindowArticle],
    vectors: np.ndarray,
    taken: Set[str],
    params: MatchParams,
) -> list[LiveStory]:
    """Set ``born`` on split children and on new clusters big enough to found a story; the stories
    born, in birth order (cluster order, so ID collisions resolve the same way on every replay)."""
    taken = set(taken)
    born: list[LiveStory] = []
    for c in clusters:
        if c.split_from is not None:
            founders = [i for i in c.members if articles[i].story_id in (None, c.split_from)]
        elif c.target is None and len(c.fresh) >= params.min_members:
            founders = c.fresh
        else:
            continue
        c.born = make_story_id(articles[founders[0]].article_id, taken)
        taken.add(c.born)
        first, last = articles[founders[0]].time, articles[founders[-1]].time
        born.append(LiveStory(c.born, first, last, story_centroid(vectors[founders]), len(founders)))
    return born


def _stats(
    clusters: Sequence[WindowCluster], attached: int, unassigned: int, merged: int, changed: int
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
