"""How a window's clusters are numbered, whichever path found them."""

from __future__ import annotations

import numpy as np


def canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Singletons become noise; clusters are numbered by their first article."""
    labels = np.asarray(labels, dtype=np.int64)
    values, first, inverse, counts = np.unique(
        labels, return_index=True, return_inverse=True, return_counts=True
    )
    real = np.flatnonzero((values >= 0) & (counts >= 2))
    number = np.full(len(values), -1, dtype=np.int64)
    number[real[np.argsort(first[real], kind="stable")]] = np.arange(len(real))
    return number[inverse.ravel()]
