"""The exact procedure on one dense similarity matrix: every pair compared.

``cluster_window`` runs it on a whole window up to ``exact_max`` articles; the sparse path
(pipeline/stories/sparse.py) runs it on the components of a larger window.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.cluster import HDBSCAN

from pipeline.stories.params import ClusterParams
from pipeline.stories.terms import blend, finite_mean, time_penalty
from pipeline.stories.views import TextViews


def dense_labels(sim: np.ndarray, params: ClusterParams) -> np.ndarray:
    """The exact procedure on a dense similarity matrix: HDBSCAN cores, then average linkage."""
    seeds = _hdbscan_cores(sim, params)
    return _average_linkage(sim, seeds, params.threshold)


def dense_similarity(
    vecs: np.ndarray,
    views: TextViews,
    days: np.ndarray | None,
    params: ClusterParams,
    *,
    part: np.ndarray | None = None,
    hub_outside: np.ndarray | None = None,
) -> np.ndarray:
    """The (n, n) similarity of ``similarity`` from prepared views.

    Built in row blocks so that a 10k window needs one n x n float32 matrix
    (400 MB) and small temporaries, not one per view. The sparse path clusters
    several components of a large window in one matrix: ``part`` names each
    row's component (pairs across components are set far apart), and
    ``hub_outside`` holds each row's best blended similarities to articles
    outside its component, so that the hub term is taken over the whole window.
    """
    n = len(vecs)
    sim = np.empty((n, n), dtype=np.float32)
    for lo in range(0, n, _BLOCK):
        hi = min(lo + _BLOCK, n)
        pair_rel: np.ndarray | None = None
        words: np.ndarray | float = 0.0
        names: np.ndarray | float = 0.0
        if views.rel is not None:
            pair_rel = np.minimum(views.rel[lo:hi, None], views.rel[None, :])
            words, names = _cosine_rows(views.words, lo, hi), _cosine_rows(views.names, lo, hi)
        block = blend(vecs[lo:hi] @ vecs.T, pair_rel, words, names, params)
        if part is not None:
            block[part[lo:hi, None] != part[None, :]] = -np.inf
        sim[lo:hi] = block
    if params.hub_weight and n > 1:
        k = params.hub_neighbours if hub_outside is not None else min(params.hub_neighbours, n - 1)
        hub = _neighbour_mean(sim, k, hub_outside)
        np.maximum(hub, np.float32(params.hub_floor), out=hub)
        half = np.float32(params.hub_weight * 0.5)
        for lo in range(0, n, _BLOCK):
            hi = min(lo + _BLOCK, n)
            sim[lo:hi] -= half * (hub[lo:hi, None] + hub[None, :])
    if days is not None:
        for lo in range(0, n, _BLOCK):
            hi = min(lo + _BLOCK, n)
            sim[lo:hi] -= time_penalty(np.abs(days[lo:hi, None] - days[None, :]), params)
    if part is not None:
        # Far apart, but finite: HDBSCAN needs finite distances.
        sim[np.isneginf(sim)] = _APART
    _symmetrise(sim)
    np.fill_diagonal(sim, 1.0)
    return sim


# Similarity of two articles of different components clustered in one matrix: below any real pair.
_APART = -10.0


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


def _cosine_rows(matrix: sparse.csr_matrix | None, lo: int, hi: int) -> np.ndarray | float:
    if matrix is None:
        return 0.0
    return np.asarray((matrix[lo:hi] @ matrix.T).toarray(), dtype=np.float32)


def _neighbour_mean(sim: np.ndarray, k: int, outside: np.ndarray | None = None) -> np.ndarray:
    """Mean similarity of each article to its k most similar other articles.

    ``outside`` (rows, h): more candidates per row, from articles not in ``sim``; -inf entries
    (no candidate, another component) never count, so a row with fewer than k takes what it has.
    """
    n = len(sim)
    out = np.empty(n, dtype=np.float32)
    for lo in range(0, n, _BLOCK):
        hi = min(lo + _BLOCK, n)
        work = sim[lo:hi].copy()
        work[np.arange(hi - lo), np.arange(lo, hi)] = -np.inf
        if outside is not None:
            work = np.hstack([work, outside[lo:hi]])
        top = np.partition(work, work.shape[1] - k, axis=1)[:, -k:]
        out[lo:hi] = top.mean(axis=1) if outside is None else finite_mean(top)
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
    return hdbscan_labels(dist, params)


def hdbscan_labels(dist: np.ndarray | sparse.csr_matrix, params: ClusterParams) -> np.ndarray:
    """HDBSCAN's clusters (-1 = noise) on precomputed distances, dense or sparse (consumed)."""
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
    # A group with no partner at the threshold is final from the start (by reducibility), and
    # most are: retiring them at once spares the chain a Python step per group.
    lonely = avg.max(axis=1) < threshold
    active = ~lonely
    members_of = list(groups)
    done: list[np.ndarray] = [members_of[k] for k in np.flatnonzero(lonely)]
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
