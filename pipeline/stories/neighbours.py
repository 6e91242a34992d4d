"""Each article's k most similar articles: the candidate edges of the sparse path.

Up to ``exact_max`` rows the search is exact (every query against every row, in blocks). Above
it the rows are split into inverted lists (spherical k-means, about 4 sqrt(n) lists of about
sqrt(n)/4 rows) and each list's queries are compared, in one matrix product, with the rows of
the ``nprobe`` lists whose centres are nearest to their own list's centre. That is faiss's IVF
search with the probe set chosen per list instead of per query: the same recall here (0.999
of the true 20 neighbours at nprobe 32, bench/README.md), but one BLAS product per list instead
of a distance loop per query, which is what makes a million-article window fit minutes
(faiss ``IndexIVFFlat.search`` at 1M: ~30x its 100k time, n^1.5).

With a CUDA device (torch sees one) the search is exact on it whatever the size: blocks of
queries against all rows are cheap there. Deterministic on one machine: the lists are trained
on an evenly spaced sample with a fixed k-means seed, and the search within the probed lists
is exhaustive, so the same vectors give the same neighbours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

# Similarities held at once by the exact search (queries x all rows): 256 MB of float32.
_BLOCK_CELLS = 1 << 26


@dataclass(frozen=True)
class InvertedLists:
    """A partition of the rows into lists around trained centres, and each list's probe set."""

    centres: np.ndarray  # (nlist, d) float32 unit rows
    probes: np.ndarray  # (nlist, nprobe) the lists searched for queries of each list, own list first

    def assign(self, vectors: np.ndarray) -> np.ndarray:
        """The list of each row: the centre with the highest inner product."""
        out = np.empty(len(vectors), dtype=np.int64)
        for lo in range(0, len(vectors), 65536):
            hi = min(lo + 65536, len(vectors))
            out[lo:hi] = np.argmax(vectors[lo:hi] @ self.centres.T, axis=1)
        return out


