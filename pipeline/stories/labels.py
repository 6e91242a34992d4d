"""Story labels: a representative headline and a few keywords per story.

Headline: the article closest to the story's centre, so the label says what
most members are about rather than what the first or loudest outlet wrote.
Among near-equally central articles the earliest independent one wins: wire
copies repeat someone else's headline, and the earliest original credits the
outlet that broke the story.

Keywords: class-based TF-IDF (``pipeline.stories.keywords``, re-exported here).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np

from pipeline.stories.keywords import ctfidf_keywords

__all__ = [
    "NEAR_TIE_COSINE",
    "clashing",
    "ctfidf_keywords",
    "needs_relabel",
    "representative_index",
    "unique_headlines",
]

# Cosines within this margin of the best count as equally central: embedding
# noise is larger than that, and the earliest original is the better credit.
NEAR_TIE_COSINE = 0.02

# Stories smaller than this relabel only when they double: a headline that
# changes with every new article of a small story is noise to the reader.
_SMALL_STORY_GROWTH = 3


def representative_index(
    vectors: np.ndarray,
    published: Sequence[datetime | None],
    is_duplicate: Sequence[bool],
    *,
    margin: float = NEAR_TIE_COSINE,
) -> int:
    """Index of the article whose headline should represent the story.

    The centre is the mean of all member vectors (copies included: they are
    part of what the story is). Candidates are the independent articles, or
    every article when all are copies. The best cosine to the centre wins;
    candidates within ``margin`` of it are a tie broken by earliest
    publication, then by position.
    """
    vecs = np.asarray(vectors, dtype=np.float64)
    n = len(vecs)
    if vecs.ndim != 2 or n == 0:
        raise ValueError("representative_index needs a non-empty (n, dim) array")
    if len(published) != n or len(is_duplicate) != n:
        raise ValueError("vectors, published and is_duplicate must have the same length")
    unit = _normalise_rows(vecs)
    centre = unit.mean(axis=0)
    norm = np.linalg.norm(centre)
    sims = unit @ (centre / norm) if norm > 0 else np.zeros(n)

    candidates = [i for i in range(n) if not is_duplicate[i]] or list(range(n))
    best = max(sims[i] for i in candidates)
    near = [i for i in candidates if sims[i] >= best - margin]
    # Unknown publication times sort last: they cannot claim to be first.
    far_future = datetime.max.replace(tzinfo=UTC)
    return min(near, key=lambda i: (_as_utc(published[i]) or far_future, i))


def clashing(candidates: Mapping[str, str]) -> set[str]:
    """The stories whose headline another story shares (as ``unique_headlines`` compares them):
    only these can need their keywords to tell them apart."""
    groups: dict[str, list[str]] = defaultdict(list)
    for story_id, headline in candidates.items():
        groups[_headline_key(headline)].append(story_id)
    return {story_id for ids in groups.values() if len(ids) > 1 for story_id in ids}


def unique_headlines(
    candidates: Mapping[str, str],
    keywords: Mapping[str, Sequence[str]] | None = None,
    first_seen: Mapping[str, datetime] | None = None,
) -> dict[str, str]:
    """Make the headlines of live stories distinct from one another.

    When several stories would show the same headline (compared ignoring case
    and spacing), the oldest story (``first_seen``, then story id) keeps it;
    each other one gets its first keyword that the headline does not already
    contain, else its start date, else a counter. Pass every live story.
    """
    keywords = keywords or {}
    first_seen = first_seen or {}
    far_future = datetime.max.replace(tzinfo=UTC)

    def age_key(story_id: str) -> tuple[datetime, str]:
        return (_as_utc(first_seen.get(story_id)) or far_future, story_id)

    groups: dict[str, list[str]] = defaultdict(list)
    for story_id, headline in candidates.items():
        groups[_headline_key(headline)].append(story_id)

    result: dict[str, str] = {}
    taken: set[str] = set()
    # Unclashed headlines first, so a disambiguated one can never steal an existing label.
    for ids in groups.values():
        if len(ids) == 1:
            result[ids[0]] = candidates[ids[0]]
            taken.add(_headline_key(candidates[ids[0]]))
    for ids in groups.values():
        if len(ids) == 1:
            continue
        ordered = sorted(ids, key=age_key)
        keeper = ordered[0]
        result[keeper] = candidates[keeper]
        taken.add(_headline_key(candidates[keeper]))
        for story_id in ordered[1:]:
            base = candidates[story_id]
            options = [
                f"{base} — {kw}"
                for kw in keywords.get(story_id, ())
                if kw and kw.casefold() not in base.casefold()
            ]
            started = _as_utc(first_seen.get(story_id))
            if started is not None:
                options.append(f"{base} ({started:%Y-%m-%d})")
            label = next((o for o in options if _headline_key(o) not in taken), None)
            counter = 2
            while label is None or _headline_key(label) in taken:
                label = f"{base} ({counter})"
                counter += 1
            result[story_id] = label
            taken.add(_headline_key(label))
    return result


def needs_relabel(old_count: int, new_count: int) -> bool:
    """Whether a story's membership changed enough to recompute its labels.

    Never-labelled stories always need labels. Otherwise the change (growth or
    shrinkage) must reach 20% of the old size, and for small stories it must
    also reach min(old size, 3) articles, so a 2-article story relabels at 4
    and a 1-article story at 2, not at every new article.
    """
    if old_count <= 0:
        return new_count > 0
    change = abs(new_count - old_count)
    needed = max(math.ceil(0.2 * old_count), min(old_count, _SMALL_STORY_GROWTH))
    return change >= needed


def _normalise_rows(vecs: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vecs / norms


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    # Naive times are taken as UTC, the project's storage convention.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _headline_key(headline: str) -> str:
    return " ".join(headline.split()).casefold()
