"""Story IDs stay stable across clustering runs; every change of an article's story is recorded.

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
import pytest

from pipeline.settings import ClusterSettings
from pipeline.stories.assign import (
    LineageEvent,
    LiveStory,
    MatchParams,
    MembershipChange,
    StoryUpdate,
    WindowArticle,
    assign_stories,
    make_story_id,
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


def test_first_run_creates_one_story_per_cluster_with_ids_derived_from_the_founder() -> None:
    store = Store()
    quake = event(store, "quake", axis(0), [0.1, 0.2, 0.3], seed=1)
    vote = event(store, "vote", axis(1), [0.15, 0.25, 0.35], seed=2)

    update = store.run(day(0.5), cluster_labels(quake, vote))

    assert update.new_stories == [sid("quake0"), sid("vote0")]
    assert {store.story_of[a] for a in quake} == {sid("quake0")}
    assert {store.story_of[a] for a in vote} == {sid("vote0")}
    assert all(c.reason == "new" and c.from_story is None for c in update.changes)
    assert update.lineage == [] and update.retired == [] and update.unassigned == []


def test_later_run_keeps_the_id_and_grows_the_story() -> None:
    store = Store()
    quake = event(store, "quake", axis(0), [0.1, 0.2, 0.3], seed=1)
    store.run(day(0.5), cluster_labels(quake))
    more = event(store, "aftershock", axis(0), [1.1, 1.2], seed=3)

    update = store.run(day(1.5), cluster_labels(quake + more))

    assert update.new_stories == []
    assert update.changes == [MembershipChange(a, None, sid("quake0"), "cluster") for a in more]
    assert store.members(sid("quake0")) == sorted(quake + more)


def test_cluster_of_only_new_articles_continues_a_close_live_story() -> None:
    store = Store()
    quake = event(store, "quake", axis(0), [0.1, 0.2, 0.3], seed=1)
    store.run(day(0.5), cluster_labels(quake))
    more = event(store, "aftershock", axis(0), [1.1, 1.2, 1.3], seed=3)

    # HDBSCAN cut the event in two this time: the old part and the new part.
    update = store.run(day(1.5), cluster_labels(quake, more))

    assert update.new_stories == []
    assert {store.story_of[a] for a in quake + more} == {sid("quake0")}
    assert update.stats["continued_centroid"] == 1


def test_assigned_article_that_falls_into_noise_keeps_its_story() -> None:
    store = Store()
    quake = event(store, "quake", axis(0), [0.1, 0.2, 0.3, 0.4], seed=1)
    store.run(day(0.5), cluster_labels(quake))

    labels = cluster_labels(quake[1:])
    labels[quake[0]] = -1
    update = store.run(day(0.6), labels)

    assert update.changes == []
    assert store.story_of[quake[0]] == sid("quake0")


def test_assigned_article_in_another_storys_cluster_stays_where_it_was() -> None:
    store = Store()
    quake = event(store, "quake", axis(0), [0.1, 0.2, 0.3], seed=1)
    vote = event(store, "vote", axis(1), [0.15, 0.25, 0.35, 0.45], seed=2)
    store.run(day(0.5), cluster_labels(quake, vote))

    # One quake article lands in the vote cluster: too small a part to merge anything.
    update = store.run(day(0.6), cluster_labels(quake[1:], vote + quake[:1]))

    assert update.changes == [] and update.lineage == []
    assert store.story_of[quake[0]] == sid("quake0")


def test_cluster_spanning_two_similar_stories_merges_them_into_the_older_one() -> None:
    store = Store()
    ceasefire = axis(2)
    talks = 0.85 * axis(2) + 0.53 * axis(3)  # cosine ~0.85 to the ceasefire direction
    # Day 0: HDBSCAN sees two threads and two stories are born; talks0 makes the talks story older.
    talks_early = event(store, "talks", talks, [0.0, 0.1], seed=5)
    cease_early = event(store, "cease", ceasefire, [0.05, 0.2, 0.3], seed=4)
    store.run(day(0.5), cluster_labels(talks_early, cease_early))
    talks_id, cease_id = sid("talks0"), sid("cease0")
    talks_mid = event(store, "talks_mid", talks, [2.35, 2.45], seed=6)
    cease_mid = event(store, "cease_mid", ceasefire, [2.3, 2.4], seed=7)
    store.run(day(2.5), cluster_labels(talks_early + talks_mid, cease_early + cease_mid))
    assert store.members(cease_id) == sorted(cease_early + cease_mid)
    joint = event(store, "joint", talks, [4.4], seed=8)

    # Window day 0.5-4.5: the day-0 articles are outside it and must move all the same.
    update = store.run(day(4.5), cluster_labels(talks_mid + cease_mid + joint))

    assert update.retired == [cease_id]
    assert update.lineage == [LineageEvent("merge", cease_id, talks_id)]
    assert [c.article_id for c in update.changes if c.reason == "merge"] == sorted(cease_early + cease_mid)
    assert store.story_of["joint0"] == talks_id
    assert store.members(talks_id) == sorted(talks_early + talks_mid + cease_early + cease_mid + joint)
    assert store.resolve(cease_id) == talks_id


def test_merge_survivor_is_the_story_first_seen_earliest() -> None:
    store = Store()
    a = event(store, "a", axis(2), [0.1, 0.2, 0.3], seed=1)
    b = event(store, "b", 0.9 * axis(2) + 0.43 * axis(3), [0.4, 0.5, 0.6], seed=2)
    store.run(day(0.7), cluster_labels(a, b))

    update = store.run(day(0.8), cluster_labels(b + a))

    assert update.lineage == [LineageEvent("merge", sid("b0"), sid("a0"))]
    assert set(store.story_of.values()) == {sid("a0")}


def test_unrelated_stories_in_one_chaining_cluster_do_not_merge() -> None:
    store = Store()
    quake = event(store, "quake", axis(0), [0.1, 0.2, 0.3], seed=1)
    vote = event(store, "vote", axis(1), [0.15, 0.25, 0.35], seed=2)
    store.run(day(0.5), cluster_labels(quake, vote))

    update = store.run(day(0.6), cluster_labels(quake + vote))

    assert update.lineage == [] and update.changes == []


def test_story_whose_members_form_two_unlike_clusters_splits_off_a_child() -> None:
    store = Store()
    trial = event(store, "trial", axis(4), [0.1, 0.2, 0.3, 0.4], seed=1)
    protest = event(store, "protest", axis(5), [0.5, 0.6, 0.7], seed=2)
    # First run: HDBSCAN chains both threads into one cluster, so they share one story.
    store.run(day(0.8), cluster_labels(trial + protest))
    parent_id = sid("trial0")
    assert set(store.story_of.values()) == {parent_id}
    later = event(store, "protest_later", axis(5), [1.0], seed=3)

    update = store.run(day(1.1), cluster_labels(trial, protest + later))

    child_id = sid("protest0")
    assert update.new_stories == [child_id]
    assert update.lineage == [LineageEvent("split", child_id, parent_id)]
    assert [c for c in update.changes if c.reason == "split"] == [
        MembershipChange(a, parent_id, child_id, "split") for a in protest
    ]
    assert store.story_of["protest_later0"] == child_id
    assert store.members(parent_id) == trial
    assert store.parent == {child_id: parent_id}


def test_story_cut_into_two_alike_pieces_does_not_split() -> None:
    store = Store()
    quake = event(store, "quake", axis(0), [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], seed=1)
    store.run(day(0.7), cluster_labels(quake))

    update = store.run(day(0.8), cluster_labels(quake[::2], quake[1::2]))

    assert update.changes == [] and update.lineage == [] and update.new_stories == []


def test_new_noise_article_attaches_to_a_close_story_and_a_far_one_stays_unassigned() -> None:
    store = Store()
    quake = event(store, "quake", axis(0), [0.1, 0.2, 0.3], seed=1)
    store.run(day(0.5), cluster_labels(quake))
    close = event(store, "close", axis(0), [0.6], seed=2)
    far = event(store, "far", axis(7), [0.6], seed=3)

    update = store.run(day(0.7), cluster_labels(quake))

    assert update.changes == [MembershipChange(close[0], None, sid("quake0"), "attach")]
    assert update.unassigned == far
    assert update.stats["unassigned"] == 1


def test_noise_article_attaches_to_a_story_born_in_the_same_run() -> None:
    store = Store()
    quake = event(store, "quake", axis(0), [0.1, 0.2, 0.3], seed=1)
    straggler = event(store, "straggler", axis(0), [0.35], seed=2)

    update = store.run(day(0.5), cluster_labels(quake))

    assert store.story_of[straggler[0]] == sid("quake0")
    assert update.unassigned == []


def test_story_last_seen_beyond_the_gate_is_not_continued_even_by_an_identical_cluster() -> None:
    center = axis(6)
    old = LiveStory("s_old", day(0.0), day(0.5), center, 3)
    # Two of the stale story's members are still in the window, in the very same cluster.
    window = [
        WindowArticle("old1", day(0.4), "s_old"),
        WindowArticle("old2", day(0.5), "s_old"),
        WindowArticle("new0", day(3.6), None),
        WindowArticle("new1", day(3.7), None),
        WindowArticle("new2", day(3.8), None),
    ]

    update = assign_stories(
        window,
        np.zeros(5, dtype=int),
        np.tile(center, (5, 1)),
        [old],
        existing_ids={"s_old"},
        members_outside_window={"s_old": ["old0"]},
        params=RULES,
    )

    assert update.new_stories == [sid("new0")]
    assert update.changes == [MembershipChange(f"new{k}", None, sid("new0"), "new") for k in range(3)]


def test_noise_article_beyond_the_gate_does_not_attach() -> None:
    center = axis(6)
    old = LiveStory("s_old", day(0.0), day(0.5), center, 2)

    update = assign_stories(
        [WindowArticle("late", day(3.6), None), WindowArticle("ontime", day(3.4), None)],
        np.array([-1, -1]),
        np.tile(center, (2, 1)),
        [old],
        existing_ids={"s_old"},
        members_outside_window={},
        params=RULES,
    )

    assert update.changes == [MembershipChange("ontime", None, "s_old", "attach")]
    assert update.unassigned == ["late"]


def test_replaying_the_same_inputs_gives_the_same_update_whatever_the_order_and_label_numbers() -> None:
    store = Store()
    trial = event(store, "trial", axis(4), [0.1, 0.2, 0.3, 0.4], seed=1)
    protest = event(store, "protest", axis(5), [0.5, 0.6, 0.7], seed=2)
    store.run(day(0.8), cluster_labels(trial + protest))
    event(store, "stray", axis(4), [0.9], seed=3)
    news = event(store, "news", axis(8), [0.85, 0.86], seed=4)
    ids = sorted(store.time)
    articles = [WindowArticle(a, store.time[a], store.story_of.get(a)) for a in ids]
    labels = np.array([1 if a in trial else 2 if a in protest else 3 if a in news else -1 for a in ids])
    vectors = np.array([store.vec[a] for a in ids])
    live = store.live()
    args = {"existing_ids": set(store.status), "members_outside_window": {}}

    first = assign_stories(articles, labels, vectors, live, **args)  # type: ignore[arg-type]
    again = assign_stories(articles, labels, vectors, live, **args)  # type: ignore[arg-type]
    perm = np.random.default_rng(0).permutation(len(ids))
    shuffled = assign_stories(
        [articles[i] for i in perm],
        np.where(labels[perm] >= 0, 7 - labels[perm], -1),  # other label numbers, same partition
        vectors[perm],
        live[::-1],
        **args,  # type: ignore[arg-type]
    )

    assert first.lineage and first.new_stories and first.changes  # a run with something to decide
    assert first == again == shuffled


def test_empty_window_changes_nothing() -> None:
    live = [LiveStory("s_x", day(0), day(1), axis(0), 3)]

    update = assign_stories(
        [], np.array([]), np.zeros((0, DIM)), live, existing_ids={"s_x"}, members_outside_window={}
    )

    assert update == StoryUpdate(stats=update.stats)
    assert update.changes == [] and update.new_stories == [] and update.unassigned == []


def test_retired_ids_are_never_issued_again() -> None:
    founder_id = sid("a0")
    window = [WindowArticle("a0", day(0.1), None), WindowArticle("a1", day(0.2), None)]

    update = assign_stories(
        window,
        np.array([0, 0]),
        np.tile(axis(0), (2, 1)),
        [],
        existing_ids={founder_id},  # e.g. a story founded by a0 that a merge retired
        members_outside_window={},
    )

    reissued = "s_" + hashlib.sha256(b"a0#1").hexdigest()[:12]
    assert update.new_stories == [reissued]
    assert make_story_id("a0", {founder_id, reissued}) not in {founder_id, reissued}
    assert make_story_id("a0", set()) == founder_id


def test_inputs_that_do_not_line_up_are_refused() -> None:
    window = [WindowArticle("a0", day(0.1), None)]
    with pytest.raises(ValueError, match="labels"):
        assign_stories(
            window, np.array([0, 0]), axis(0)[None], [], existing_ids=set(), members_outside_window={}
        )
    with pytest.raises(ValueError, match="naive"):
        assign_stories(
            [WindowArticle("a0", datetime(2026, 3, 1), None)],  # noqa: DTZ001 - the point of the test
            np.array([0]),
            axis(0)[None],
            [],
            existing_ids=set(),
            members_outside_window={},
        )


def test_params_follow_the_cluster_settings() -> None:
    params = MatchParams.from_settings(ClusterSettings(min_cluster_size=3, match_threshold=0.8))
    assert params.min_members == 3 and params.match_threshold == 0.8
    assert params.attach_threshold == ClusterSettings().attach_threshold


def test_stream_of_runs_keeps_ids_stable_and_records_every_change() -> None:
    """Six daily runs over a growing stream; HDBSCAN's run-to-run jitter is simulated by dropping
    articles into noise and cutting events into pieces at random."""
    store = Store()
    hours = [2 / 24, 9 / 24, 17 / 24]
    plain = {  # event -> (direction, active days)
        "e0": (axis(10), range(6)),
        "e1": (axis(11), range(3)),
        "e2": (axis(12), range(2, 6)),
        "e3": (axis(13), range(3, 6)),
        "e4": (axis(14), [0, 1]),  # returns on day 5, beyond the gate: a new story
    }
    scripted = {
        "ma": (axis(15), range(6)),
        "mb": (0.85 * axis(15) + 0.53 * axis(16), range(6)),  # like ma: merges once clustered together
        "s1": (axis(17), range(5)),
        "s2": (axis(18), range(2, 5)),  # rides along with s1 at first, then splits off
    }
    group: dict[str, str] = {}
    for n, (name, (center, days)) in enumerate({**plain, **scripted}.items()):
        for d in days:
            ids = event(store, f"{name}_d{d}_", center, [d + h for h in hours], seed=100 * n + d)
            group.update(dict.fromkeys(ids, name))
    revived = event(store, "e4_back_", axis(14), [5 + h for h in hours], seed=99)
    group.update(dict.fromkeys(revived, "e4_back"))
    all_articles = dict(store.time)

    for run in range(1, 7):
        now = day(run)
        store.time = {a: t for a, t in all_articles.items() if t <= now}
        rng = np.random.default_rng(run)
        pieces: dict[str, list[str]] = {}
        for a in sorted(store.time, key=lambda a: (store.time[a], a)):
            g = group[a]
            if g == "mb" and run < 3:
                key = "mb"
            elif g in ("ma", "mb"):
                key = "m"
            elif g == "s2" and run == 3:
                key = "s1"
            else:
                key = g
            if g in plain or g == "e4_back":
                if rng.random() < 0.1:
                    continue  # noise this run
                key += f"/{rng.integers(2)}" if run % 2 else ""  # odd runs cut events in two
            pieces.setdefault(key, []).append(a)
        labels = cluster_labels(*[pieces[k] for k in sorted(pieces)])

        update = store.run(now, labels)

        assert set(update.new_stories) <= set(store.status)
        for old in store.merged_into:
            assert store.status[store.resolve(old)] == "live"

    def stories_of(g: str) -> set[str]:
        return {store.story_of.get(a, "-") for a, grp in group.items() if grp == g}

    for g in [*plain, "e4_back"]:
        assert len(stories_of(g)) == 1 and "-" not in stories_of(g), f"event {g}: {stories_of(g)}"
    assert stories_of("e4_back").isdisjoint(stories_of("e4"))
    merged = stories_of("ma") | stories_of("mb")
    assert len(merged) == 1 and len(store.merged_into) == 1
    assert store.resolve(next(iter(store.merged_into))) in merged
    (child,) = stories_of("s2")
    assert store.parent == {child: next(iter(stories_of("s1")))}
    live_ids = {s for s, st in store.status.items() if st == "live"}
    assert len(live_ids) == len(plain) + 4  # e0-e4, e4 again, the merged pair, s1 and its child
