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
    members: np.ndarray, i: np.ndarray, j: np.ndarray, sim: np.ndarray, threshold: float
) -> np.ndarray:
    """Labels (0..k-1, -1 for articles left alone) for ``members``; edges (i, j, sim) in window indices."""
    m = len(members)
    local = {int(g): k for k, g in enumerate(members.tolist())}
    adj: list[dict[int, float]] = [{} for _ in range(m)]
    for a, b, w in zip(i.tolist(), j.tolist(), sim.tolist(), strict=True):
        la, lb = local[a], local[b]
        adj[la][lb] = adj[la].get(lb, 0.0) + w
        adj[lb][la] = adj[lb].get(la, 0.0) + w
    size = [1] * m
    heap = [(-w, a, b) for a in range(m) for b, w in adj[a].items() if a < b and w >= threshold]
    heapq.heapify(heap)
    alive = [True] * m
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
    # Each article follows the groups that absorbed it to its surviving root.
    root = np.array(parent)
    while True:
        up = root[root]
        if np.array_equal(up, root):
            break
        root = up
    labels = np.full(m, -1, dtype=np.int64)
    _, inverse, counts = np.unique(root, return_inverse=True, return_counts=True)
    multi = counts[inverse] > 1
    _, labels[multi] = np.unique(inverse[multi], return_inverse=True)
    return labels
