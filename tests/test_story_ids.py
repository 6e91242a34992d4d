"""New story IDs: derived from the founder, never reissued, the same on every replay; bad inputs refused."""

from __future__ import annotations

import hashlib
from datetime import datetime

import numpy as np
import pytest

from pipeline.settings import ClusterSettings
from pipeline.stories.assign import (
    LiveStory,
    MatchParams,
    StoryUpdate,
    WindowArticle,
    assign_stories,
    make_story_id,
)
from tests.story_store import DIM, Store, axis, cluster_labels, day, event, sid


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
