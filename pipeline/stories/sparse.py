"""Cluster a large window without comparing every pair: the pieces of the sparse path of
``cluster_window`` (put together in pipeline/stories/incremental.py, which also keeps them
between runs).

Average linkage joins two groups only while their mean similarity is at least the threshold,
and a mean reaches it only if some pair between the groups does. So a story never crosses the
connected components of the graph of "strong" pairs (blended similarity >= threshold), and
the exact procedure (HDBSCAN cores, then average linkage; ``cluster.dense_labels``) can run on
each component by itself: HDBSCAN's leaf clusters inside a component do not depend on what
lies outside it, because the component is a branch of the single-linkage tree cut below
``1 - threshold``. What the window-wide dense path computes from all pairs comes here from a
candidate graph instead:

1. Candidates: each article's ``knn_neighbours`` nearest articles by embedding cosine
   (pipeline/stories/neighbours.py: exact, or inverted lists on large windows), made symmetric.
2. Edge similarity: the same blend as the dense path (embedding, word and name TF-IDF cosines
   weighted by text length), computed on the candidate edges only.
3. Hub term: each article's mean over its ``hub_neighbours`` best candidate edges (floored),
   taken once from the whole window and reused for every component, so a component gets the
   similarities the whole window would give it.
4. Components of the strong edges. Small ones are clustered together in dense batches of about
   ``dense_batch`` articles with every cross-component pair set far apart (the same result as
   one by one, without thousands of tiny HDBSCAN calls); those above ``dense_max`` articles run
   the same procedure on their candidate edges: HDBSCAN on the sparse distances for the cores,
   then graph average linkage (``graph_link``) from those cores, a missing pair counting as 0.
   That last rule is what separates this from the exact procedure where a topic is dense: most
   of a 7,000-headline window of Gaza news is one component, whose far pairs are still well
   above 0, and graph linkage there split its big stories (ARI 0.23 against the exact path). So
   ``dense_max`` is 10,000 (ARI 0.994 on that window; a 10,000-article matrix takes about 1.2 GB).

With all pairs as candidates (small windows) the result is the exact path's; on large windows
it differs only where the candidates miss a strong pair or the hub term misses a neighbour.
Memory is the vectors, the sparse TF-IDF views and about n * knn_neighbours edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from pipeline.stories.dense import dense_labels, dense_similarity, hdbscan_labels
from pipeline.stories.graph_link import graph_average_linkage
from pipeline.stories.params import ClusterParams
from pipeline.stories.terms import blend, finite_mean, time_penalty
from pipeline.stories.views import TextViews, edge_cosines


@dataclass(frozen=True)
class EdgeGraph:
    """The candidate pairs of a window (i < j, each once) and what the clustering needs of them."""

    i: np.ndarray
    j: np.ndarray
    blended: np.ndarray  # the blend of the three views, before the hub and time terms
    sim: np.ndarray  # the final similarity
    hub: np.ndarray | None  # per article: the floored hub term (None when hub_weight is 0)


def candidate_pairs(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(i, j), i < j, each pair once: the k-NN lists ``idx`` (n, k; -1 = empty slot) made symmetric."""
    n = len(idx)
    rows = np.repeat(np.arange(n, dtype=np.int64), idx.shape[1])
    cols = idx.ravel()
    ok = cols >= 0
    lo, hi = np.minimum(rows[ok], cols[ok]), np.maximum(rows[ok], cols[ok])
    key = np.unique(lo * n + hi)
    return key // n, key % n


def edge_graph(
    vecs: np.ndarray,
    views: TextViews,
    days: np.ndarray | None,
    params: ClusterParams,
    i: np.ndarray,
    j: np.ndarray,
) -> EdgeGraph:
    """The similarities of the pairs (i, j) as the dense path would give them."""
    blended = edge_blend(vecs, views, i, j, params)
    hub = None
    if params.hub_weight:
        hub = floored_hub(i, j, blended, len(vecs), params)
    return EdgeGraph(i, j, blended, edge_sim(i, j, blended, hub, days, params), hub)


def floored_hub(
    i: np.ndarray, j: np.ndarray, blended: np.ndarray, n: int, params: ClusterParams
) -> np.ndarray:
    """Each article's mean over its ``hub_neighbours`` best edges, never below ``hub_floor``."""
    hub = finite_mean(top_values(i, j, blended, n, params.hub_neighbours)).astype(np.float32)
    return np.maximum(hub, np.float32(params.hub_floor), out=hub)


def edge_sim(
    i: np.ndarray,
    j: np.ndarray,
    blended: np.ndarray,
    hub: np.ndarray | None,
    days: np.ndarray | None,
    params: ClusterParams,
) -> np.ndarray:
    """The final similarity of edges: their blend less the hub and time terms."""
    sim = blended.copy()
    if hub is not None:
        sim -= np.float32(params.hub_weight * 0.5) * (hub[i] + hub[j])
    if days is not None:
        sim -= time_penalty(np.abs(days[i] - days[j]), params)
    return sim


