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

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse
from sklearn.cluster import HDBSCAN
from sklearn.feature_extraction.text import TfidfVectorizer

from pipeline.settings import ClusterSettings

_SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class ClusterParams:
    # Weights of the three views in the blended similarity (renormalised per pair).
    embed_weight: float = 1.0
    words_weight: float = 1.0
    names_weight: float = 1.0
    # Lexical views count fully once the shorter text of a pair has this many words.
    lexical_full_words: int = 40
    # Hub correction: neighbours averaged, and the share of that average subtracted.
    hub_neighbours: int = 10
    hub_weight: float = 0.5
    # Floor on that average, so the bar does not sink in small or thin windows.
    hub_floor: float = 0.35
    # Soft time penalty (0 disables).
    time_weight: float = 0.05
    time_scale_days: float = 1.0
    # Two groups join while their mean pairwise similarity is at least this.
    threshold: float = 0.10
    # HDBSCAN core finding.
    min_cluster_size: int = 2
    min_samples: int = 1
    cluster_selection_method: Literal["leaf", "eom"] = "leaf"

    @classmethod
    def from_settings(cls, settings: ClusterSettings) -> ClusterParams:
        """The configured knobs; everything else keeps the measured defaults above."""
        return cls(
            threshold=settings.link_threshold,
            time_weight=settings.time_weight,
            min_cluster_size=settings.min_cluster_size,
            min_samples=settings.min_samples,
        )


def cluster_window(
    vectors: np.ndarray,
    texts: Sequence[str],
    times: np.ndarray | None,
    params: ClusterParams = ClusterParams(),
) -> np.ndarray:
    """Story labels for the window's articles (same order); -1 = an article with no story partner."""
    vecs = np.asarray(vectors, dtype=np.float32)
    n = vecs.shape[0] if vecs.ndim == 2 else 0
    if len(texts) != n:
        raise ValueError(f"got {n} vectors but {len(texts)} texts")
    if times is not None and len(times) != n:
        raise ValueError(f"got {n} vectors but {len(times)} times")
    if n < 2:
        return np.full(n, -1, dtype=np.int64)
    sim = similarity(vecs, texts, times, params)
    seeds = _hdbscan_cores(sim, params)
    labels = _average_linkage(sim, seeds, params.threshold)
    return _canonical(labels)


def similarity(
    vectors: np.ndarray,
    texts: Sequence[str],
    times: np.ndarray | None,
    params: ClusterParams = ClusterParams(),
) -> np.ndarray:
    """The blended, hub-corrected, time-penalised (n, n) similarity matrix (float32).

    Built in row blocks so that a 10k window needs one n x n float32 matrix
    (400 MB) and small temporaries, not one per view.
    """
    n = len(texts)
    vecs = np.asarray(vectors, dtype=np.float32)
    lexical_total = params.words_weight + params.names_weight
    words_x = names_x = None
    if lexical_total > 0:
        if params.words_weight:
            words_x = _tfidf(list(texts), _word_vectorizer())
        if params.names_weight:
            names_x = _tfidf(_names_docs(texts), _names_vectorizer())
        # Per-pair reliability of word overlap: the shorter text's length, capped.
        counts = np.array([len(_WORD.findall(t or "")) for t in texts], dtype=np.float32)
        rel = np.minimum(counts / max(params.lexical_full_words, 1), 1.0)
    sim = np.empty((n, n), dtype=np.float32)
    for lo in range(0, n, _BLOCK):
        hi = min(lo + _BLOCK, n)
        block = vecs[lo:hi] @ vecs.T
        block *= params.embed_weight
        if lexical_total > 0:
            pair_rel = np.minimum(rel[lo:hi, None], rel[None, :])
            if words_x is not None:
                block += params.words_weight * pair_rel * _cosine_rows(words_x, lo, hi)
            if names_x is not None:
                block += params.names_weight * pair_rel * _cosine_rows(names_x, lo, hi)
            block /= params.embed_weight + lexical_total * pair_rel
        sim[lo:hi] = block
    if params.hub_weight and n > 1:
        hub = _neighbour_mean(sim, min(params.hub_neighbours, n - 1))
        np.maximum(hub, np.float32(params.hub_floor), out=hub)
        half = np.float32(params.hub_weight * 0.5)
        for lo in range(0, n, _BLOCK):
            hi = min(lo + _BLOCK, n)
            sim[lo:hi] -= half * (hub[lo:hi, None] + hub[None, :])
    if times is not None and params.time_weight:
        days = np.asarray(times, dtype=np.float64) / _SECONDS_PER_DAY
        for lo in range(0, n, _BLOCK):
            hi = min(lo + _BLOCK, n)
            # Unknown dates get no penalty: nothing is known against the pair.
            gap = np.nan_to_num(np.abs(days[lo:hi, None] - days[None, :]), nan=0.0)
            sim[lo:hi] -= (params.time_weight * np.log1p(gap / params.time_scale_days)).astype(np.float32)
    _symmetrise(sim)
    np.fill_diagonal(sim, 1.0)
    return sim


