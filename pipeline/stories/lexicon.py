"""The TF-IDF models of a window, kept so that articles added later are put in the same terms.

A full run fits both lexical views on the window (sklearn's ``TfidfVectorizer``: sublinear term
frequency, smoothed IDF, unit rows). An incremental run does not refit over the whole window:
new articles are weighted with the kept IDF of the terms the window already had, and terms it
had never seen join the vocabulary with the IDF a refit would give them (they occur in no kept
article, so their document frequency is their count among the new ones). Without that, a new
story's own names would weigh nothing and its reports would look less alike than in a full run.
The IDF of known terms stays frozen until the next full run (``incremental.needs_rebuild``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

from pipeline.stories.views import TextViews, names_docs, names_vectorizer, reliability, word_vectorizer


@dataclass(frozen=True)
class TermModel:
    """One view's fitted vocabulary (term -> column) and IDF, and how it splits a text into terms."""

    analyzer: Callable[[str], list[str]]
    vocabulary: dict[str, int]
    idf: np.ndarray  # float32, one per column
    docs: int  # documents the IDF counts

    @classmethod
    def fitted(cls, vectorizer: TfidfVectorizer, docs: int) -> TermModel:
        return cls(
            vectorizer.build_analyzer(),
            dict(vectorizer.vocabulary_),
            np.asarray(vectorizer.idf_, dtype=np.float32),
            docs,
        )

    def terms(self) -> list[str]:
        """The vocabulary in column order."""
        out = [""] * len(self.vocabulary)
        for term, col in self.vocabulary.items():
            out[col] = term
        return out

    def rows(self, docs: Sequence[str]) -> tuple[TermModel, sparse.csr_matrix]:
        """Unit TF-IDF rows of ``docs`` and the model extended by the terms they bring."""
        counted = [Counter(self.analyzer(doc)) for doc in docs]
        fresh: Counter[str] = Counter()
        for terms in counted:
            fresh.update(t for t in terms if t not in self.vocabulary)
        vocabulary, idf = self.vocabulary, self.idf
        total = self.docs + len(docs)
        if fresh:
            vocabulary = dict(vocabulary)
            added = sorted(fresh)
            for term in added:
                vocabulary[term] = len(vocabulary)
            # sklearn's smoothed IDF, for terms no kept document contains.
            extra = [math.log((1 + total) / (1 + fresh[t])) + 1 for t in added]
            idf = np.concatenate([idf, np.asarray(extra, dtype=np.float32)])
        indptr, indices, data = [0], [], []
        for terms in counted:
            cols = [vocabulary[t] for t in terms]
            weights = [(1.0 + math.log(c)) for c in terms.values()]
            indices.extend(cols)
            data.extend(weights)
            indptr.append(len(indices))
        matrix = sparse.csr_matrix(
            (np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int64), np.asarray(indptr)),
            shape=(len(docs), len(vocabulary)),
        )
        matrix = sparse.csr_matrix(matrix.multiply(idf[None, :]), dtype=np.float32)
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1), dtype=np.float32)).ravel()
        matrix = sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)).astype(np.float32) @ matrix
        return TermModel(self.analyzer, vocabulary, idf, total), sparse.csr_matrix(matrix)


@dataclass(frozen=True)
class Lexicon:
    """Both views' models; None for a view that is off or found no usable words."""

    words: TermModel | None
    names: TermModel | None
    full_words: int
    lexical: bool  # False when both lexical views are off

    def extended(self, texts: Sequence[str]) -> tuple[Lexicon, TextViews]:
        """The views of new texts, and this lexicon grown by their new terms."""
        if not self.lexical:
            return self, TextViews(None, None, None)
        words, words_x = self.words.rows(list(texts)) if self.words else (None, None)
        names, names_x = self.names.rows(names_docs(texts)) if self.names else (None, None)
        views = TextViews(words_x, names_x, reliability(texts, self.full_words))
        return Lexicon(words, names, self.full_words, True), views


def restored_lexicon(
    words: tuple[list[str], np.ndarray, int] | None,
    names: tuple[list[str], np.ndarray, int] | None,
    *,
    full_words: int,
    lexical: bool,
) -> Lexicon:
    """A lexicon from its stored parts: each view's terms in column order, IDF and document count."""

    def model(
        parts: tuple[list[str], np.ndarray, int] | None, factory: Callable[[], TfidfVectorizer]
    ) -> TermModel | None:
        if parts is None:
            return None
        terms, idf, docs = parts
        vocabulary = {t: k for k, t in enumerate(terms)}
        return TermModel(factory().build_analyzer(), vocabulary, np.asarray(idf, dtype=np.float32), docs)

    return Lexicon(model(words, word_vectorizer), model(names, names_vectorizer), full_words, lexical)


def fit_lexicon(
    texts: Sequence[str], *, words_weight: float, names_weight: float, full_words: int
) -> tuple[Lexicon, TextViews]:
    """The window's lexical models and its views under them."""
    if words_weight + names_weight <= 0:
        return Lexicon(None, None, full_words, False), TextViews(None, None, None)
    words, words_x = _fit(list(texts), word_vectorizer()) if words_weight else (None, None)
    names, names_x = _fit(names_docs(texts), names_vectorizer()) if names_weight else (None, None)
    return Lexicon(words, names, full_words, True), TextViews(
        words_x, names_x, reliability(texts, full_words)
    )


def _fit(docs: list[str], vectorizer: TfidfVectorizer) -> tuple[TermModel | None, sparse.csr_matrix | None]:
    """The model fitted on this window and its unit TF-IDF rows; (None, None) when the window
    has no usable words."""
    try:
        matrix = sparse.csr_matrix(vectorizer.fit_transform(docs), dtype=np.float32)
    except ValueError:  # empty vocabulary: only stop words or blanks
        return None, None
    return TermModel.fitted(vectorizer, len(docs)), matrix
