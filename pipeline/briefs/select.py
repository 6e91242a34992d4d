"""Choosing sentences: centrality across outlets, then maximal marginal relevance (MMR).

Sentences are compared as TF-IDF vectors over the story's own sentences (LexRank's
choice): deterministic, cheap, and exact about names and numbers, which is what tells one
development of a story from another. Centrality rewards what *several outlets* say: a
sentence scores its mean best match in each other outlet's sentences, blended with its
cosine to the story's overall centre, so one outlet posting ten updates cannot dominate.
MMR then takes the most central sentence and, after it, the best trade-off between
centrality and similarity to what was already taken, so a brief never says one thing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

# MMR weight of centrality against redundancy (Carbonell & Goldstein's λ).
MMR_LAMBDA = 0.7
# A candidate this similar to an already chosen sentence repeats it.
REDUNDANT_COSINE = 0.55
# News puts the key facts first: a small bonus for an article's first sentences.
LEAD_BONUS = 0.05


@dataclass(frozen=True)
class Candidate:
    text: str
    outlet: str
    # Position of the sentence in its article (0 = first).
    position: int
    # Sort key for ties: earlier coverage first.
    order: tuple[object, ...]


def sentence_matrix(texts: Sequence[str]) -> sparse.csr_matrix:
    """L2-normalised TF-IDF rows, sparse: a story of 600 articles has thousands of sentences and a
    vocabulary of thousands of words, a dense matrix of which costs seconds to multiply."""
    if not texts:
        return sparse.csr_matrix((0, 0))
    vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True, token_pattern=r"(?u)\b\w+\b")
    try:
        return sparse.csr_matrix(vectorizer.fit_transform(texts))
    except ValueError:  # nothing but stop words
        return sparse.csr_matrix((len(texts), 1))


def similarities(vectors: sparse.csr_matrix) -> np.ndarray:
    """Cosines of every pair of rows (dense: MMR and centrality look at all of them)."""
    return np.asarray((vectors @ vectors.T).toarray())


def centrality(candidates: Sequence[Candidate], vectors: sparse.csr_matrix, sims: np.ndarray) -> np.ndarray:
    """How central each sentence is to what the story's outlets say (``sims``: their cosines)."""
    n = len(candidates)
    if n == 0:
        return np.zeros(0)
    centre = np.asarray(vectors.mean(axis=0)).reshape(-1)
    norm = np.linalg.norm(centre)
    to_centre = vectors @ (centre / norm) if norm > 0 else np.zeros(n)
    outlets = sorted({c.outlet for c in candidates})
    score = to_centre.copy()
    if len(outlets) > 1:
        rows_of = {o: [i for i, c in enumerate(candidates) if c.outlet == o] for o in outlets}
        support = np.zeros(n)
        for o, rows in rows_of.items():
            best = sims[:, rows].max(axis=1)
            support += np.where([c.outlet != o for c in candidates], best, 0.0)
        score = 0.5 * to_centre + 0.5 * support / (len(outlets) - 1)
    lead = np.array([LEAD_BONUS / (1 + c.position) for c in candidates])
    return score + lead


def mmr(
    candidates: Sequence[Candidate],
    sims: np.ndarray,
    scores: np.ndarray,
    *,
    limit: int,
    max_chars: int,
    allowed: Sequence[int] | None = None,
) -> list[int]:
    """Indices of up to ``limit`` central, mutually non-redundant sentences, best first."""
    pool = list(range(len(candidates)) if allowed is None else allowed)
    chosen: list[int] = []
    chars = 0
    while pool and len(chosen) < limit:

        def value(i: int) -> float:
            redundancy = max((sims[i, j] for j in chosen), default=0.0)
            return MMR_LAMBDA * scores[i] - (1 - MMR_LAMBDA) * redundancy

        pool.sort(key=lambda i: (-round(value(i), 9), candidates[i].order))
        best = pool.pop(0)
        if chosen and max(sims[best, j] for j in chosen) >= REDUNDANT_COSINE:
            continue
        if chosen and chars + len(candidates[best].text) > max_chars:
            continue
        chosen.append(best)
        chars += len(candidates[best].text)
    return chosen
