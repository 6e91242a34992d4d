"""Hourly runs that cost what is new: the sparse path kept between runs and updated.

What a user relies on: an update that brings nothing changes nothing; stories that new or
departing articles do not touch keep exactly the labels they had; new stories are found as a
full run would find them; and the same update always gives the same result.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.metrics import adjusted_rand_score

from pipeline.stories import incremental
from pipeline.stories.cluster import ClusterParams, canonical_labels, cluster_window
from pipeline.stories.lexicon import fit_lexicon
from pipeline.stories.sparse import label_components
from tests.builders import story_vectors

SPARSE = ClusterParams(exact_max=1)
# Small windows search inverted lists too, so that the update path of the index is exercised.
INDEXED = dataclasses.replace(SPARSE, knn_exact_max=100)


def _separate_stories(n_stories: int, seed: int) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Stories with words of their own (no two share a word), so each is a component by itself."""
    vecs, _, times, truth = story_vectors(n_stories, seed=seed)
    rng = np.random.default_rng(seed)
    texts = [" ".join(f"s{s}w{w}" for w in rng.integers(0, 12, size=30)) for s in truth.tolist()]
    return vecs, texts, times, truth


def _groups(labels: np.ndarray, rows: np.ndarray | None = None) -> set[frozenset[int]]:
    """The stories (two or more articles) a labelling makes, optionally among some rows only."""
    rows = np.arange(len(labels)) if rows is None else rows
    out: dict[int, set[int]] = {}
    for r in rows.tolist():
        if labels[r] >= 0:
            out.setdefault(int(labels[r]), set()).add(r)
    return {frozenset(g) for g in out.values() if len(g) > 1}


def test_an_update_that_brings_nothing_changes_nothing() -> None:
    vecs, texts, times, _ = story_vectors(150, seed=11)
    state = incremental.build(vecs, texts, times, INDEXED)
    same = incremental.update(state, np.ones(len(vecs), bool), vecs, [], times[:0], INDEXED)
    np.testing.assert_array_equal(canonical_labels(same.labels), canonical_labels(state.labels))
    np.testing.assert_array_equal(canonical_labels(state.labels), cluster_window(vecs, texts, times, INDEXED))


def test_a_new_story_is_found_and_untouched_stories_keep_their_labels() -> None:
    vecs, texts, times, truth = _separate_stories(150, seed=12)
    old = truth < 145  # the last five stories arrive in a later run
    state = incremental.build(
        vecs[old], [t for t, o in zip(texts, old, strict=True) if o], times[old], INDEXED
    )
    new = ~old
    updated = incremental.update(
        state,
        np.ones(int(old.sum()), bool),
        np.concatenate([vecs[old], vecs[new]]),
        [t for t, n in zip(texts, new, strict=True) if n],
        times[new],
        INDEXED,
    )
    m = int(old.sum())
    # Components holding no new article and no article a new one has an edge to were not looked
    # at: their labels are the very same values as before.
    graph = updated.graph
    touched = np.zeros(len(updated), bool)
    touched[m:] = True
    to_new = (graph.i >= m) | (graph.j >= m)
    touched[graph.i[to_new]] = touched[graph.j[to_new]] = True
    untouched = ~np.isin(updated.comp[:m], updated.comp[touched])
    assert untouched.mean() > 0.25  # here the new articles' 2k neighbours reach much of a small window
    np.testing.assert_array_equal(updated.labels[:m][untouched], state.labels[untouched])
    # And the result is what a full run over everything gives, or closer to the truth.
    order = np.concatenate([np.flatnonzero(old), np.flatnonzero(new)])
    full = cluster_window(vecs[order], [texts[k] for k in order], times[order], INDEXED)
    assert adjusted_rand_score(full, canonical_labels(updated.labels)) > 0.97
    truth_score = adjusted_rand_score(truth[order], canonical_labels(updated.labels))
    assert truth_score >= adjusted_rand_score(truth[order], full) - 0.01


def test_an_update_labels_as_if_every_component_were_clustered_again() -> None:
    # An update clusters again only components whose members or hub terms changed; labelling
    # every component of the updated graph afresh must give the very same partition.
    vecs, texts, times, _ = _separate_stories(300, seed=16)
    order = np.argsort(times, kind="stable")
    vecs, texts, times = vecs[order], [texts[k] for k in order], times[order]
    end, step = len(vecs) - 40, 40
    state = incremental.build(vecs[:end], texts[:end], times[:end], INDEXED)
    keep = np.arange(end) >= step
    updated = incremental.update(state, keep, vecs[step:], texts[end:], times[end:], INDEXED)
    everything = label_components(
        updated.vectors,
        updated.views,
        updated.days,
        INDEXED,
        updated.graph,
        updated.comp,
        np.ones(len(updated), bool),
    )
    np.testing.assert_array_equal(canonical_labels(everything), canonical_labels(updated.labels))
    # ...and some stories were indeed left alone: their articles keep their very label values.
    m = int(keep.sum())
    left_alone = (updated.labels[:m] == state.labels[keep]) & (state.labels[keep] >= 0)
    assert left_alone.sum() > 0.2 * m


