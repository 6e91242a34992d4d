"""Lineage decisions of one run (rules 4 and 5 of ``assign``): which live stories merge, which split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set

import numpy as np

from pipeline.stories.match import WindowCluster, substantial
from pipeline.stories.records import MatchParams, WindowArticle, story_centroid


def merges(
    clusters: Sequence[WindowCluster],
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
        subs = sorted(substantial(c, params), key=lambda s: index[s])
        for other in subs[1:]:
            if float(centroids[index[subs[0]]] @ centroids[index[other]]) < params.match_threshold:
                continue
            a, b = find(subs[0]), find(other)
            if a != b:
                # The older root absorbs the younger, so a component's root is its survivor.
                older, younger = sorted((a, b), key=lambda s: index[s])
                root[younger] = older
    return {s: find(s) for s in sorted(root) if find(s) != s}


def mark_splits(
    clusters: Sequence[WindowCluster],
    articles: Sequence[WindowArticle],
    vectors: np.ndarray,
    frozen: Set[str],
    params: MatchParams,
) -> None:
    """Set ``split_from`` on clusters holding a part of a story unlike that story's largest part."""
    parts: dict[str, list[WindowCluster]] = {}
    for c in clusters:
        if c.via == "overlap" and c.target is not None and c.target not in frozen:
            parts.setdefault(c.target, []).append(c)
    for story_id in sorted(parts):
        if len(parts[story_id]) < 2:
            continue
        # Stable sort: among equal parts the one with the earliest member keeps the ID.
        ranked = sorted(parts[story_id], key=lambda c: -c.counts[story_id])

        def part_centroid(c: WindowCluster, story_id: str = story_id) -> np.ndarray:
            return story_centroid(vectors[[i for i in c.members if articles[i].story_id == story_id]])

        keep = part_centroid(ranked[0])
        for c in ranked[1:]:
            if float(keep @ part_centroid(c)) < params.split_threshold:
                c.split_from = story_id
