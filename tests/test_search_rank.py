"""Search ranks stories by meaning (centroid cosine) and by words in headline and keywords."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from pipeline.search.rank import StoryLabel, search_stories, words

T = datetime(2026, 11, 20, tzinfo=UTC)


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


LABELS = {
    "truce": StoryLabel("Mediators press toward a truce and hostage deal", ["hostages", "truce"], T),
    "quake": StoryLabel("Earthquake shakes Chile", ["earthquake", "Chile"], T),
    "cop": StoryLabel("COP31 talks stall", ["COP31", "climate"], T),
}
IDS = list(LABELS)
CENTROIDS = np.stack([unit(1, 0, 0), unit(0, 1, 0), unit(0.2, 0, 1)])


def test_words_drop_stop_words_and_plural_s() -> None:
    assert words("The hostages and the Deal's news") == {"hostage", "deal"}


def test_meaning_ranks_first_and_exact_words_lift_a_story() -> None:
    hits = search_stories("hostage exchange", unit(1, 0, 0.1), IDS, CENTROIDS, LABELS)
    assert hits[0].story_id == "truce"
    assert hits[0].word_share == 0.5
    named = search_stories("COP31", unit(0.5, 0.5, 0.5), IDS, CENTROIDS, LABELS)
    assert named[0].story_id == "cop"


def test_unrelated_stories_are_left_out_and_ties_are_stable() -> None:
    hits = search_stories("hostage", unit(1, 0, 0), IDS, CENTROIDS, LABELS)
    assert "quake" not in [h.story_id for h in hits]
    assert search_stories("x", np.zeros(3, dtype=np.float32), IDS, CENTROIDS, LABELS) == []
    assert search_stories("q", unit(1, 1, 1), [], np.zeros((0, 3)), {}) == []
