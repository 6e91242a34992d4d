"""Story matching at scale decides exactly what the all-pairs computation decides: the float32 screen
of ``Gate.best`` (large problems) against the float64 product of every pair (small ones)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from pipeline.stories import match
from pipeline.stories.assign import LiveStory, MatchParams, WindowArticle, assign_stories, story_centroid
from tests.story_store import T0

DIM = 32


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _near(rng: np.random.Generator, centres: np.ndarray, noise: float) -> np.ndarray:
    return _unit(centres + rng.normal(0.0, noise, centres.shape))


@pytest.mark.parametrize("floor", [0.5, 0.8, 0.95])
def test_the_screened_search_finds_the_same_best_candidate_as_every_pair(
    floor: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(3)
    topics = _unit(rng.normal(size=(6, DIM)))
    candidates = _near(rng, topics[rng.integers(0, 6, 400)], 0.15)
    # Some candidates twice: equal cosines must go to the lower index, as argmax does.
    candidates[200:210] = candidates[100:110]
    # Queries near a candidate, some very near: every floor has many answers, and near misses.
    queries = _near(rng, candidates[rng.integers(0, 400, 2500)], rng.uniform(0.01, 0.25, (2500, 1)))
    days = rng.uniform(0, 40, 400)
    gate = match.Gate([T0 + timedelta(days=d) for d in days], [T0 + timedelta(days=d + 2) for d in days], 5.0)
    times = [T0 + timedelta(days=float(d)) for d in rng.uniform(0, 45, 2500)]
    exact = gate.best(queries, times, candidates, floor)
    monkeypatch.setattr(match, "_EXACT_PAIRS", 0)
    screened = gate.best(queries, times, candidates, floor)
    assert [k for k, _ in screened] == [k for k, _ in exact]
    assert np.allclose([s for _, s in screened], [s for _, s in exact], rtol=0, atol=1e-12)
    assert sum(k >= 0 for k, _ in exact) > 100


def _window(seed: int) -> tuple[list[WindowArticle], np.ndarray, np.ndarray, list[LiveStory], dict]:
    """A window of 3,000 articles over 60 events: the first 40 events are live stories (most of
    their articles assigned already), a third of the articles are noise."""
    rng = np.random.default_rng(seed)
    events = _unit(rng.normal(size=(60, DIM)))
    event = rng.integers(0, 60, 3000)
    vectors = _near(rng, events[event], 0.12)
    times = [T0 + timedelta(hours=float(h)) for h in rng.uniform(0, 96, 3000)]
    labels = np.where(rng.random(3000) < 0.33, -1, event + 7 * (rng.random(3000) < 0.1))
    story_of = {e: f"s_live{e:02d}" for e in range(40)}
    assigned = [story_of.get(int(e)) if rng.random() < 0.7 else None for e in event]
    articles = [
        WindowArticle(f"a{i:05d}", times[i], assigned[i]) for i in np.argsort([t.timestamp() for t in times])
    ]
    order = [int(a.article_id[1:]) for a in articles]
    live = [
        LiveStory(
            sid,
            T0 - timedelta(days=1),
            T0 + timedelta(days=2),
            story_centroid(vectors[[i for i in range(3000) if assigned[i] == sid]]),
            10,
        )
        for sid in story_of.values()
    ]
    outside = {sid: [f"old-{sid}-{k}" for k in range(3)] for sid in story_of.values()}
    return articles, labels[order], vectors[order], live, outside


@pytest.mark.parametrize("seed", [0, 1])
def test_assignment_is_the_same_whichever_way_the_best_story_is_searched(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    articles, labels, vectors, live, outside = _window(seed)
    params = MatchParams(match_threshold=0.9, attach_threshold=0.85, min_members=2)

    def run() -> object:
        return assign_stories(
            articles, labels, vectors, live, existing_ids=set(), members_outside_window=outside, params=params
        )

    exact = run()
    monkeypatch.setattr(match, "_EXACT_PAIRS", 0)
    screened = run()
    assert screened == exact
    assert exact.stats["attached"] > 50 and exact.stats["continued_overlap"] > 10
