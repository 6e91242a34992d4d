"""Clustering quality against gold story labels.

Predicted noise (-1) never groups anything: each noise point counts as its own
singleton cluster, so a clusterer cannot score by calling hard cases noise and
is not punished for leaving a lone article alone. Gold labels are taken as
given (any hashable values; -1 is an ordinary label there).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import adjusted_mutual_info_score

# Gold labels may be any hashable values (story names); predicted labels are ints, -1 = noise.
Gold = Sequence[object] | np.ndarray
Pred = Sequence[int] | np.ndarray


def noise_as_singletons(labels: Pred) -> np.ndarray:
    """Relabel every -1 to a fresh label of its own, keeping other labels' grouping."""
    arr = np.asarray(labels, dtype=np.int64).reshape(-1)
    out = arr.copy()
    noise = np.flatnonzero(arr == -1)
    start = int(arr.max()) + 1 if arr.size else 0
    out[noise] = np.arange(start, start + noise.size)
    return out


def _codes(labels: Gold) -> np.ndarray:
    """Dense integer codes for arbitrary hashable labels."""
    _, inverse = np.unique(np.asarray(labels), return_inverse=True)
    return inverse.reshape(-1)


def _contingency(gold: Gold, pred: Pred) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    g = _codes(gold)
    p = _codes(noise_as_singletons(pred))
    if g.shape != p.shape:
        raise ValueError(f"gold has {g.size} labels but pred has {p.size}")
    # Joint counts of (gold, pred) pairs, plus each side's cluster sizes.
    pairs, joint = np.unique(np.stack([g, p], axis=1), axis=0, return_counts=True)
    gold_size = np.bincount(g)
    pred_size = np.bincount(p)
    return pairs, joint.astype(np.float64), gold_size.astype(np.float64), pred_size.astype(np.float64), g.size


def bcubed(gold: Gold, pred: Pred) -> tuple[float, float, float]:
    """B-cubed (precision, recall, F1), averaged over items; F1 is the harmonic mean of the two averages."""
    pairs, joint, gold_size, pred_size, n = _contingency(gold, pred)
    if n == 0:
        return 1.0, 1.0, 1.0
    # Every item in cell (g, p) has precision joint/|p| and recall joint/|g|.
    precision = float(np.sum(joint * joint / pred_size[pairs[:, 1]]) / n)
    recall = float(np.sum(joint * joint / gold_size[pairs[:, 0]]) / n)
    return precision, recall, _f1(precision, recall)


def pairwise_f1(gold: Gold, pred: Pred) -> tuple[float, float, float]:
    """Pair-counting (precision, recall, F1) over unordered article pairs.

    With no predicted pairs precision is 1 (nothing was wrongly joined); with no
    gold pairs recall is 1 (nothing could be missed).
    """
    _, joint, gold_size, pred_size, _ = _contingency(gold, pred)

    def n_pairs(x: np.ndarray) -> float:
        return float(np.sum(x * (x - 1) / 2))

    both, in_pred, in_gold = n_pairs(joint), n_pairs(pred_size), n_pairs(gold_size)
    precision = both / in_pred if in_pred else 1.0
    recall = both / in_gold if in_gold else 1.0
    return precision, recall, _f1(precision, recall)


def ami(gold: Gold, pred: Pred) -> float:
    """Adjusted mutual information (sklearn), with predicted noise as singletons."""
    g = _codes(gold)
    p = noise_as_singletons(pred)
    if g.shape != p.shape:
        raise ValueError(f"gold has {g.size} labels but pred has {p.size}")
    return float(adjusted_mutual_info_score(g, p))


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0
