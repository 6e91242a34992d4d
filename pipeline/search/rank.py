"""Free-text search over stories: meaning (embeddings) and words (headline, keywords) together.

The query is embedded with the articles' model and compared with each story's centroid
(cosine), which finds "hostage exchange" in a story headlined "phased truce and hostage
deal" and in one that never uses the words. Word matching on the headline and keywords then
lifts stories that name what was asked for exactly (a person, a place, "COP31"), which an
embedding of a short query can blur:

    score = SEMANTIC_WEIGHT · cosine + WORD_WEIGHT · (share of the query's words the story's
            headline and keywords contain)

Stories below ``MIN_SCORE`` are left out; ties go to the more recent story, then the id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

SEMANTIC_WEIGHT = 0.75
WORD_WEIGHT = 0.25
MIN_SCORE = 0.2

_WORD = re.compile(r"\w+")
_STOP = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is",
        "it", "of", "on", "or", "that", "the", "this", "to", "was", "were", "with", "what", "who",
        "why", "how", "when", "where", "news", "story", "stories", "about",
    }
)  # fmt: skip


def words(text: str) -> set[str]:
    """Content words, lower-cased, with a plural 's' dropped ("hostages" matches "hostage")."""
    out = set()
    for w in _WORD.findall(text.casefold()):
        if w in _STOP or len(w) < 2:
            continue
        out.add(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w)
    return out


def label_terms(headline: str, keywords: Sequence[str]) -> frozenset[str]:
    """The content words of a story's headline and keywords (what a query's words are matched to)."""
    return frozenset(words(headline) | words(" ".join(keywords)))


@dataclass(frozen=True)
class StoryLabel:
    headline: str
    keywords: list[str]
    last_seen: datetime
    # words(headline and keywords), when the caller has them already (computed once per story).
    terms: frozenset[str] | None = None

    def words(self) -> frozenset[str]:
        return self.terms if self.terms is not None else label_terms(self.headline, self.keywords)


@dataclass(frozen=True)
class SearchHit:
    story_id: str
    score: float
    cosine: float
    word_share: float


def search_stories(
    query: str,
    query_vector: np.ndarray,
    story_ids: Sequence[str],
    centroids: np.ndarray,
    labels: Mapping[str, StoryLabel],
    *,
    limit: int = 20,
    min_score: float = MIN_SCORE,
) -> list[SearchHit]:
    """The stories that best answer ``query``; ``centroids`` has one unit row per story id."""
    if not story_ids:
        return []
    wanted = words(query)
    q = np.asarray(query_vector, dtype=np.float32)
    norm = float(np.linalg.norm(q))
    cosines = centroids @ (q / norm) if norm > 0 else np.zeros(len(story_ids), dtype=np.float32)
    hits = []
    for i, sid in enumerate(story_ids):
        label = labels.get(sid)
        share = 0.0
        if wanted and label is not None:
            share = len(wanted & label.words()) / len(wanted)
        cos = float(cosines[i])
        score = SEMANTIC_WEIGHT * cos + WORD_WEIGHT * share
        if score >= min_score:
            hits.append((sid, score, cos, share, label.last_seen if label else None))
    hits.sort(key=lambda h: (-round(h[1], 9), -(h[4].timestamp() if h[4] else 0.0), h[0]))
    return [SearchHit(sid, round(s, 6), round(c, 6), share) for sid, s, c, share, _ in hits[:limit]]
