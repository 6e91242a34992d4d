"""Counting with sorted int64 keys: the vectorised counts of c-TF-IDF (``keywords``) pack a term
code and a story or document index into one key, sort, and read runs, instead of dictionaries."""

from __future__ import annotations

import numpy as np


def packed_keys(code: np.ndarray, other: np.ndarray, bound: int, *, term_major: bool = True) -> np.ndarray:
    """Sorted int64 keys packing term code and ``other`` (a story or document index, below
    ``bound``): term first, or (``term_major=False``, ``bound`` above every code) the other first."""
    if term_major:
        keys = code * bound
        keys += other
    else:
        keys = other.astype(np.int64) * bound
        keys += code
    keys.sort()
    return keys


def key_runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of sorted ``keys`` and how often each occurs."""
    if len(keys) == 0:
        return keys, np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return keys[starts], np.diff(np.r_[starts, len(keys)])


def among_sorted(values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Boolean: which ``values`` are in sorted ``wanted``."""
    if len(wanted) == 0:
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(wanted, values), len(wanted) - 1)
    return wanted[at] == values
