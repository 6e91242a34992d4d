"""Syndication detection: wire copies republished, lightly edited, by other outlets.

Fingerprint: a 64-bit b-bit MinHash (32 slots of 2 bits) of the set of 3-word
shingles of the article text (headline excluded: republishers rewrite headlines).
Two texts agree on a slot with probability J + (1 - J) / 4, J being the Jaccard
similarity of their shingle sets, so the number of differing slots estimates how
much text they share. A plain 64-bit SimHash was measured against this on the
gedikli, ECB+ and GVA labelled sets (bench/README.md): at the same
zero false positives across different stories it found fewer edited copies.

Decision (thresholds measured on those sets; different-story pairs were never
closer than 11 differing slots except for scraped pages made of one site's
sign-up chrome):
  * at most MAX_SLOT_DISTANCE (6) of 32 slots differ (estimated Jaccard >~ 0.7):
    catches a copy with a new headline, a dateline, an added or dropped closing
    sentence or a few changed words; two outlets writing their own stories on one
    event share far less text (their best pairs differ in 11+ slots);
  * the two come from different sources (one outlet's templated pieces, e.g.
    automated market reports, are not syndication; its exact re-posts are caught
    by storage as the same text from the same source);
  * they are at most max_gap apart in time;
  * both texts have at least MIN_SHINGLES shingles: short blurbs are too generic
    to call copies, and their fingerprint is NO_FINGERPRINT (0), which never matches.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from pipeline.records import Article

NO_FINGERPRINT = 0
SHINGLE_WORDS = 3
MIN_SHINGLES = 15
SLOTS = 32
MAX_SLOT_DISTANCE = 6
DEFAULT_MAX_GAP = timedelta(days=4)

_WORD = re.compile(r"\w+")
_U64 = np.uint64
_LOW_BITS = _U64(0x5555555555555555)


def _constants(label: str, n: int, odd: bool) -> np.ndarray:
    """Fixed pseudo-random 64-bit constants: fingerprints are stored, so they must never change."""
    values = []
    for i in range(n):
        v = int.from_bytes(
            hashlib.blake2b(f"storyline-{label}-{i}".encode(), digest_size=8).digest(), "little"
        )
        values.append(v | 1 if odd else v)
    return np.array(values, dtype=_U64)


_MUL = _constants("minhash-mul", SLOTS, odd=True)
_ADD = _constants("minhash-add", SLOTS, odd=False)
_OUT = _constants("minhash-out", SLOTS, odd=True)
_SHINGLE_MUL = _constants("shingle", SHINGLE_WORDS, odd=True)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads every input bit over the whole word."""
    x = x ^ (x >> _U64(30))
    x = x * _U64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> _U64(27))
    x = x * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _shingle_hashes(text: str) -> np.ndarray:
    words = [w.casefold() for w in _WORD.findall(text or "")]
    if len(words) < SHINGLE_WORDS:
        return np.zeros(0, dtype=_U64)
    cache: dict[str, int] = {}
    ids = [
        cache.setdefault(w, int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little"))
        for w in words
    ]
    h = np.array(ids, dtype=_U64)
    n = len(words) - SHINGLE_WORDS + 1
    with np.errstate(over="ignore"):
        acc = np.zeros(n, dtype=_U64)
        for k in range(SHINGLE_WORDS):
            acc = _mix(acc + h[k : k + n] * _SHINGLE_MUL[k])
    return np.unique(acc)


def fingerprint(text: str) -> int:
    """64-bit b-bit MinHash of the text's word 3-shingles; NO_FINGERPRINT for short texts."""
    shingles = _shingle_hashes(text)
    if len(shingles) < MIN_SHINGLES:
        return NO_FINGERPRINT
    with np.errstate(over="ignore"):
        permuted = _mix(shingles[None, :] * _MUL[:, None] + _ADD[:, None])
        chosen = shingles[permuted.argmin(axis=1)]
        slots = (_mix(chosen) * _OUT) >> _U64(62)
    value = 0
    for i, bits in enumerate(slots.tolist()):
        value |= int(bits) << (2 * i)
    # 0 is the "no fingerprint" marker; a real text landing on it is a 2**-64 event.
    return value or 1


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    as_bytes = x.view(np.uint8).reshape(*x.shape, 8)
    return _BYTE_BITS[as_bytes].sum(axis=-1)


_BYTE_BITS = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


def slot_distance(a: int | np.ndarray, b: int | np.ndarray) -> np.ndarray:
    """Number of the 32 two-bit slots in which fingerprints differ (0 = same shingle sample)."""
    x = np.asarray(a, dtype=_U64) ^ np.asarray(b, dtype=_U64)
    return _popcount((x | (x >> _U64(1))) & _LOW_BITS)


def is_copy(a: int, b: int, max_distance: int = MAX_SLOT_DISTANCE) -> bool:
    """Whether two fingerprints are near-identical texts."""
    if a == NO_FINGERPRINT or b == NO_FINGERPRINT:
        return False
    return int(slot_distance(a, b)) <= max_distance


def _field(item: Any, name: str, index: int) -> Any:
    return getattr(item, name) if hasattr(item, name) else item[index]


class OriginalsIndex:
    """Fingerprints of originals to match new articles against, grown in place.

    A writer that stores batch after batch (one per source) keeps one index for the whole run, so
    each batch costs its own size times the originals, not a rebuild of every original first: the
    rebuild made a 10,000-feed ingest quadratic in Python (bench/fetch_scale.py).
    """

    def __init__(self, existing: Iterable[Any] = ()) -> None:
        self.ids: list[str] = []
        self.fps = np.zeros(64, dtype=_U64)
        self.times = np.zeros(64, dtype=np.float64)
        self.sources = np.zeros(64, dtype=np.int64)
        self.codes: dict[str, int] = {}
        self.count = 0
        for item in existing:
            fp = int(_field(item, "fingerprint", 2) or NO_FINGERPRINT)
            if fp != NO_FINGERPRINT:
                when = getattr(item, "effective_at", None) or _field(item, "published_at", 3)
                self.add(_field(item, "article_id", 0), _field(item, "source", 1), fp, when)

    def add(self, article_id: str, source: str, fp: int, when: datetime) -> None:
        if self.count == len(self.fps):
            size = 2 * len(self.fps)
            self.fps = np.resize(self.fps, size)
            self.times = np.resize(self.times, size)
            self.sources = np.resize(self.sources, size)
        self.ids.append(article_id)
        self.fps[self.count] = fp
        self.times[self.count] = when.timestamp()
        self.sources[self.count] = self.codes.setdefault(source, len(self.codes))
        self.count += 1

    def match(self, article: Article, fp: int, max_distance: int, gap: float) -> str | None:
        """The earliest original ``article`` copies: another source's, at most ``gap`` s apart."""
        if not self.count:
            return None
        n = self.count
        t = (article.published_at or article.fetched_at).timestamp()
        hits = np.flatnonzero(
            (slot_distance(self.fps[:n], fp) <= max_distance)
            & (self.sources[:n] != self.codes.get(article.source, -1))
            & (np.abs(self.times[:n] - t) <= gap)
        )
        found = [h for h in hits.tolist() if self.ids[h] != article.article_id]
        if not found:
            return None
        return self.ids[min(found, key=lambda h: (self.times[h], self.ids[h]))]


def find_duplicates(
    new: Sequence[Article],
    existing: Sequence[Any] | OriginalsIndex,
    fingerprints: Mapping[str, int] | None = None,
    *,
    max_distance: int = MAX_SLOT_DISTANCE,
    max_gap: timedelta = DEFAULT_MAX_GAP,
) -> dict[str, str]:
    """Map each new article that copies an earlier original to that original's id.

    ``existing`` holds stored originals as (article_id, source, fingerprint, time)
    tuples or objects with those attributes (time named effective_at or
    published_at), or is an ``OriginalsIndex``, which then takes in the new
    originals of this batch too. ``fingerprints`` maps new article ids to
    fingerprint(text); missing ones are computed. Among the new batch, the earliest
    of a group of copies (by published time, else fetch time, then id) is the
    original. When several originals match, the earliest wins.
    """
    prints = dict(fingerprints or {})
    for a in new:
        if a.article_id not in prints:
            prints[a.article_id] = fingerprint(a.text)
    index = existing if isinstance(existing, OriginalsIndex) else OriginalsIndex(existing)
    gap = max_gap.total_seconds()
    result: dict[str, str] = {}
    for a in sorted(new, key=lambda a: (a.published_at or a.fetched_at, a.article_id)):
        fp = prints[a.article_id]
        if fp == NO_FINGERPRINT:
            continue
        original = index.match(a, fp, max_distance, gap)
        if original is not None:
            result[a.article_id] = original
        else:
            index.add(a.article_id, a.source, fp, a.published_at or a.fetched_at)
    return result
