"""The lexical views of a window's texts: TF-IDF over words and over names and numbers.

Fitted once per window on all its texts (pipeline/stories/lexicon.py; sparse matrices, so
linear in the window); the dense path takes cosines of row blocks against all rows, the sparse
path of candidate edges only.
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

    def __len__(self) -> int:
        return 0 if self.rel is None else len(self.rel)

    def take(self, idx: np.ndarray) -> TextViews:
        return TextViews(
            None if self.words is None else self.words[idx],
            None if self.names is None else self.names[idx],
            None if self.rel is None else self.rel[idx],
        )


def reliability(texts: Sequence[str], full_words: int) -> np.ndarray:
    """Per-pair reliability of word overlap comes from the shorter text's length, capped."""
    counts = np.array([len(_WORD.findall(t or "")) for t in texts], dtype=np.float32)
    return np.minimum(counts / max(full_words, 1), 1.0)


_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
# Tokens for the names view: words (letters, digits, inner apostrophes, dots, hyphens).
_NAME_TOKEN = re.compile(r"[^\W_](?:[\w'’.\-]*[^\W_])?")
_SENTENCE_END = re.compile(r"(?<=[.!?:;\"”])\s+|\n+")


def names_docs(texts: Sequence[str]) -> list[str]:
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


def word_vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(sublinear_tf=True, stop_words="english", dtype=np.float32)


def names_vectorizer() -> TfidfVectorizer:
    return TfidfVectorizer(sublinear_tf=True, token_pattern=r"\S+", lowercase=False, dtype=np.float32)


def kept_then(first: TextViews, keep: np.ndarray, second: TextViews) -> TextViews:
    """The rows of ``first`` where ``keep`` (a mask) is True, followed by those of ``second``
    (views of one lexicon, whose vocabulary may have grown by terms ``first`` never holds).
    Built from the matrices' arrays in one pass: row indexing and stacking in scipy copy a
    million-row window's matrices twice over and cost seconds."""

    def rows(a: sparse.csr_matrix | None, b: sparse.csr_matrix | None) -> sparse.csr_matrix | None:
        if a is None or b is None:
            return None
        lengths = np.concatenate([np.diff(a.indptr)[keep], np.diff(b.indptr)])
        take = np.repeat(keep, np.diff(a.indptr))
        kind = np.int32 if a.nnz + b.nnz < np.iinfo(np.int32).max else np.int64
        indptr = np.zeros(len(lengths) + 1, dtype=kind)
        np.cumsum(lengths, out=indptr[1:])
        return sparse.csr_matrix(
            (
                np.concatenate([a.data[take], b.data]),
                np.concatenate([a.indices[take], b.indices]).astype(kind, copy=False),
                indptr,
            ),
            shape=(len(lengths), max(a.shape[1], b.shape[1])),
        )

    if first.rel is None or second.rel is None:
        return TextViews(None, None, None)
    return TextViews(
        rows(first.words, second.words),
        rows(first.names, second.names),
        np.concatenate([first.rel[keep], second.rel]),
    )


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
