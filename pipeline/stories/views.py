"""The lexical views of a window's texts: TF-IDF over words and over names and numbers.

Fitted once per window on all its texts (sparse matrices, so linear in the window); the dense
path takes cosines of row blocks against all rows, the sparse path of candidate edges only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer


@dataclass(frozen=True)
class TextViews:
    """The lexical views of a window: row-normalised TF-IDF matrices and each text's reliability."""

    words: sparse.csr_matrix | None
    names: sparse.csr_matrix | None
    # Per article: min(words / lexical_full_words, 1); None when the lexical views are off.
    rel: np.ndarray | None

    def take(self, idx: np.ndarray) -> TextViews:
        return TextViews(
            None if self.words is None else self.words[idx],
            None if self.names is None else self.names[idx],
            None if self.rel is None else self.rel[idx],
        )


def text_views(
    texts: Sequence[str], *, words_weight: float, names_weight: float, full_words: int
) -> TextViews:
    """TF-IDF views fitted once on the window's texts (sparse: linear in the window)."""
    if words_weight + names_weight <= 0:
        return TextViews(None, None, None)
    words_x = _tfidf(list(texts), _word_vectorizer()) if words_weight else None
    names_x = _tfidf(_names_docs(texts), _names_vectorizer()) if names_weight else None
    # Per-pair reliability of word overlap: the shorter text's length, capped.
    counts = np.array([len(_WORD.findall(t or "")) for t in texts], dtype=np.float32)
    return TextViews(words_x, names_x, np.minimum(counts / max(full_words, 1), 1.0))


_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
# Tokens for the names view: words (letters, digits, inner apostrophes, dots, hyphens).
_NAME_TOKEN = re.compile(r"[^\W_](?:[\w'’.\-]*[^\W_])?")
_SENTENCE_END = re.compile(r"(?<=[.!?:;\"”])\s+|\n+")


def _names_docs(texts: Sequence[str]) -> list[str]:
    """Each text reduced to its names and numbers: capitalised words not opening a sentence, and digits."""
    docs = []
    for text in texts:
        kept: list[str] = []
        for sentence in _SENTENCE_END.split(text or ""):
            for k, token in enumerate(_NAME_TOKEN.findall(sentence)):
                if token[0].isdigit() or (k > 0 and token[0].isupper()):
                    kept.append(token.lower().rstrip("."))
        docs.append(" ".join(kept))
    return docs


def _word_vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(sublinear_tf=True, stop_words="english", dtype=np.float32)


def _names_vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(sublinear_tf=True, token_pattern=r"\S+", lowercase=False, dtype=np.float32)


def _tfidf(docs: list[str], vectorizer: TfidfVectorizer) -> sparse.csr_matrix | None:
    """Row-normalised TF-IDF vectors fitted on this window; None when it has no usable words."""
    try:
        return sparse.csr_matrix(vectorizer.fit_transform(docs), dtype=np.float32)
    except ValueError:  # empty vocabulary: only stop words or blanks
        return None


def edge_cosines(matrix: sparse.csr_matrix | None, i: np.ndarray, j: np.ndarray) -> np.ndarray | float:
    """Cosine of rows i[e] and j[e] for every edge e (rows are unit vectors), in chunks of edges."""
    if matrix is None:
        return 0.0
    out = np.empty(len(i), dtype=np.float32)
    for lo in range(0, len(i), _EDGE_CHUNK):
        hi = min(lo + _EDGE_CHUNK, len(i))
        out[lo:hi] = np.asarray(matrix[i[lo:hi]].multiply(matrix[j[lo:hi]]).sum(axis=1)).ravel()
    return out


# Edges per chunk of edge_cosines: two gathered (chunk x vocabulary) sparse matrices at a time.
_EDGE_CHUNK = 200_000