def test_articles_leaving_the_window_take_only_their_own_stories_with_them() -> None:
    vecs, texts, times, truth = story_vectors(150, seed=13)
    state = incremental.build(vecs, texts, times, INDEXED)
    leaving = np.isin(truth, [0, 1, 2])
    updated = incremental.update(state, ~leaving, vecs[~leaving], [], times[:0], INDEXED)
    assert len(updated) == int((~leaving).sum())
    assert _groups(updated.labels) == _groups(state.labels[~leaving])


def test_a_sliding_window_updated_hour_by_hour_stays_close_to_a_full_run() -> None:
    vecs, texts, times, truth = story_vectors(400, seed=14)
    order = np.argsort(times, kind="stable")
    vecs, texts, times, truth = vecs[order], [texts[k] for k in order], times[order], truth[order]
    start, end = 0, len(vecs) // 2
    state = incremental.build(vecs[start:end], texts[start:end], times[start:end], INDEXED)
    for _ in range(4):  # each step: the oldest 5% leave, as many new ones arrive
        step = len(vecs) // 20
        keep = np.arange(len(state)) >= step
        state = incremental.update(
            state,
            keep,
            vecs[start + step : end + step],
            texts[end : end + step],
            times[end : end + step],
            INDEXED,
        )
        start, end = start + step, end + step
    assert state.drift == 8 * (len(vecs) // 20)
    full = cluster_window(vecs[start:end], texts[start:end], times[start:end], INDEXED)
    assert adjusted_rand_score(full, canonical_labels(state.labels)) > 0.97
    assert incremental.needs_rebuild(state, 0, 0, rebuild_share=0.25)
    assert not incremental.needs_rebuild(state, 0, 0, rebuild_share=1.0)


def test_context_articles_coming_and_going_do_not_count_towards_a_rebuild() -> None:
    # Each run brings the older neighbours of its new articles as context; they change from run
    # to run, and counting them would rebuild the graph far more often than the window changes.
    vecs, texts, times, _ = story_vectors(150, seed=17)
    ids = [f"a{k}" for k in range(len(vecs))]
    window, arriving = list(range(100)), list(range(100, 105))
    context_before, context_now = list(range(110, 130)), list(range(130, 150))

    def run(
        rows: list[int], context: list[int], previous: incremental.Clustered | None
    ) -> incremental.Clustered:
        return incremental.cluster_with_graph(
            None if previous is None else (previous.graph_ids, previous.graph),
            [ids[k] for k in rows],
            vecs[rows],
            [texts[k] for k in rows],
            times[rows],
            INDEXED,
            rebuild_share=0.25,
            context={ids[k] for k in context},
        )

    first = run(window + context_before, context_before, None)
    second = run(window + arriving + context_now, context_now, first)
    assert second.updated  # 40 context articles changed, more than a quarter of the window
    assert second.graph.drift == len(arriving)
    assert second.graph.context is not None
    assert second.graph.context.sum() == len(context_now)


def test_the_same_update_gives_the_same_result() -> None:
    vecs, texts, times, _ = story_vectors(200, seed=15)
    half = len(vecs) // 2
    results = []
    for _ in range(2):
        state = incremental.build(vecs[:half], texts[:half], times[:half], INDEXED)
        keep = np.arange(half) >= 10
        state = incremental.update(state, keep, vecs[10:], texts[half:], times[half:], INDEXED)
        results.append(state.labels)
    np.testing.assert_array_equal(results[0], results[1])


def test_new_articles_are_weighted_as_a_refit_would_weigh_them() -> None:
    texts = ["Storm floods Valencia streets", "Valencia counts storm damage", "Rates rise in Canada"]
    lexicon, views = fit_lexicon(texts, words_weight=1, names_weight=1, full_words=40)
    grown, new = lexicon.extended([texts[0], "Zorblax visits Quuxley", "Zorblax leaves Quuxley"])
    # Known texts get exactly the rows the fitted model gave them...
    np.testing.assert_allclose(
        new.words[0].toarray()[:, : views.words.shape[1]], views.words[0].toarray(), rtol=1e-6
    )
    # ...and names the window had never seen count, so the two new reports share terms.
    assert new.words.shape[1] > views.words.shape[1]
    assert (new.words[1] @ new.words[2].T).toarray()[0, 0] > 0.5
    assert grown.words is not None and "zorblax" in grown.words.vocabulary
