"""Each article's k most similar articles of a window: the candidate edges of the sparse path.

Up to ``exact_max`` rows the search is exact (faiss ``IndexFlatIP``: blocked matrix products,
O(n^2 d)); above it an inverted-file index (faiss ``IndexIVFFlat``, inner product, about
4 sqrt(n) lists, ``nprobe`` of them searched per query). IVF was chosen by measurement here
(bench/scale.py ann, bench/README.md): it trains and fills in seconds where an HNSW graph takes
half a minute (faiss HNSW) to a minute (usearch) at 100k, and at nprobe 32 it finds 99.9 % of
the true 20 nearest neighbours, where HNSW found 70-73 % of 15.

Deterministic: the index is trained on an evenly spaced sample with faiss's fixed k-means seed,
and the search is exhaustive within the probed lists, so the same vectors give the same neighbours.
"""

from __future__ import annotations

import math

import numpy as np


def knn(
    vectors: np.ndarray, k: int, *, exact_max: int = 20_000, nprobe: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, similarities), each (n, min(k, n-1)), best first; an article is never its own neighbour."""
    vecs = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vecs)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=np.float32)
    if n <= exact_max:
        return _exact(vecs, k)
    return _ivf(vecs, k, nprobe)


def _exact(vecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    index = faiss.IndexFlatIP(vecs.shape[1])
    index.add(vecs)
    return _search(index, vecs, k)


def _ivf(vecs: np.ndarray, k: int, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss  # only windows above exact_max need it

    n, dim = vecs.shape
    nlist = max(1, int(4 * math.sqrt(n)))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    # 40 points per list is what k-means needs; an evenly spaced sample keeps training deterministic.
    step = max(1, n // (40 * nlist))
    # Ten k-means rounds place the lists well enough for search; faiss's default 25 cost minutes at 1M.
    index.cp.niter = 10
    index.train(vecs[::step])
    index.add(vecs)
    index.nprobe = min(nprobe, nlist)
    return _search(index, vecs, k)


def _search(index: object, vecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Self-query of every row; -1 marks a slot the index could not fill."""
    n = len(vecs)
    idx = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    for lo in range(0, n, 65536):
        hi = min(lo + 65536, n)
        d, i = index.search(vecs[lo:hi], k + 1)  # type: ignore[attr-defined]
        # Drop the article itself (usually first; absent when duplicates crowd it out).
        self_hit = i == np.arange(lo, hi)[:, None]
        keep = np.where(self_hit.any(axis=1)[:, None], ~self_hit, np.arange(k + 1)[None, :] < k)
        idx[lo:hi] = i[keep].reshape(hi - lo, k)
        sims[lo:hi] = d[keep].reshape(hi - lo, k)
    return idx, sims
