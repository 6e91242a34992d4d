"""Window clustering: which articles end up in one story.

The behavioural cases embed short hand-written articles with the real default
model, so they check what a user of the pipeline sees, not a stand-in.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.stories.cluster import ClusterParams, cluster_window, similarity
from tests.builders import FLOOD_REPORTS, RATE_RISE_REPORTS

DAY = 86400.0
T0 = 1_717_200_000.0  # 2024-06-01, an arbitrary fixed clock

DEAL = [
    "Nordwind Software agrees to buy DataLoom for $2.1 billion. The Oslo-based company will pay cash "
    "for the analytics start-up, its largest acquisition so far.",
    "DataLoom acquired by Nordwind in $2.1bn deal. Nordwind Software said the purchase of the analytics "
    "firm would close in the third quarter, pending regulatory approval.",
]
LONERS = [
    "How to bake sourdough bread at home. A simple recipe with flour, water, salt and patience: feed "
    "your starter the night before and let the dough rise slowly.",
    "Riverside chess club celebrates 50 years. Members marked the anniversary with a weekend "
    "tournament, a dinner and an exhibition of old scoresheets.",
]
SHOOTINGS = [
    "Man shot dead outside Springfield bar. Police said Daniel Ruiz, 34, was shot several times outside "
    "the Lucky Star bar on Main Street shortly before midnight on Friday and died at the scene. "
    "Detectives are looking for two men seen running to a parked car.",
    "Springfield bar shooting: victim named as Daniel Ruiz. The 34-year-old was killed outside the Lucky "
    "Star on Main Street late on Friday; police say two suspects fled in a dark sedan.",
    "Teenager shot dead in Springfield. Police said Marcus Bell, 19, was shot outside a convenience store "
    "on Oak Avenue early on Sunday and died in hospital. A 22-year-old man has been arrested.",
]


@pytest.fixture(scope="module")
def embed():
    from pipeline.embed.base import load_model
    from pipeline.embed.torch_fp32 import embed_texts

    model = load_model()
    return lambda texts: embed_texts(model, texts, max_tokens=128)


@pytest.fixture(scope="module")
def window(embed):
    """Three events from several outlets plus two unrelated articles, all within two days."""
    texts = FLOOD_REPORTS + RATE_RISE_REPORTS + DEAL + LONERS
    times = T0 + np.arange(len(texts)) * 3 * 3600.0
    return embed(texts), texts, times


def _same(labels: np.ndarray, idx: range | list[int]) -> bool:
    values = {int(labels[i]) for i in idx}
    return len(values) == 1 and -1 not in values


@pytest.mark.slow
def test_reports_of_one_event_from_different_outlets_share_a_story(window) -> None:
    vectors, texts, times = window
    labels = cluster_window(vectors, texts, times)
    floods, rates, deal = range(0, 3), range(3, 6), range(6, 8)
    assert _same(labels, floods)
    assert _same(labels, rates)
    assert _same(labels, deal)
    assert len({labels[0], labels[3], labels[6]}) == 3


@pytest.mark.slow
def test_articles_with_no_partner_stay_noise(window) -> None:
    vectors, texts, times = window
    labels = cluster_window(vectors, texts, times)
    assert labels[8] == -1
    assert labels[9] == -1


@pytest.mark.slow
def test_an_undated_window_clusters_the_same_events(window) -> None:
    vectors, texts, _ = window
    labels = cluster_window(vectors, texts, None)
    assert _same(labels, range(0, 3)) and _same(labels, range(3, 6)) and _same(labels, range(6, 8))


@pytest.mark.slow
def test_a_similar_shooting_two_months_later_is_another_story(embed, window) -> None:
    vectors, texts, times = window
    all_vectors = np.vstack([vectors, embed(SHOOTINGS)])
    # Two outlets on the Friday night shooting; the second shooting in the same city comes later.
    shootings = np.array([T0, T0 + 3 * 3600.0, T0 + 60 * DAY])
    labels = cluster_window(all_vectors, texts + SHOOTINGS, np.concatenate([times, shootings]))
    assert _same(labels, [10, 11])
    assert labels[12] == -1 or labels[12] != labels[10]


@pytest.mark.slow
def test_the_further_apart_in_time_the_less_alike_and_unknown_dates_cost_nothing(embed) -> None:
    vectors = embed(SHOOTINGS[:2])
    gaps = [0.0, 1.0, 7.0, 60.0]
    scores = [similarity(vectors, SHOOTINGS[:2], np.array([T0, T0 + g * DAY]))[0, 1] for g in gaps]
    assert scores == sorted(scores, reverse=True)
    assert len(set(scores)) == len(scores)
    undated = similarity(vectors, SHOOTINGS[:2], None)[0, 1]
    half_dated = similarity(vectors, SHOOTINGS[:2], np.array([T0, np.nan]))[0, 1]
    assert undated == pytest.approx(scores[0]) and half_dated == pytest.approx(scores[0])


@pytest.mark.slow
def test_unknown_dates_neither_join_nor_separate_articles(window) -> None:
    vectors, texts, times = window
    partly_dated = times.copy()
    partly_dated[[1, 4]] = np.nan
    labels = cluster_window(vectors, texts, partly_dated)
    assert _same(labels, range(0, 3)) and _same(labels, range(3, 6))


@pytest.mark.slow
def test_same_input_gives_the_same_labels(window) -> None:
    vectors, texts, times = window
    first = cluster_window(vectors, texts, times)
    second = cluster_window(vectors.copy(), list(texts), times.copy())
    np.testing.assert_array_equal(first, second)


def test_labels_are_numbered_by_first_article() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=(2, 16))
    # Articles 0 and 2 are one event, 1 and 3 another.
    vectors = np.vstack([base[0], base[1], base[0], base[1]]) + rng.normal(scale=0.01, size=(4, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = cluster_window(vectors.astype(np.float32), ["", "", "", ""], None)
    assert labels.tolist() == [0, 1, 0, 1]


def test_an_empty_window_has_no_labels() -> None:
    labels = cluster_window(np.zeros((0, 384), dtype=np.float32), [], None)
    assert labels.shape == (0,)


def test_a_single_article_is_noise() -> None:
    vec = np.ones((1, 8), dtype=np.float32) / np.sqrt(8)
    assert cluster_window(vec, ["Lonely article."], np.array([T0])).tolist() == [-1]


def test_two_identical_articles_are_one_story_and_two_unrelated_are_noise() -> None:
    a = np.eye(8, dtype=np.float32)[0]
    b = np.eye(8, dtype=np.float32)[1]
    text = "Council approves new budget."
    assert cluster_window(np.stack([a, a]), [text, text], None).tolist() == [0, 0]
    other = "Storm closes mountain pass."
    assert cluster_window(np.stack([a, b]), [text, other], None).tolist() == [-1, -1]


def test_identical_articles_form_one_story() -> None:
    vec = np.tile(np.eye(8, dtype=np.float32)[2], (5, 1))
    labels = cluster_window(vec, ["Same wire copy."] * 5, np.full(5, T0))
    assert labels.tolist() == [0, 0, 0, 0, 0]


def test_windows_without_usable_words_still_cluster() -> None:
    # Only stop words and symbols: the lexical views are empty, the embedding decides.
    vec = np.tile(np.eye(8, dtype=np.float32)[4], (3, 1))
    labels = cluster_window(vec, ["the and of", "--", ""], None)
    assert labels.tolist() == [0, 0, 0]


def test_mismatched_inputs_are_refused() -> None:
    vec = np.eye(4, dtype=np.float32)[:3]
    with pytest.raises(ValueError, match="texts"):
        cluster_window(vec, ["a", "b"], None)
    with pytest.raises(ValueError, match="times"):
        cluster_window(vec, ["a", "b", "c"], np.array([T0]))


def test_params_are_a_frozen_single_default() -> None:
    params = ClusterParams()
    with pytest.raises(AttributeError):
        params.threshold = 0.5  # type: ignore[misc]
    assert params == ClusterParams()
