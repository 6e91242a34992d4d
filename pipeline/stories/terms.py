"""The terms of a pair's similarity, shared by the dense path (blocks of pairs, ``dense``) and the
sparse path (candidate edges, ``sparse``), so that both compute one and the same similarity."""

from __future__ import annotations

import numpy as np

from pipeline.stories.params import ClusterParams


def blend(
    emb: np.ndarray,
    pair_rel: np.ndarray | None,
    words: np.ndarray | float,
    names: np.ndarray | float,
    params: ClusterParams,
) -> np.ndarray:
    """In place: the embedding cosines ``emb`` of some pairs become their blend of the three views.

    ``pair_rel``: the smaller text reliability of each pair (None when the lexical views are off);
    ``words`` and ``names``: the pairs' TF-IDF cosines (0.0 for a view without vocabulary)."""
    emb *= params.embed_weight
    if pair_rel is not None:
        emb += params.words_weight * pair_rel * words
        emb += params.names_weight * pair_rel * names
        emb /= params.embed_weight + (params.words_weight + params.names_weight) * pair_rel
    return emb


def finite_mean(top: np.ndarray) -> np.ndarray:
    """Row means over the finite entries (-inf marks a missing neighbour); 0 for a row with none."""
    finite = np.isfinite(top)
    return np.where(finite, top, 0).sum(axis=1) / np.maximum(finite.sum(axis=1), 1)


def time_penalty(gap_days: np.ndarray, params: ClusterParams) -> np.ndarray:
    """What pairs ``gap_days`` apart lose (float32); an unknown date (NaN) gets no penalty."""
    gap = np.nan_to_num(gap_days, nan=0.0)
    return (params.time_weight * np.log1p(gap / params.time_scale_days)).astype(np.float32)


_SECONDS_PER_DAY = 86400.0


def day_numbers(times: np.ndarray | None, params: ClusterParams) -> np.ndarray | None:
    """Epoch seconds as days (NaN = unknown), or None when the time term is off."""
    if times is None or not params.time_weight:
        return None
    return np.asarray(times, dtype=np.float64) / _SECONDS_PER_DAY