def train_lists(vectors: np.ndarray, nprobe: int, nlist: int | None = None) -> InvertedLists:
    """``nlist`` (default about 2 sqrt(n)) lists trained on ``vectors`` (deterministic), each
    with its probe set."""
    import faiss

    n, dim = vectors.shape
    nlist = nlist or max(1, int(2 * math.sqrt(n)))
    # 40 points per list is what k-means needs; an evenly spaced sample keeps training deterministic.
    sample = np.ascontiguousarray(vectors[:: max(1, n // (40 * nlist))], dtype=np.float32)
    # Ten rounds place the lists well enough for search; faiss's default 25 cost minutes at 1M.
    kmeans = faiss.Kmeans(dim, nlist, niter=10, seed=1234, spherical=True, verbose=False)
    kmeans.train(sample)
    centres = np.ascontiguousarray(kmeans.centroids, dtype=np.float32)
    near = centres @ centres.T
    nprobe = min(nprobe, nlist)
    probes = np.argsort(-near, axis=1, kind="stable")[:, :nprobe]
    return InvertedLists(centres=centres, probes=probes)


def knn(
    vectors: np.ndarray, k: int, *, exact_max: int = 20_000, nprobe: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, similarities), each (n, min(k, n-1)), best first; an article is never its own neighbour."""
    vecs = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vecs)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=np.float32)
    if n <= exact_max or uses_gpu():
        return search_exact(vecs, vecs, k, self_offset=0)
    lists = train_lists(vecs, nprobe)
    where = lists.assign(vecs)
    return search_lists(vecs, where, vecs, where, lists, k, self_offset=0)


def nearest(
    queries: np.ndarray, rows: np.ndarray, k: int, *, exact_max: int = 20_000, nprobe: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's k most similar ``rows`` (indices, similarities), best first; -1 where fewer."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    r = np.ascontiguousarray(rows, dtype=np.float32)
    k = min(k, len(r))
    if k <= 0 or len(q) == 0:
        return np.zeros((len(q), 0), dtype=np.int64), np.zeros((len(q), 0), dtype=np.float32)
    if len(r) <= exact_max or uses_gpu():
        return search_exact(q, r, k)
    lists = train_lists(r, nprobe)
    return search_lists(q, lists.assign(q), r, lists.assign(r), lists, k)


def search_exact(
    queries: np.ndarray, rows: np.ndarray, k: int, *, self_offset: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top k of every query among all rows. ``self_offset``: query q is row q + offset,
    which is left out of its own result."""
    torch, device = _torch()
    base = torch.from_numpy(rows).to(device)
    idx = np.empty((len(queries), k), dtype=np.int64)
    sims = np.empty((len(queries), k), dtype=np.float32)
    step = max(64, _BLOCK_CELLS // max(len(rows), 1))
    for lo in range(0, len(queries), step):
        hi = min(lo + step, len(queries))
        block = torch.from_numpy(queries[lo:hi]).to(device) @ base.T
        if self_offset is not None:
            own = torch.arange(lo, hi, device=device) + self_offset
            block[torch.arange(hi - lo, device=device), own] = -math.inf
        top = torch.topk(block, k, dim=1, sorted=True)
        idx[lo:hi] = top.indices.cpu().numpy()
        sims[lo:hi] = top.values.cpu().numpy()
    return idx, sims


def search_lists(
    queries: np.ndarray,
    query_lists: np.ndarray,
    rows: np.ndarray,
    row_lists: np.ndarray,
    lists: InvertedLists,
    k: int,
    *,
    self_offset: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top k of every query among the rows of its list's probe set, one product per list.

    ``self_offset`` as in ``search_exact``. Slots the probed lists cannot fill hold -1 (index)
    and -inf (similarity)."""
    if len(queries) * lists.probes.shape[1] * k <= _BLOCK_CELLS // 4:
        return _search_probed(queries, query_lists, rows, row_lists, lists, k, self_offset=self_offset)
    torch, _ = _torch()
    idx = np.full((len(queries), k), -1, dtype=np.int64)
    sims = np.full((len(queries), k), -np.inf, dtype=np.float32)
    row_order, row_bounds = _grouped(row_lists, len(lists.centres))
    query_order, query_bounds = _grouped(query_lists, len(lists.centres))
    rows_t = torch.from_numpy(rows)
    for lst in range(len(lists.centres)):
        qs = query_order[query_bounds[lst] : query_bounds[lst + 1]]
        if len(qs) == 0:
            continue
        cand = np.sort(
            np.concatenate([row_order[row_bounds[p] : row_bounds[p + 1]] for p in lists.probes[lst]])
        )
        if len(cand) == 0:
            continue
        found, vals = _best_of_block(torch.from_numpy(queries[qs]), rows_t, qs, cand, k, self_offset)
        kk = vals.shape[1]
        idx[qs, :kk] = np.where(np.isneginf(vals), -1, found)
        sims[qs, :kk] = vals
    return idx, sims


def _search_probed(
    queries: np.ndarray,
    query_lists: np.ndarray,
    rows: np.ndarray,
    row_lists: np.ndarray,
    lists: InvertedLists,
    k: int,
    *,
    self_offset: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``search_lists`` for few queries (an hourly run's new articles against a large window):
    one product per probed list with the queries that probe it, so that each list's rows are
    gathered once, not once per query list that probes it; then each query's k best of its
    probed lists' k best."""
    torch, _ = _torch()
    nlist, nprobe = lists.probes.shape
    slots = lists.probes[query_lists].ravel()  # query q's probed lists at q * nprobe ...
    found = np.full((len(queries) * nprobe, k), -1, dtype=np.int64)
    vals = np.full((len(queries) * nprobe, k), -np.inf, dtype=np.float32)
    row_order, row_bounds = _grouped(row_lists, nlist)
    slot_order, slot_bounds = _grouped(slots, nlist)
    rows_t, queries_t = torch.from_numpy(rows), torch.from_numpy(queries)
    for lst in np.flatnonzero(np.diff(slot_bounds)):
        cand = row_order[row_bounds[lst] : row_bounds[lst + 1]]
        if len(cand) == 0:
            continue
        at = slot_order[slot_bounds[lst] : slot_bounds[lst + 1]]
        qs = at // nprobe
        block_found, block_vals = _best_of_block(
            queries_t[torch.from_numpy(qs)], rows_t, qs, cand, k, self_offset
        )
        found[at, : block_vals.shape[1]] = block_found
        vals[at, : block_vals.shape[1]] = block_vals
    found = found.reshape(len(queries), nprobe * k)
    vals = vals.reshape(len(queries), nprobe * k)
    best = np.argsort(-vals, axis=1, kind="stable")[:, :k]
    sims = np.take_along_axis(vals, best, 1)
    idx = np.where(np.isneginf(sims), -1, np.take_along_axis(found, best, 1))
    return idx, sims


def _best_of_block(
    query_rows: Any, rows_t: Any, qs: np.ndarray, cand: np.ndarray, k: int, self_offset: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """The best min(k, len(cand)) of the candidate rows ``cand`` (sorted) for the queries ``qs``
    (their vectors ``query_rows``), as row indices and similarities; a query is never its own
    neighbour (``self_offset`` as in ``search_exact``)."""
    import torch

    block = query_rows @ rows_t[torch.from_numpy(cand)].T
    if self_offset is not None:
        pos = np.searchsorted(cand, qs + self_offset)
        hit = (pos < len(cand)) & (cand[np.minimum(pos, len(cand) - 1)] == qs + self_offset)
        block[torch.from_numpy(np.flatnonzero(hit)), torch.from_numpy(pos[hit])] = -math.inf
    top = torch.topk(block, min(k, len(cand)), dim=1, sorted=True)
    return cand[top.indices.numpy()], top.values.numpy()


def _grouped(labels: np.ndarray, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ordered by label (stable) and each label's bounds in that order."""
    order = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=groups))])
    return order, bounds


def uses_gpu() -> bool:
    """Whether the search runs on a CUDA device (exactly, whatever the window's size)."""
    return _torch()[1] != "cpu"


def _torch() -> tuple[ModuleType, str]:
    import torch

    return torch, ("cuda" if torch.cuda.is_available() else "cpu")
