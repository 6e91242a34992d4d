"""Context for a cluster run: the older articles that new ones must be compared with.

A run clusters a few days of news. A follow-up published a week after the last
article of its story would meet nothing it belongs with, and two reports of one
event eight days apart would never meet at all. So each article without a story
brings its most similar older articles (from the match gate before the window,
assigned to a story or not) into the run, where the same clustering decides as it
would in one big batch over all of them. Measured on the dated gold sets, this is
what makes a daily replay score like a batch run (bench/README.md).
"""

from __future__ import annotations

import numpy as np

from pipeline.stories.neighbours import nearest


def nearest_context(queries: np.ndarray, pool: np.ndarray, k: int, *, exact_max: int = 20_000) -> np.ndarray:
    """Sorted indices into ``pool`` of the union of each query row's ``k`` most similar rows.

    Rows are unit vectors (dot product = cosine). Up to ``exact_max`` pool rows every query is
    compared with every row; a larger pool is searched through inverted lists (the sparse
    path's neighbour search), so a first run over a million-article window does not compare
    every pair. The selection is deterministic: the same inputs always give the same context.
    """
    queries = np.asarray(queries, dtype=np.float32)
    pool = np.asarray(pool, dtype=np.float32)
    if k <= 0 or len(queries) == 0 or len(pool) == 0:
        return np.zeros(0, dtype=np.int64)
    if k >= len(pool):
        return np.arange(len(pool), dtype=np.int64)
    idx, _ = nearest(queries, pool, k, exact_max=exact_max)
    return np.unique(idx[idx >= 0])
