"""Large windows: the sparse path (candidate neighbours, components, graph linkage) and the exact one.

Windows above ``exact_max`` articles never build an n x n matrix. These cases pin down what
that path promises: where it sees every pair it is the exact path, on clear stories it finds
the same stories with only k neighbours per article, and it is deterministic.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from pipeline.settings import ClusterSettings
from pipeline.stories import neighbours
from pipeline.stories.cluster import ClusterParams, cluster_window
from pipeline.stories.dense import _average_linkage
from pipeline.stories.graph_link import graph_average_linkage
from pipeline.stories.neighbours import knn, search_lists, train_lists
from pipeline.stories.sparse import top_values
from tests.builders import FLOOD_REPORTS, RATE_RISE_REPORTS, STORY_T0, story_vectors

SPARSE = ClusterParams(exact_max=1)


def test_seeing_every_pair_the_sparse_path_is_the_exact_path() -> None:
    vecs, texts, times, _ = story_vectors(60, seed=1)
    exact = cluster_window(vecs, texts, times)
    all_pairs = dataclasses.replace(SPARSE, knn_neighbours=len(vecs))
    # However the components are batched into matrices: alone, a few together, all in one.
    for batch in (1, 64, 10**6):
        sparse = cluster_window(vecs, texts, times, dataclasses.replace(all_pairs, dense_batch=batch))
        np.testing.assert_array_equal(exact, sparse)
    assert exact.max() > 5  # many stories, so many components


def test_with_twenty_neighbours_per_article_the_same_stories_are_found() -> None:
    vecs, texts, times, _ = story_vectors(120, seed=2)
    assert len(vecs) > 200  # more articles than candidates per article
    exact = cluster_window(vecs, texts, times)
    sparse = cluster_window(vecs, texts, times, SPARSE)
    np.testing.assert_array_equal(exact, sparse)


def test_the_sparse_path_is_deterministic_on_an_index_too() -> None:
    vecs, texts, times, _ = story_vectors(300, seed=3)
    # Above knn_exact_max the neighbours come from an IVF index trained on the window.
    params = dataclasses.replace(SPARSE, knn_exact_max=100)
    first = cluster_window(vecs, texts, times, params)
    second = cluster_window(vecs.copy(), list(texts), times.copy(), params)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, cluster_window(vecs, texts, times, SPARSE))


def test_components_too_big_for_a_matrix_are_linked_on_their_edges() -> None:
    vecs, texts, times, truth = story_vectors(80, seed=4)
    exact = cluster_window(vecs, texts, times)
    graph = cluster_window(vecs, texts, times, dataclasses.replace(SPARSE, dense_max=2))
    # Without HDBSCAN cores and with k neighbours, the stories are still the stories.
    assert adjusted_rand_score(exact, graph) > 0.95
    assert adjusted_rand_score(truth, graph) > 0.95


def _groups(labels: np.ndarray) -> set[frozenset[int]]:
    """The groups of two or more articles a labelling makes."""
    out = {frozenset(np.flatnonzero(labels == v).tolist()) for v in set(labels.tolist()) if v >= 0}
    return {g for g in out if len(g) > 1}


def test_graph_linkage_with_every_edge_is_average_linkage() -> None:
    rng = np.random.default_rng(5)
    sim = np.corrcoef(rng.normal(size=(40, 6))).astype(np.float32)
    i, j = np.triu_indices(40, k=1)
    graph = graph_average_linkage(np.arange(40), i, j, sim[i, j], 0.3)
    dense = _average_linkage(sim, np.full(40, -1), 0.3)
    assert _groups(graph) == _groups(dense)
    assert len(_groups(graph)) > 1


def test_neighbours_exclude_the_article_itself_and_the_index_finds_the_exact_ones() -> None:
    vecs, _, _, _ = story_vectors(300, seed=6)
    exact_idx, exact_sim = knn(vecs, 10, exact_max=10**9)
    assert not (exact_idx == np.arange(len(vecs))[:, None]).any()
    assert np.all(np.diff(exact_sim, axis=1) <= 1e-6)  # best first
    ivf_idx, _ = knn(vecs, 10, exact_max=100, nprobe=64)
    recall = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(exact_idx.tolist(), ivf_idx.tolist(), strict=True)]
    )
    assert recall > 0.95


def test_the_index_search_finds_the_same_neighbours_for_an_hours_news_as_for_a_whole_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A few queries (an hourly run's new articles) are searched list by probed list, a whole
    # window query list by query list; both compare each query with the same rows.
    vecs, _, _, _ = story_vectors(300, seed=8)
    lists = train_lists(vecs, nprobe=6)
    where = lists.assign(vecs)
    few_idx, few_sim = search_lists(vecs, where, vecs, where, lists, 10, self_offset=0)
    monkeypatch.setattr(neighbours, "_BLOCK_CELLS", 0)  # every query count takes the per-list way
    many_idx, many_sim = search_lists(vecs, where, vecs, where, lists, 10, self_offset=0)
    np.testing.assert_allclose(few_sim, many_sim, atol=1e-6)
    assert (few_idx == many_idx).mean() > 0.99  # equal similarities may come in either order
    assert not (few_idx == np.arange(len(vecs))[:, None]).any()


def test_each_articles_best_edges_are_its_k_highest_similarities_best_first() -> None:
    rng = np.random.default_rng(9)
    i, j = rng.integers(0, 40, 300), rng.integers(0, 40, 300)
    sim = rng.standard_normal(300).astype(np.float32)
    sim[:100] = np.round(sim[:100], 1)  # ties, and both signs of zero
    sim[:5] = [-0.0, 0.0, -0.0, 0.0, -0.0]
    top = top_values(i, j, sim, 45, 4)
    for article in range(45):
        mine = sorted(np.concatenate([sim[i == article], sim[j == article]]).tolist(), reverse=True)[:4]
        expected = mine + [-np.inf] * (4 - len(mine))
        np.testing.assert_array_equal(top[article], np.array(expected, dtype=np.float32))


def test_window_size_switch_is_a_setting() -> None:
    params = ClusterParams.from_settings(ClusterSettings(exact_max=300, knn_neighbours=30))
    assert (params.exact_max, params.knn_neighbours) == (300, 30)
    with pytest.raises(ValueError):
        ClusterSettings(knn_neighbours=5)


@pytest.fixture(scope="module")
def embedded():
    from pipeline.embed.base import load_model
    from pipeline.embed.torch_fp32 import embed_texts

    texts = FLOOD_REPORTS + RATE_RISE_REPORTS
    return (
        embed_texts(load_model(), texts, max_tokens=128),
        texts,
        STORY_T0 + np.arange(len(texts)) * 3 * 3600.0,
    )


@pytest.mark.slow
def test_real_articles_cluster_the_same_on_both_paths(embedded) -> None:
    vectors, texts, times = embedded
    for when in (times, None):
        np.testing.assert_array_equal(
            cluster_window(vectors, texts, when), cluster_window(vectors, texts, when, SPARSE)
        )


def test_context_from_a_large_pool_is_found_through_the_index_as_by_comparing_every_pair() -> None:
    from pipeline.stories.context import nearest_context

    vecs, _, _, _ = story_vectors(300, seed=7)
    # New reports whose earlier coverage is in the pool.
    queries, pool = vecs[::3], np.delete(vecs, np.arange(0, len(vecs), 3), axis=0)
    exact = set(nearest_context(queries, pool, 5, exact_max=10**9).tolist())
    indexed = set(nearest_context(queries, pool, 5, exact_max=100).tolist())
    assert len(exact & indexed) / len(exact) > 0.95
    assert nearest_context(queries, pool, 5, exact_max=100).tolist() == sorted(indexed)


def test_graph_linkage_from_cores_with_every_edge_is_the_exact_procedure() -> None:
    vecs, texts, times, _ = story_vectors(40, seed=8)
    params = dataclasses.replace(SPARSE, knn_neighbours=len(vecs))
    exact = cluster_window(vecs, texts, times)
    # One component above dense_max: cores from the sparse distances, then graph linkage.
    graph = cluster_window(vecs, texts, times, dataclasses.replace(params, dense_max=2))
    assert adjusted_rand_score(exact, graph) > 0.99