def _symmetrise(sim: np.ndarray) -> None:
    """Make ``sim`` exactly symmetric, in place and block by block.

    A pair's two entries come from different row blocks of a float32 matrix product, and BLAS
    may round them differently (seen: 1.5e-7 apart). Near-duplicates then have distances like
    1e-7 and 2e-7, which HDBSCAN rejects as an asymmetric matrix; and the result could depend on
    the order of the window's articles."""
    n = len(sim)
    for lo in range(0, n, _BLOCK):
        hi = min(lo + _BLOCK, n)
        for lo2 in range(lo, n, _BLOCK):
            hi2 = min(lo2 + _BLOCK, n)
            mean = (sim[lo:hi, lo2:hi2] + sim[lo2:hi2, lo:hi].T) * np.float32(0.5)
            sim[lo:hi, lo2:hi2] = mean
            sim[lo2:hi2, lo:hi] = mean.T


# Rows per block when building n x n matrices.
_BLOCK = 1024


_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
# Tokens for the names view: words (letters, digits, inner apostrophes, dots, hyphens).
_NAME_TOKEN = re.compile(r"[^\W_](?:[\w'’.\-]*[^\W_])?")
_SENTENCE_END = re.compile(r"(?<=[.!?:;\"”])\s+|\n+")


def _names_docs(texts: Sequence[str]) -> list[str]:
    """Each text reduced to its names and numbers: capitalised words not opening a sentence, and digits."""
    docs = []
    for text in texts:
        kept: list[str] = []
        for sentence in _SENTENCE_END.split(text or ""):
            for k, token in enumerate(_NAME_TOKEN.findall(sentence)):
                if token[0].isdigit() or (k > 0 and token[0].isupper()):
                    kept.append(token.lower().rstrip("."))
        docs.append(" ".join(kept))
    return docs


def _word_vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(sublinear_tf=True, stop_words="english", dtype=np.float32)


def _names_vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(sublinear_tf=True, token_pattern=r"\S+", lowercase=False, dtype=np.float32)


def _tfidf(docs: list[str], vectorizer: TfidfVectorizer) -> sparse.csr_matrix | None:
    """Row-normalised TF-IDF vectors fitted on this window; None when it has no usable words."""
    try:
        return sparse.csr_matrix(vectorizer.fit_transform(docs), dtype=np.float32)
    except ValueError:  # empty vocabulary: only stop words or blanks
        return None


def _cosine_rows(matrix: sparse.csr_matrix | None, lo: int, hi: int) -> np.ndarray | float:
    if matrix is None:
        return 0.0
    return np.asarray((matrix[lo:hi] @ matrix.T).toarray(), dtype=np.float32)


def _neighbour_mean(sim: np.ndarray, k: int) -> np.ndarray:
    """Mean similarity of each article to its k most similar other articles."""
    n = len(sim)
    out = np.empty(n, dtype=np.float32)
    for lo in range(0, n, _BLOCK):
        hi = min(lo + _BLOCK, n)
        work = sim[lo:hi].copy()
        work[np.arange(hi - lo), np.arange(lo, hi)] = -np.inf
        out[lo:hi] = np.partition(work, n - k, axis=1)[:, -k:].mean(axis=1)
    return out


# --- grouping -----------------------------------------------------------------------------------


def _hdbscan_cores(sim: np.ndarray, params: ClusterParams) -> np.ndarray:
    # In place: at 10k articles each n x n float64 copy costs 800 MB.
    dist = sim.astype(np.float64)
    np.subtract(1.0, dist, out=dist)
    np.clip(dist, 0.0, None, out=dist)
    np.fill_diagonal(dist, 0.0)
    if not np.any(dist > 0):  # all identical: HDBSCAN has no hierarchy to cut
        return np.full(len(sim), -1, dtype=np.int64)
    model = HDBSCAN(
        metric="precomputed",
        min_cluster_size=params.min_cluster_size,
        min_samples=params.min_samples,
        cluster_selection_method=params.cluster_selection_method,
        copy=False,
    )
    return model.fit_predict(dist).astype(np.int64)


