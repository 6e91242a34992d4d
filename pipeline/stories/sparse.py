"""Cluster a large window without comparing every pair: the sparse path of ``cluster_window``.

Average linkage joins two groups only while their mean similarity is at least the threshold,
and a mean reaches it only if some pair between the groups does. So a story never crosses the
connected components of the graph of "strong" pairs (blended similarity >= threshold), and
the exact procedure (HDBSCAN cores, then average linkage; ``cluster.dense_labels``) can run on
each component by itself: HDBSCAN's leaf clusters inside a component do not depend on what
lies outside it, because the component is a branch of the single-linkage tree cut below
``1 - threshold``. What the window-wide dense path computes from all pairs comes here from a
candidate graph instead:

1. Candidates: each article's ``knn_neighbours`` nearest articles by embedding cosine
   (``neighbours.knn``: exact, or an IVF index on large windows), made symmetric.
2. Edge similarity: the same blend as the dense path (embedding, word and name TF-IDF cosines
   weighted by text length), computed on the candidate edges only.
3. Hub term: each article's mean over its ``hub_neighbours`` best candidate edges (floored),
   taken once from the whole window and reused for every component, so a component gets the
   similarities the whole window would give it.
4. Components of the strong edges. Small ones are clustered together in dense batches of about
   ``dense_batch`` articles with every cross-component pair set far apart (the same result as
   one by one, without thousands of tiny HDBSCAN calls); those above ``dense_max`` articles run
   graph average linkage (``graph_link``) on their candidate edges.

With all pairs as candidates (small windows) the result is the exact path's; on large windows
it differs only where the candidates miss a strong pair or the hub term misses a neighbour.
Memory is the vectors, the sparse TF-IDF views and about n * knn_neighbours edges.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from pipeline.stories.dense import dense_labels, dense_similarity
from pipeline.stories.graph_link import graph_average_linkage
from pipeline.stories.neighbours import knn
from pipeline.stories.params import ClusterParams
from pipeline.stories.terms import blend, finite_mean, time_penalty
from pipeline.stories.views import TextViews, edge_cosines


def candidate_edges(
    vecs: np.ndarray, views: TextViews, days: np.ndarray | None, params: ClusterParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, similarity, blend): the window's candidate pairs (i < j, each once), their final
    similarity and their blend before the hub and time terms."""
    n = len(vecs)
    idx, _ = knn(vecs, params.knn_neighbours, exact_max=params.knn_exact_max, nprobe=params.knn_nprobe)
    rows = np.repeat(np.arange(n, dtype=np.int64), idx.shape[1])
    cols = idx.ravel()
    ok = cols >= 0
    lo, hi = np.minimum(rows[ok], cols[ok]), np.maximum(rows[ok], cols[ok])
    key = np.unique(lo * n + hi)
    i, j = key // n, key % n
    del rows, cols, ok, lo, hi, key, idx
    blended = _edge_blend(vecs, views, i, j, params)
    sim = blended.copy()
    if params.hub_weight:
        hub = finite_mean(_top_values(i, j, blended, n, params.hub_neighbours)).astype(np.float32)
        np.maximum(hub, np.float32(params.hub_floor), out=hub)
        sim -= np.float32(params.hub_weight * 0.5) * (hub[i] + hub[j])
    if days is not None:
        sim -= time_penalty(np.abs(days[i] - days[j]), params)
    return i, j, sim, blended


def _edge_blend(
    vecs: np.ndarray, views: TextViews, i: np.ndarray, j: np.ndarray, params: ClusterParams
) -> np.ndarray:
    """The dense path's blend of the three views, for the given pairs only."""
    sim = np.empty(len(i), dtype=np.float32)
    for lo in range(0, len(i), 262_144):
        hi = min(lo + 262_144, len(i))
        sim[lo:hi] = np.einsum("ed,ed->e", vecs[i[lo:hi]], vecs[j[lo:hi]])
    if views.rel is None:
        return blend(sim, None, 0.0, 0.0, params)
    pair_rel = np.minimum(views.rel[i], views.rel[j])
    return blend(sim, pair_rel, edge_cosines(views.words, i, j), edge_cosines(views.names, i, j), params)


def _top_values(i: np.ndarray, j: np.ndarray, sim: np.ndarray, n: int, k: int) -> np.ndarray:
    """(n, k): each article's k highest edge similarities, best first, -inf where it has fewer."""
    node = np.concatenate([i, j])
    vals = np.concatenate([sim, sim])
    order = np.lexsort((-vals, node))
    node, vals = node[order], vals[order]
    start = np.searchsorted(node, np.arange(n))
    rank = np.arange(len(node)) - start[node]
    top = rank < k
    out = np.full((n, k), -np.inf, dtype=np.float32)
    out[node[top], rank[top]] = vals[top]
    return out


def sparse_labels(
    vecs: np.ndarray, views: TextViews, days: np.ndarray | None, params: ClusterParams
) -> np.ndarray:
    """Cluster labels (not yet canonical; -1 = alone) for a window of any size."""
    n = len(vecs)
    i, j, sim, blended = candidate_edges(vecs, views, days, params)
    strong = sim >= params.threshold
    graph = sparse.csr_matrix(
        (np.ones(int(strong.sum()), dtype=np.int8), (i[strong], j[strong])), shape=(n, n)
    )
    _, comp = connected_components(graph, directed=False)
    del graph
    # The hub term in a component's matrix is taken over the component and these: each article's
    # best candidates outside it. Never lower than the first estimate, so no component grows.
    across = comp[i] != comp[j]
    outside = _top_values(i[across], j[across], blended[across], n, params.hub_neighbours)
    del across, blended
    sizes = np.bincount(comp)
    labels = np.full(n, -1, dtype=np.int64)
    next_label = 0
    # Members of each component in index order; components in order of their first member.
    order = np.argsort(comp, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    firsts = order[bounds[:-1]]
    batch: list[np.ndarray] = []
    batch_size = 0

    def run_batch() -> None:
        nonlocal next_label, batch, batch_size
        idx = np.concatenate(batch)
        part = np.repeat(np.arange(len(batch)), [len(b) for b in batch])
        sim_b = dense_similarity(
            vecs[idx],
            views.take(idx),
            None if days is None else days[idx],
            params,
            part=part,
            hub_outside=outside[idx],
        )
        local = dense_labels(sim_b, params)
        _assign(labels, idx, local, next_label)
        next_label += int(local.max()) + 1 if len(local) else 0
        batch, batch_size = [], 0

    big_edges = None
    for c in np.argsort(firsts, kind="stable"):
        size = int(sizes[c])
        if size < 2:
            continue
        members = np.sort(order[bounds[c] : bounds[c + 1]])
        if size > params.dense_max:
            if big_edges is None:
                big_edges = comp[i] == comp[j]
            mask = big_edges & (comp[i] == c)
            local = graph_average_linkage(members, i[mask], j[mask], sim[mask], params.threshold)
            _assign(labels, members, local, next_label)
            next_label += int(local.max()) + 1
            continue
        if batch_size + size > params.dense_batch and batch:
            run_batch()
        batch.append(members)
        batch_size += size
    if batch:
        run_batch()
    return labels


def _assign(labels: np.ndarray, idx: np.ndarray, local: np.ndarray, offset: int) -> None:
    labels[idx] = np.where(local >= 0, local + offset, -1)
