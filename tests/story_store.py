"""Builders shared by the story assignment tests (test_stories, test_story_lineage, test_story_ids).

The vectors are small synthetic unit vectors: each event points along its own axis, with a little
noise. ``Store`` plays the part of the database: it keeps article -> story, applies each run's
``StoryUpdate`` the way the storage layer does, and checks that nothing changes silently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from pipeline.stories.assign import (
    LiveStory,
    MatchParams,
    StoryUpdate,
    WindowArticle,
    assign_stories,
    story_centroid,
)

DIM = 48
T0 = datetime(2026, 3, 1, tzinfo=UTC)
# The rules are specified with these thresholds on the synthetic vectors below (the shipped
# defaults are higher, for real embeddings; see pipeline.settings.ClusterSettings).
RULES = MatchParams(match_threshold=0.70, attach_threshold=0.62, match_gate_days=3.0)


def day(d: float) -> datetime:
    return T0 + timedelta(days=d)


def sid(founder: str) -> str:
    return "s_" + hashlib.sha256(founder.encode()).hexdigest()[:12]


def axis(k: int) -> np.ndarray:
    v = np.zeros(DIM)
    v[k] = 1.0
    return v


def near(center: np.ndarray, rng: np.random.Generator, noise: float = 0.07) -> np.ndarray:
    v = center / np.linalg.norm(center) + rng.normal(0.0, noise, DIM)
    return v / np.linalg.norm(v)


@dataclass
class Store:
    """In-memory stand-in for the story tables, with the invariants of a real write checked."""

    time: dict[str, datetime] = field(default_factory=dict)
    vec: dict[str, np.ndarray] = field(default_factory=dict)
    story_of: dict[str, str] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    merged_into: dict[str, str] = field(default_factory=dict)
    parent: dict[str, str] = field(default_factory=dict)

    def add(self, article_id: str, t: datetime, v: np.ndarray) -> None:
        self.time[article_id] = t
        self.vec[article_id] = v

    def members(self, story_id: str) -> list[str]:
        return sorted(a for a, s in self.story_of.items() if s == story_id)

    def live(self) -> list[LiveStory]:
        out = []
        for story_id in sorted(s for s, st in self.status.items() if st == "live"):
            members = self.members(story_id)
            times = [self.time[a] for a in members]
            centroid = story_centroid(np.array([self.vec[a] for a in members]))
            out.append(LiveStory(story_id, min(times), max(times), centroid, len(members)))
        return out

    def run(
        self,
        now: datetime,
        labels: Mapping[str, int],
        window_days: float = 4.0,
        params: MatchParams = RULES,
    ) -> StoryUpdate:
        window = sorted(
            (a for a, t in self.time.items() if now - timedelta(days=window_days) <= t <= now),
            key=lambda a: (self.time[a], a),
        )
        live = self.live()
        inside = set(window)
        outside = {s.story_id: [a for a in self.members(s.story_id) if a not in inside] for s in live}
        update = assign_stories(
            [WindowArticle(a, self.time[a], self.story_of.get(a)) for a in window],
            np.array([labels.get(a, -1) for a in window]),
            np.array([self.vec[a] for a in window]).reshape(len(window), DIM),
            live,
            existing_ids=set(self.status),
            members_outside_window=outside,
            params=params,
        )
        self.apply(update, window)
        return update

    def apply(self, update: StoryUpdate, window: list[str]) -> None:
        before = dict(self.story_of)
        assert not set(update.new_stories) & set(self.status), "a story ID was issued twice"
        merged = {ev.story_id: ev.other_id for ev in update.lineage if ev.kind == "merge"}
        split = {ev.story_id: ev.other_id for ev in update.lineage if ev.kind == "split"}
        assert sorted(merged) == update.retired
        assert set(split) <= set(update.new_stories)
        for c in update.changes:
            assert before.get(c.article_id) == c.from_story, "a change must start from the stored story"
            assert c.from_story != c.to_story
            if c.from_story is None:
                assert c.reason in ("new", "cluster", "attach")
            else:
                # Frozen history: an assigned article moves only through a recorded lineage event.
                assert c.reason in ("merge", "split")
                if c.reason == "merge":
                    assert merged[c.from_story] == c.to_story
                else:
                    assert split[c.to_story] == c.from_story
            self.story_of[c.article_id] = c.to_story
        for story_id in update.new_stories:
            self.status[story_id] = "live"
        for old, survivor in merged.items():
            self.status[old] = "merged"
            self.merged_into[old] = survivor
        self.parent.update(split)
        still_unassigned = sorted(a for a in window if a not in self.story_of)
        assert update.unassigned == still_unassigned
        assert all(self.status[s] == "live" for s in self.story_of.values()), "member left in a retired story"

    def resolve(self, story_id: str) -> str:
        seen = set()
        while self.status[story_id] != "live":
            assert story_id not in seen, "merge lineage has a cycle"
            seen.add(story_id)
            story_id = self.merged_into[story_id]
        return story_id


def event(store: Store, prefix: str, center: np.ndarray, times: list[float], seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    ids = [f"{prefix}{k}" for k in range(len(times))]
    for article_id, d in zip(ids, times, strict=True):
        store.add(article_id, day(d), near(center, rng))
    return ids


def cluster_labels(*groups: list[str]) -> dict[str, int]:
    # Deliberately odd label numbers: they must mean nothing to the matching.
    return {a: 10 * (g + 3) for g, members in enumerate(groups) for a in members}
