"""The c-TF-IDF keywords as first written (plain Python dictionaries, every story scored), kept as the
reference the vectorised ``pipeline.stories.keywords`` must agree with exactly."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

from pipeline.stories.stop_words import stop_words

# Bigrams never cross sentence or clause punctuation ("summit. Leaders" is not a phrase).
_SEGMENT_BREAK = re.compile(r"[.,;:!?()\[\]{}\"“”«»|/\\\n\r\t–—]+")
_TOKEN = re.compile(r"\w+(?:['’\-]\w+)*")
_POSSESSIVE = re.compile(r"['’]s$")
# "don't", "they're": contractions are function words however they are spelt.
_CONTRACTION_TAILS = frozenset({"t", "re", "ve", "ll", "d", "m"})

# Terms in more than this share of the stories are never keywords.
_MAX_STORY_SHARE = 0.5

# A phrase replaces a chosen word it contains when it occurs at least this
# share as often as the word; rarer phrases are one outlet's wording.
_PHRASE_REPLACES_WORD = 0.67


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