def _average_linkage(sim: np.ndarray, seeds: np.ndarray, threshold: float) -> np.ndarray:
    """Average linkage from seed groups, joining while mean similarity >= threshold.

    Seeds that do not hold together at the threshold are split first, so the
    result never depends on a seed the threshold would reject.
    """
    n = len(sim)
    groups: list[np.ndarray] = [np.array([i]) for i in np.flatnonzero(seeds < 0)]
    for label in np.unique(seeds[seeds >= 0]):
        members = np.flatnonzero(seeds == label)
        singles = [np.array([i]) for i in range(len(members))]
        parts = _nn_chain(sim[np.ix_(members, members)], singles, threshold)
        groups.extend(members[part] for part in parts)
    groups.sort(key=lambda g: int(g.min()))
    merged = _nn_chain(sim, groups, threshold)
    labels = np.full(n, -1, dtype=np.int64)
    for k, members in enumerate(merged):
        labels[members] = k
    return labels


def _nn_chain(sim: np.ndarray, groups: list[np.ndarray], threshold: float) -> list[np.ndarray]:
    """UPGMA by the nearest-neighbour chain, stopping at ``threshold``; returns the final groups.

    Average linkage is reducible (a merge never brings a third group closer
    than the nearer of the two was), so a group whose best partner is below
    the threshold can be retired for good.
    """
    m = len(groups)
    if m < 2:
        return groups
    sizes = np.array([len(g) for g in groups], dtype=np.float32)
    if m == len(sim):  # all singletons: the group averages are the similarities themselves
        avg = sim[np.ix_(np.concatenate(groups), np.concatenate(groups))]
    else:
        rows = np.concatenate(groups)
        cols = np.repeat(np.arange(m), sizes.astype(np.int64))
        ones = np.ones(len(rows), dtype=np.float32)
        indicator = sparse.csr_matrix((ones, (cols, rows)), shape=(m, len(sim)))
        # Mean similarity between every two groups (sparse indicator keeps this at m x n, not n x n x 2).
        partial = np.asarray(indicator @ sim, dtype=np.float32)
        avg = np.asarray(indicator @ partial.T, dtype=np.float32)
        del partial
        avg /= np.outer(sizes, sizes)
    np.fill_diagonal(avg, -np.inf)
    active = np.ones(m, dtype=bool)
    members_of = list(groups)
    done: list[np.ndarray] = []
    chain: list[int] = []
    while True:
        if not chain:
            remaining = np.flatnonzero(active)
            if len(remaining) == 0:
                break
            chain.append(int(remaining[0]))
        a = chain[-1]
        row = np.where(active, avg[a], -np.inf)
        row[a] = -np.inf
        b = int(np.argmax(row))
        best = row[b]
        if not np.isfinite(best) or best < threshold:
            # Nothing will ever reach a: it is final.
            active[a] = False
            done.append(members_of[a])
            chain.pop()
            continue
        if len(chain) > 1 and row[chain[-2]] >= best:
            b = chain[-2]
            chain.pop()
            chain.pop()
            # Lance-Williams update for UPGMA: size-weighted mean of the two rows.
            new = (sizes[a] * avg[a] + sizes[b] * avg[b]) / (sizes[a] + sizes[b])
            keep, gone = min(a, b), max(a, b)
            avg[keep] = new
            avg[:, keep] = new
            avg[keep, keep] = -np.inf
            avg[gone] = -np.inf
            avg[:, gone] = -np.inf
            active[gone] = False
            sizes[keep] += sizes[gone]
            members_of[keep] = np.concatenate([members_of[keep], members_of[gone]])
            continue
        chain.append(b)
    return done


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Singletons become noise; clusters are numbered by their first article."""
    out = np.full(len(labels), -1, dtype=np.int64)
    values, first, counts = np.unique(labels, return_index=True, return_counts=True)
    next_label = 0
    for idx in np.argsort(first):
        if values[idx] < 0 or counts[idx] < 2:
            continue
        out[labels == values[idx]] = next_label
        next_label += 1
    return out
