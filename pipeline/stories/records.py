"""The plain records of story assignment (``assign.assign_stories``): its knobs, inputs and output.

Also the two pure helpers every step of it shares: a story's centroid and a new story's ID.
"""

from __future__ import annotations

import hashlib
from collections.abc import Set
from dataclasses import dataclass, field
from datetime import datetime
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
    return unit(vectors.mean(axis=0))


def make_story_id(founder_article_id: str, taken: Set[str]) -> str:
    """Deterministic story ID for a founder article, avoiding every ID in ``taken``."""
    suffix = 0
    while True:
        seed = founder_article_id if suffix == 0 else f"{founder_article_id}#{suffix}"
        story_id = "s_" + hashlib.sha256(seed.encode("utf-8")).hexdigest()[:12]
        if story_id not in taken:
            return story_id
        suffix += 1


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to length 1; zeros when it has no direction."""
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else np.zeros_like(v)
