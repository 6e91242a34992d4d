"""Stories merge and split only through recorded lineage events, and never undo each other."""

from __future__ import annotations

import numpy as np

from pipeline.stories.assign import LineageEvent, MembershipChange
from tests.story_store import Store, axis, cluster_labels, day, event, sid


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
