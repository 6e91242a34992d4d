"""Cluster one window of articles into stories.

The window's articles are compared pairwise with one similarity that blends
three views of an article, then grouped by HDBSCAN and refined by average
linkage at a fixed similarity threshold:

1. Views. The sentence embedding (cosine of the unit vectors) says "about the
   same thing"; a TF-IDF cosine fitted on the window's own texts and a
   TF-IDF cosine over names and numbers (capitalised words inside sentences,
   digits) say "about the same people, places and figures". Two shootings or
   two celebrity rehab stays read alike to the embedding; their names and
   places differ. Word overlap says little between two headlines, so the
   lexical views count in proportion to how much text the shorter article of
   a pair has (``lexical_full_words``); between headlines the embedding
   decides alone.
2. Hub correction (CSLS, Conneau et al. 2018). Some articles are close to
   everything in a window (a topic that fills it, generic wording); each pair
   loses ``hub_weight`` times the mean of the two articles' average
   similarity to their ``hub_neighbours`` nearest neighbours, which makes one
   threshold hold across windows of different density. That average is
   never taken below ``hub_floor``: in a small or thin window (a few dozen
   articles, or a daily replay of a narrow feed) nothing is near anything,
   and without a floor two different shootings would clear the bar just for
   being the closest pair around.
3. Time. Articles of one story appear close together: a pair loses
   ``time_weight * log1p(days apart / time_scale_days)``. The penalty is
   soft so that a strongly matching follow-up weeks later still joins, and
   it is zero where either date is unknown.
4. Grouping. HDBSCAN (precomputed distances ``1 - similarity``, leaf
   selection, min_cluster_size 2) finds the dense cores. Average linkage
   then runs from those cores (noise points as singletons) and joins groups
   while their mean pairwise similarity is at least ``threshold``; a core
   whose own members average below it is first split the same way. Average
   linkage is what keeps a chain of loosely similar articles from becoming
   one story, and what lets a lone article join a story it matches well.

Everything is deterministic: TF-IDF, HDBSCAN on a precomputed matrix and the
linkage (ties broken by index) have no randomness, and labels are numbered by
each cluster's first article.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.stories.dense import dense_labels, dense_similarity
from pipeline.stories.incremental import build
from pipeline.stories.lexicon import fit_lexicon
from pipeline.stories.numbering import canonical_labels
from pipeline.stories.params import ClusterParams
from pipeline.stories.terms import day_numbers
from pipeline.stories.views import TextViews

__all__ = ["ClusterParams", "canonical_labels", "cluster_window", "similarity"]


# The measured defaults (a frozen dataclass: one shared instance is safe as an argument default).
_DEFAULTS = ClusterParams()


def cluster_window(
    vectors: np.ndarray,
    texts: Sequence[str],
    times: np.ndarray | None,
    params: ClusterParams = _DEFAULTS,
) -> np.ndarray:
    """Story labels for the window's articles (same order); -1 = an article with no story partner."""
    vecs, n = _checked(vectors, texts, times)
    if n < 2:
        return np.full(n, -1, dtype=np.int64)
    if n > params.exact_max:
        return canonical_labels(build(vecs, texts, times, params).labels)
    views, days = _views(texts, params), day_numbers(times, params)
    return canonical_labels(dense_labels(dense_similarity(vecs, views, days, params), params))


def similarity(
    vectors: np.ndarray,
    texts: Sequence[str],
    times: np.ndarray | None,
    params: ClusterParams = _DEFAULTS,
) -> np.ndarray:
    """The blended, hub-corrected, time-penalised (n, n) similarity matrix (float32)."""
    vecs, _ = _checked(vectors, texts, times)
    return dense_similarity(vecs, _views(texts, params), day_numbers(times, params), params)


def _checked(vectors: np.ndarray, texts: Sequence[str], times: np.ndarray | None) -> tuple[np.ndarray, int]:
    """The vectors as float32 and their number, once the texts and times line up with them."""
    vecs = np.asarray(vectors, dtype=np.float32)
    n = vecs.shape[0] if vecs.ndim == 2 else 0
    if len(texts) != n:
        raise ValueError(f"got {n} vectors but {len(texts)} texts")
    if times is not None and len(times) != n:
        raise ValueError(f"got {n} vectors but {len(times)} times")
    return vecs, n


def _views(texts: Sequence[str], params: ClusterParams) -> TextViews:
    return fit_lexicon(
        texts,
        words_weight=params.words_weight,
        names_weight=params.names_weight,
        full_words=params.lexical_full_words,
    )[1]