def edge_blend(
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


def top_values(i: np.ndarray, j: np.ndarray, sim: np.ndarray, n: int, k: int) -> np.ndarray:
    """(n, k): each article's k highest edge similarities, best first, -inf where it has fewer."""
    # One sort of 64-bit keys (article, then similarity descending) instead of a two-key
    # lexsort: five times faster on the millions of edges of a large window. A float32's bits,
    # with the sign bit flipped for positives and all bits for negatives, order as the floats.
    node = np.concatenate([i, j]).astype(np.uint64)
    bits = np.concatenate([sim, sim]).astype(np.float32).view(np.uint32)
    sign = np.uint32(0x80000000)
    ascending = np.where(bits & sign, ~bits, bits | sign)
    key = (node << np.uint64(32)) | (~ascending).astype(np.uint64)
    key.sort()
    node = (key >> np.uint64(32)).astype(np.int64)
    ascending = ~(key & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    vals = np.where(ascending & sign, ascending & ~sign, ~ascending).view(np.float32)
    start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(node, minlength=n), out=start[1:])
    rank = np.arange(len(node)) - start[node]
    top = rank < k
    out = np.full((n, k), -np.inf, dtype=np.float32)
    out[node[top], rank[top]] = vals[top]
    return out


def strong_components(graph: EdgeGraph, n: int, params: ClusterParams) -> np.ndarray:
    """The component of each article in the graph of pairs at or above the threshold."""
    strong = graph.sim >= params.threshold
    matrix = sparse.csr_matrix(
        (np.ones(int(strong.sum()), dtype=np.int8), (graph.i[strong], graph.j[strong])), shape=(n, n)
    )
    return connected_components(matrix, directed=False)[1]


def label_components(
    vecs: np.ndarray,
    views: TextViews,
    days: np.ndarray | None,
    params: ClusterParams,
    graph: EdgeGraph,
    comp: np.ndarray,
    todo: np.ndarray,
) -> np.ndarray:
    """Labels (-1 = alone, and for every article outside ``todo``) of the components holding the
    articles marked in ``todo``, each clustered by itself as the exact procedure would."""
    n = len(vecs)
    i, j, sim = graph.i, graph.j, graph.sim
    labels = np.full(n, -1, dtype=np.int64)
    wanted = np.zeros(int(comp.max()) + 1 if n else 0, dtype=bool)
    wanted[comp[todo]] = True
    sizes = np.bincount(comp)
    wanted &= sizes >= 2
    if not wanted.any():
        return labels
    # Only edges touching wanted components matter from here on.
    near = wanted[comp[i]] | wanted[comp[j]]
    i, j, sim, blended = i[near], j[near], sim[near], graph.blended[near]
    # The hub term in a component's matrix is taken over the component and these: each article's
    # best candidates outside it. Never lower than the first estimate, so no component grows.
    across = comp[i] != comp[j]
    outside = top_values(i[across], j[across], blended[across], n, params.hub_neighbours)
    del across, blended
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
        if not wanted[c]:
            continue
        size = int(sizes[c])
        members = np.sort(order[bounds[c] : bounds[c + 1]])
        if size > params.dense_max:
            if big_edges is None:
                big_edges = comp[i] == comp[j]
            mask = big_edges & (comp[i] == c)
            cores = sparse_cores(members, i[mask], j[mask], sim[mask], params)
            local = graph_average_linkage(members, i[mask], j[mask], sim[mask], params.threshold, cores)
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


def sparse_cores(
    members: np.ndarray, i: np.ndarray, j: np.ndarray, sim: np.ndarray, params: ClusterParams
) -> np.ndarray:
    """HDBSCAN's cores of one component from its candidate edges only (distance 1 - similarity,
    a missing pair is no edge): the single-linkage tree HDBSCAN cuts is the minimum spanning
    tree, whose edges are nearest-neighbour pairs, so the candidates hold it."""
    m = len(members)
    li, lj = np.searchsorted(members, i), np.searchsorted(members, j)
    # Sparse graphs treat a stored 0 as no edge: identical articles get a tiny distance instead.
    dist = np.maximum(1.0 - sim.astype(np.float64), 1e-9)
    matrix = sparse.csr_matrix(
        (np.concatenate([dist, dist]), (np.concatenate([li, lj]), np.concatenate([lj, li]))), shape=(m, m)
    )
    return hdbscan_labels(matrix, params)


def _assign(labels: np.ndarray, idx: np.ndarray, local: np.ndarray, offset: int) -> None:
    labels[idx] = np.where(local >= 0, local + offset, -1)
