"""Story labels: a representative headline and a few keywords per story.

Headline: the article closest to the story's centre, so the label says what
most members are about rather than what the first or loudest outlet wrote.
Among near-equally central articles the earliest independent one wins: wire
copies repeat someone else's headline, and the earliest original credits the
outlet that broke the story.

Keywords: class-based TF-IDF as BERTopic defines it, computed here so the
tokenisation is ours (no numbers, stop words of each article's language, unigrams and bigrams
that never span punctuation). Each story is one "class" (all its articles
joined); a term scores

    W(t, c) = tf(t, c) * log(1 + A / f(t))

with tf the term's share of the class's terms (L1-normalised count), f(t) the
term's count over all classes and A the average number of terms per class.
Words every story uses get a small weight; words only this story uses a large one.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import numpy as np

from pipeline.stories.stop_words import stop_words

# Cosines within this margin of the best count as equally central: embedding
# noise is larger than that, and the earliest original is the better credit.
NEAR_TIE_COSINE = 0.02

# Bigrams never cross sentence or clause punctuation ("summit. Leaders" is not a phrase).
_SEGMENT_BREAK = re.compile(r"[.,;:!?()\[\]{}\"“”«»|/\\\n\r\t–—]+")
_TOKEN = re.compile(r"\w+(?:['’\-]\w+)*")
_POSSESSIVE = re.compile(r"['’]s$")
# "don't", "they're": contractions are function words however they are spelt.
_CONTRACTION_TAILS = frozenset({"t", "re", "ve", "ll", "d", "m"})

# Stories smaller than this relabel only when they double: a headline that
# changes with every new article of a small story is noise to the reader.
_SMALL_STORY_GROWTH = 3

# Terms in more than this share of the stories are never keywords.
_MAX_STORY_SHARE = 0.5

# A phrase replaces a chosen word it contains when it occurs at least this
# share as often as the word; rarer phrases are one outlet's wording.
_PHRASE_REPLACES_WORD = 0.67


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


def ctfidf_keywords(
    docs_by_story: Mapping[str, Sequence[str]],
    top_n: int = 5,
    *,
    languages: Mapping[str, Sequence[str | None]] | None = None,
) -> dict[str, list[str]]:
    """Top keywords per story by class-based TF-IDF against the other stories.

    Every story in the mapping is one class, so pass all live stories at once:
    a word is informative for a story only relative to the others. With three
    or more stories, a term used by more than half of them is never a keyword.
    In a story of several articles, terms at least two articles share come
    before terms of a single article. A term whose words are all shown already
    is skipped; a phrase replaces a chosen word of it when it occurs nearly as
    often. Keywords keep their most frequent original casing. ``languages``, per
    story parallel to its documents, picks each document's stop words (English
    for a missing or unknown language; see ``stop_words``).
    """
    counts: dict[str, Counter[str]] = {}
    doc_freq: dict[str, Counter[str]] = {}
    n_docs: dict[str, int] = {}
    surface: dict[str, Counter[str]] = defaultdict(Counter)
    for story_id, docs in docs_by_story.items():
        story_counts: Counter[str] = Counter()
        story_df: Counter[str] = Counter()
        langs = (languages or {}).get(story_id) or ()
        for i, doc in enumerate(docs):
            terms = _terms(doc or "", stop_words(langs[i] if i < len(langs) else None))
            for term, shown in terms:
                story_counts[term] += 1
                surface[term][shown] += 1
            story_df.update({term for term, _ in terms})
        counts[story_id] = story_counts
        doc_freq[story_id] = story_df
        n_docs[story_id] = sum(1 for doc in docs if doc and doc.strip())

    totals = {sid: sum(c.values()) for sid, c in counts.items()}
    term_freq: Counter[str] = Counter()
    for story_counts in counts.values():
        term_freq.update(story_counts)
    nonempty = [t for t in totals.values() if t > 0]
    avg_terms = sum(nonempty) / len(nonempty) if nonempty else 0.0
    # A word most stories use distinguishes none of them ("officials", "government"),
    # however often one story repeats it. Needs a few stories to judge "most".
    class_freq: Counter[str] = Counter()
    for story_counts in counts.values():
        class_freq.update(story_counts.keys())
    too_common = (
        {t for t, n in class_freq.items() if n > _MAX_STORY_SHARE * len(nonempty)}
        if len(nonempty) >= 3
        else set()
    )

    result: dict[str, list[str]] = {}
    for story_id, story_counts in counts.items():
        total = totals[story_id]
        if total == 0:
            result[story_id] = []
            continue
        score = {
            term: (count / total) * math.log(1.0 + avg_terms / term_freq[term])
            for term, count in story_counts.items()
            if term not in too_common
        }
        # Terms several articles share describe the story; a term from one article
        # may be that outlet's aside, so those only fill remaining places.
        multi = n_docs[story_id] >= 2
        shared = [t for t in score if multi and doc_freq[story_id][t] >= 2]
        single = [t for t in score if not multi or doc_freq[story_id][t] < 2]
        # Equal scores: a shared phrase beats its words; among one-article terms a
        # word is safer than an accidental phrase. Then alphabetical, for stable output.
        shared.sort(key=lambda t: (-score[t], -t.count(" "), t))
        single.sort(key=lambda t: (-score[t], t.count(" "), t))
        chosen = _diverse(shared + single, story_counts, top_n)
        result[story_id] = [_display(term, surface[term]) for term in chosen]
    return result


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


def _terms(text: str, stop: frozenset[str]) -> list[tuple[str, str]]:
    """(folded term, original form) for the unigrams and bigrams of one text."""
    out: list[tuple[str, str]] = []
    for segment in _SEGMENT_BREAK.split(text):
        run: list[tuple[str, str]] = []
        for match in _TOKEN.finditer(segment):
            shown = _POSSESSIVE.sub("", match.group())
            folded = shown.casefold().replace("’", "'")
            if _keep(folded, stop):
                out.append((folded, shown))
                if run:
                    prev_folded, prev_shown = run[-1]
                    out.append((f"{prev_folded} {folded}", f"{prev_shown} {shown}"))
                run.append((folded, shown))
            else:
                # A stop word or number between two words breaks the phrase.
                run = []
    return out


def _keep(token: str, stop: frozenset[str]) -> bool:
    if len(token) < 2 or token in stop:
        return False
    if token.partition("'")[2] in _CONTRACTION_TAILS:
        return False
    # Numbers, dates, amounts and ordinals ("45c", "10th") say little on their own;
    # names like "g7" or "covid-19" start with a letter and stay.
    return token[0].isalpha() and "_" not in token


def _diverse(ranked: Sequence[str], counts: Mapping[str, int], top_n: int) -> list[str]:
    """Pick terms in rank order, skipping ones whose words are already shown.

    A phrase that overlaps a chosen keyword is skipped, except that it replaces
    a chosen single word it contains when it occurs nearly as often (the phrase
    is then the better label: "interest rates" over "interest").
    """
    chosen: list[str] = []
    for term in ranked:
        if len(chosen) >= top_n:
            break
        words = set(term.split())
        covered = {w for c in chosen for w in c.split()}
        if words <= covered:
            continue
        if words & covered:
            replaceable = [
                i
                for i, c in enumerate(chosen)
                if c in words and counts[term] >= _PHRASE_REPLACES_WORD * counts[c]
            ]
            others_overlap = (words & covered) - {chosen[i] for i in replaceable}
            if replaceable and not others_overlap:
                chosen[replaceable[0]] = term
                for i in reversed(replaceable[1:]):
                    del chosen[i]
            continue
        chosen.append(term)
    return chosen


def _display(term: str, forms: Counter[str]) -> str:
    if not forms:
        return term
    # Most frequent surface form; ties go to the lowercase-most form for a calm look.
    return min(forms.items(), key=lambda kv: (-kv[1], kv[0].swapcase()))[0]


def _headline_key(headline: str) -> str:
    return " ".join(headline.split()).casefold()
