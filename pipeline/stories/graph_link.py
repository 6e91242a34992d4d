"""Average linkage on a sparse graph, for components of the strong-pair graph too big for a matrix.

UPGMA joins the two groups of highest mean pairwise similarity while that mean is at least the
threshold. Here only the candidate edges are known: a group pair's mean is the sum of its edge
similarities over the product of the group sizes, with a pair that is not an edge counting as
0 (what the threshold implies for far-apart articles; graph HAC as in TeraHAC / ParHAC). Groups
with no edge between them never join, so the work follows the edges, not the pairs. Merges go
best first from one heap with lazy deletion; ties break by the smaller indices, so the result
is deterministic.
"""

from __future__ import annotations

import heapq

import numpy as np


def graph_average_linkage(
    members: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    sim: np.ndarray,
    threshold: float,
    seeds: np.ndarray | None = None,
) -> np.ndarray:
    """Labels (0..k-1, -1 for articles left alone) for ``members``; edges (i, j, sim) in window
    indices. ``seeds`` (per member, -1 = none): groups to start from, as the exact procedure starts
    from HDBSCAN's cores; a seed the threshold would not hold together is split first."""
    m = len(members)
    if seeds is not None and (seeds >= 0).any():
        return _labels(_from_seeds(members, i, j, sim, threshold, seeds), m)
    return _labels(_link(np.arange(m), _local_edges(members, i, j, sim), threshold), m)


def _local_edges(
    members: np.ndarray, i: np.ndarray, j: np.ndarray, sim: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edges in positions of ``members`` (sorted window indices)."""
    return np.searchsorted(members, i), np.searchsorted(members, j), sim


def _from_seeds(
    members: np.ndarray, i: np.ndarray, j: np.ndarray, sim: np.ndarray, threshold: float, seeds: np.ndarray
) -> np.ndarray:
    """Group of each member after linking from the seeds (each split first where it must be)."""
    li, lj, w = _local_edges(members, i, j, sim)
    group = np.arange(len(members))
    inner = (seeds[li] >= 0) & (seeds[li] == seeds[lj])
    by_seed = np.argsort(seeds[li[inner]], kind="stable")
    ei, ej, ew = li[inner][by_seed], lj[inner][by_seed], w[inner][by_seed]
    edge_seed = seeds[ei]
    member_order = np.argsort(seeds, kind="stable")
    for seed in np.unique(seeds[seeds >= 0]).tolist():
        lo, hi = np.searchsorted(seeds[member_order], [seed, seed + 1])
        inside = np.sort(member_order[lo:hi])
        elo, ehi = np.searchsorted(edge_seed, [seed, seed + 1])
        local = np.searchsorted(inside, ei[elo:ehi]), np.searchsorted(inside, ej[elo:ehi]), ew[elo:ehi]
        group[inside] = inside[_link(np.arange(len(inside)), local, threshold)]
    return _link(group, (li, lj, w), threshold)


def _link(
    start: np.ndarray, edges: tuple[np.ndarray, np.ndarray, np.ndarray], threshold: float
) -> np.ndarray:
    """Average linkage from the groups ``start`` (each member's group, named by one member);
    returns each member's final group, named by one of its members."""
    m = len(start)
    a_idx, b_idx, weights = edges
    adj: list[dict[int, float]] = [{} for _ in range(m)]
    for a, b, w in zip(start[a_idx].tolist(), start[b_idx].tolist(), weights.tolist(), strict=True):
        if a == b:
            continue
        adj[a][b] = adj[a].get(b, 0.0) + w
        adj[b][a] = adj[b].get(a, 0.0) + w
    size = np.bincount(start, minlength=m).tolist()
    heap = [
        (-w / (size[a] * size[b]), a, b)
        for a in range(m)
        for b, w in adj[a].items()
        if a < b and w / (size[a] * size[b]) >= threshold
    ]
    heapq.heapify(heap)
    alive = [size[a] > 0 for a in range(m)]
    parent = list(range(m))
    while heap:
        neg, a, b = heapq.heappop(heap)
        if not (alive[a] and alive[b]) or b not in adj[a]:
            continue
        if adj[a][b] / (size[a] * size[b]) != -neg:
            continue  # stale: one of the two has grown since this entry was pushed
        # The group with more neighbours absorbs the other: fewer dictionary moves.
        keep, gone = (a, b) if len(adj[a]) >= len(adj[b]) else (b, a)
        alive[gone] = False
        parent[gone] = keep
        del adj[keep][gone]
        for c, w in adj[gone].items():
            if c == keep:
                continue
            total = adj[keep].get(c, 0.0) + w
            adj[keep][c] = total
            adj[c][keep] = total
            del adj[c][gone]
        adj[gone] = {}
        size[keep] += size[gone]
        members_keep = size[keep]
        for c, w in adj[keep].items():
            avg = w / (members_keep * size[c])
            if avg >= threshold:
                heapq.heappush(heap, (-avg, min(keep, c), max(keep, c)))
    # Each group follows the groups that absorbed it to its surviving root.
    root = np.array(parent)
    while True:
        up = root[root]
        if np.array_equal(up, root):
            break
        root = up
    return root[start]


def _labels(group: np.ndarray, m: int) -> np.ndarray:
    """Groups of two or more as labels 0..k-1 (in order of group name), -1 for the rest."""
    labels = np.full(m, -1, dtype=np.int64)
    _, inverse, counts = np.unique(group, return_inverse=True, return_counts=True)
    multi = counts[inverse] > 1
    _, labels[multi] = np.unique(inverse[multi], return_inverse=True)
    return labels
