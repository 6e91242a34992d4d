"""Story IDs stay stable across clustering runs: clusters continue stories, noise attaches, the gate holds.

``Store`` (tests/story_store.py) plays the part of the database and checks that nothing changes silently;
merges and splits are in test_story_lineage.py, IDs, replays and refused inputs in test_story_ids.py.
"""

from __future__ import annotations

import numpy as np

from pipeline.stories.assign import LiveStory, MembershipChange, WindowArticle, assign_stories
from tests.story_store import RULES, Store, axis, cluster_labels, day, event, sid


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
