"""Story keywords: class-based TF-IDF as BERTopic defines it, computed here so the tokenisation is
ours (no numbers, stop words of each article's language, unigrams and bigrams that never span
punctuation). Each story is one "class" (all its articles joined); a term scores

    W(t, c) = tf(t, c) * log(1 + A / f(t))

with tf the term's share of the class's terms (L1-normalised count), f(t) the term's count over all
classes and A the average number of terms per class. Words every story uses get a small weight;
words only this story uses a large one.

Counting is vectorised: each document becomes a run of token ids (one Python step per token, with
each distinct token's normal form worked out once), and the term, class and document counts are
sorts over integer codes. Scores and rankings are then worked out for the stories asked for only,
so a run that relabels a few stories against 100,000 contrast articles ranks a few stories' terms.
"""

from __future__ import annotations

import math
import re
from array import array
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.stories.packed_keys import among_sorted, key_runs, packed_keys
from pipeline.stories.stop_words import stop_words

# Bigrams never cross sentence or clause punctuation ("summit. Leaders" is not a phrase).
_SEGMENT_BREAK = r"[.,;:!?()\[\]{}\"“”«»|/\\\n\r\t–—]+"
_TOKEN = r"\w+(?:['’\-]\w+)*"
# A token (group 1) or a break (group 1 empty). Token and break characters never overlap, so one
# scan finds the tokens that splitting at breaks first would.
_PIECES = re.compile(rf"({_TOKEN})|{_SEGMENT_BREAK}")
_POSSESSIVE = re.compile(r"['’]s$")
# "don't", "they're": contractions are function words however they are spelt.
_CONTRACTION_TAILS = frozenset({"t", "re", "ve", "ll", "d", "m"})

# Terms in more than this share of the stories are never keywords.
_MAX_STORY_SHARE = 0.5

# A phrase replaces a chosen word it contains when it occurs at least this
# share as often as the word; rarer phrases are one outlet's wording.
_PHRASE_REPLACES_WORD = 0.67

# A position in the token stream that is no kept word: a stop word, a number, a break, a document start.
_GAP = -1


def ctfidf_keywords(
    docs_by_story: Mapping[str, Sequence[str]],
    top_n: int = 5,
    *,
    languages: Mapping[str, Sequence[str | None]] | None = None,
    only: Collection[str] | None = None,
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
    for a missing or unknown language; see ``stop_words``). ``only``: the stories
    whose keywords are wanted (default: all); the others still count as classes.
    """
    stream = _Stream.of(docs_by_story, languages or {})
    wanted = [s for s in docs_by_story if only is None or s in only]
    if not (stream.tokens != _GAP).any():
        return {s: [] for s in wanted}
    counts = _Counts.of(stream, [stream.story_index[s] for s in wanted])
    result: dict[str, list[str]] = {}
    for story_id in wanted:
        ranked, story_counts = counts.ranked(stream, stream.story_index[story_id])
        result[story_id] = _diverse(ranked, story_counts, top_n)
    shown = counts.display_forms(stream, {t for terms in result.values() for t in terms})
    return {story_id: [shown[t] for t in terms] for story_id, terms in result.items()}


@dataclass
class _Stream:
    """Every document as token ids, one stream: ``tokens[p]`` is a form id (a kept word as folded
    and as shown) or ``_GAP``; ``doc_at[p]`` its document. Each document starts with a gap."""

    story_index: dict[str, int]
    story_of_doc: np.ndarray
    nonempty_docs: np.ndarray  # per story: documents with text
    tokens: np.ndarray
    doc_at: np.ndarray
    folded: list[str]  # word id -> folded word
    shown: list[str]  # form id -> word as written
    word_of_form: np.ndarray  # form id -> word id

    @classmethod
    def of(
        cls, docs_by_story: Mapping[str, Sequence[str]], languages: Mapping[str, Sequence[str | None]]
    ) -> _Stream:
        forms = _Forms()
        tokens = array("q")
        lengths: list[int] = []
        story_of_doc: list[int] = []
        nonempty: list[int] = []
        for k, (story_id, docs) in enumerate(docs_by_story.items()):
            langs = languages.get(story_id) or ()
            for i, doc in enumerate(docs):
                ids = forms.ids(doc or "", stop_words(langs[i] if i < len(langs) else None))
                tokens.append(_GAP)
                tokens.extend(ids)
                lengths.append(len(ids) + 1)
                story_of_doc.append(k)
            nonempty.append(sum(1 for doc in docs if doc and doc.strip()))
        return cls(
            story_index={s: k for k, s in enumerate(docs_by_story)},
            story_of_doc=np.array(story_of_doc, dtype=np.int64),
            nonempty_docs=np.array(nonempty, dtype=np.int64),
            tokens=np.frombuffer(tokens, dtype=np.int64) if tokens else np.zeros(0, dtype=np.int64),
            doc_at=np.repeat(np.arange(len(lengths), dtype=np.int32), lengths),
            folded=forms.folded,
            shown=forms.shown,
            word_of_form=np.array(forms.word_of_form, dtype=np.int64),
        )

    def kept(self) -> tuple[np.ndarray, np.ndarray]:
        """Stream positions of the unigrams, and of the bigrams (each at its second word)."""
        kept = self.tokens != _GAP
        return np.flatnonzero(kept), np.flatnonzero(kept[1:] & kept[:-1]) + 1

    def occurrences(self) -> tuple[np.ndarray, np.ndarray]:
        """Every term occurrence as (term code, document). A unigram's code is its word id; a bigram's
        packs both word ids above them."""
        words = len(self.folded)
        uni, bi = self.kept()
        word = np.full(len(self.tokens), _GAP, dtype=np.int32)
        word[uni] = self.word_of_form[self.tokens[uni]]
        code = np.concatenate([word[uni], words + word[bi - 1].astype(np.int64) * words + word[bi]])
        return code, np.concatenate([self.doc_at[uni], self.doc_at[bi]])

    def term_text(self, code: int) -> str:
        words = len(self.folded)
        if code < words:
            return self.folded[code]
        first, second = divmod(code - words, words)
        return f"{self.folded[first]} {self.folded[second]}"


class _Forms:
    """Token ids for documents: each distinct token is normalised once per stop-word list."""

    def __init__(self) -> None:
        self.folded: list[str] = []
        self.shown: list[str] = []
        self.word_of_form: list[int] = []
        self._word: dict[str, int] = {}
        self._form: dict[tuple[str, str], int] = {}
        self._memo: dict[frozenset[str], _Memo] = {}

    def ids(self, text: str, stop: frozenset[str]) -> list[int]:
        memo = self._memo.get(stop)
        if memo is None:
            memo = self._memo[stop] = _Memo(lambda token: self._learn(token, stop))
        # map() over the memo's lookup: the per-token step stays in C for every token seen before.
        return list(map(memo.__getitem__, _PIECES.findall(text)))

    def _learn(self, token: str, stop: frozenset[str]) -> int:
        shown = _POSSESSIVE.sub("", token)
        folded = shown.casefold().replace("’", "'")
        if not _keep(folded, stop):
            return _GAP
        form = self._form.get((folded, shown))
        if form is None:
            word = self._word.setdefault(folded, len(self.folded))
            if word == len(self.folded):
                self.folded.append(folded)
            form = self._form[(folded, shown)] = len(self.shown)
            self.shown.append(shown)
            self.word_of_form.append(word)
        return form


class _Memo(dict[str, int]):
    """Token -> form id (or ``_GAP``), learning each token on first sight."""

    def __init__(self, learn: Callable[[str], int]) -> None:
        super().__init__({"": _GAP})
        self._learn = learn

    def __missing__(self, token: str) -> int:
        form = self[token] = self._learn(token)
        return form


@dataclass
class _Counts:
    """Term statistics over all classes, and the term counts of the wanted stories.

    Everything is counted by sorting integer keys: a term and a story (or a document) packed into
    one int64, the term's code times a bound plus the other."""

    term_codes: np.ndarray  # distinct term codes, sorted
    term_freq: np.ndarray  # per term: occurrences in all classes
    too_common: np.ndarray  # per term: in more than half of the classes (three or more)
    avg_terms: float
    totals: np.ndarray  # per story: term occurrences
    # The wanted stories' (story, term) rows, by story then term: term code, count, documents with it.
    row_story: np.ndarray
    row_code: np.ndarray
    row_count: np.ndarray
    row_docs: np.ndarray
    named: dict[str, int] = field(default_factory=dict)  # ranked term -> its code

    @classmethod
    def of(cls, stream: _Stream, wanted: Sequence[int]) -> _Counts:
        code, doc = stream.occurrences()
        n_stories, n_docs = len(stream.story_index), len(stream.story_of_doc)
        bound = int(code.max()) + 1
        if bound * max(n_stories, n_docs) >= 2**62:
            raise ValueError(f"too many distinct words ({len(stream.folded)}) to count keywords")
        story = stream.story_of_doc[doc]
        totals = np.bincount(story, minlength=n_stories)
        nonempty = totals[totals > 0]
        # Term totals and class counts: one sort of (term, story) keys.
        pairs, pair_count = key_runs(packed_keys(code, story, n_stories))
        term_codes, per_term = key_runs(pairs // n_stories)
        starts = np.r_[0, np.cumsum(per_term)[:-1]]
        del pairs
        too_common = (
            per_term > _MAX_STORY_SHARE * len(nonempty)
            if len(nonempty) >= 3
            else np.zeros(len(term_codes), dtype=bool)
        )
        wanted_flag = np.zeros(n_stories, dtype=bool)
        wanted_flag[list(wanted)] = True
        if not wanted_flag.all():
            at = np.flatnonzero(wanted_flag[story])
            code, doc, story = code[at], doc[at], story[at]
        rows, row_count = key_runs(packed_keys(code, story, bound, term_major=False))
        # Documents holding each (story, term): distinct (document, term) keys, then per story.
        doc_terms, _ = key_runs(packed_keys(code, doc, bound, term_major=False))
        del code, doc, story
        doc_terms = packed_keys(
            doc_terms % bound, stream.story_of_doc[doc_terms // bound], bound, term_major=False
        )
        _, row_docs = key_runs(doc_terms)
        return cls(
            term_codes=term_codes,
            term_freq=np.add.reduceat(pair_count, starts),
            too_common=too_common,
            avg_terms=int(nonempty.sum()) / len(nonempty),
            totals=totals,
            row_story=rows // bound,
            row_code=rows % bound,
            row_count=row_count,
            row_docs=row_docs,
        )

    def ranked(self, stream: _Stream, story: int) -> tuple[Iterator[str], dict[str, int]]:
        """The story's terms best first, and their counts in it (filled as terms are ranked)."""
        counts: dict[str, int] = {}
        total = int(self.totals[story])
        lo, hi = np.searchsorted(self.row_story, [story, story + 1])
        if total == 0 or lo == hi:
            return iter(()), counts
        codes, count, docs = self.row_code[lo:hi], self.row_count[lo:hi], self.row_docs[lo:hi]
        term = np.searchsorted(self.term_codes, codes)
        keep = ~self.too_common[term]
        codes, count, docs, term = codes[keep], count[keep], docs[keep], term[keep]
        # The scores as plain floats give them: math.log, once per distinct f(t).
        freq = self.term_freq[term]
        logs = {f: math.log(1.0 + self.avg_terms / f) for f in np.unique(freq).tolist()}
        score = (count / total) * np.array([logs[f] for f in freq.tolist()], dtype=np.float64)
        phrase = (codes >= len(stream.folded)).astype(np.int64)
        # Terms several articles share describe the story; a term from one article
        # may be that outlet's aside, so those only fill remaining places.
        shared = docs >= 2 if stream.nonempty_docs[story] >= 2 else np.zeros(len(codes), dtype=bool)

        def in_order() -> Iterator[str]:
            # Equal scores: a shared phrase beats its words; among one-article terms a
            # word is safer than an accidental phrase. Then alphabetical, for stable output.
            for part, tie in ((shared, -phrase), (~shared, phrase)):
                idx = np.flatnonzero(part)
                idx = idx[np.lexsort((tie[idx], -score[idx]))]
                if len(idx) == 0:
                    continue
                key_s, key_t = score[idx], tie[idx]
                bounds = np.flatnonzero(np.r_[True, (key_s[1:] != key_s[:-1]) | (key_t[1:] != key_t[:-1])])
                for a, b in zip(bounds.tolist(), [*bounds[1:].tolist(), len(idx)], strict=True):
                    block = sorted((stream.term_text(int(codes[j])), int(j)) for j in idx[a:b])
                    for text, j in block:
                        counts[text] = int(count[j])
                        self.named[text] = int(codes[j])
                        yield text

        return in_order(), counts

    def display_forms(self, stream: _Stream, chosen: set[str]) -> dict[str, str]:
        """Each chosen term as most often written in all documents; ties: the lowercase-most form,
        then the form seen first."""
        words, n_forms = len(stream.folded), len(stream.shown)
        wanted = np.array(sorted(self.named[t] for t in chosen), dtype=np.int64)
        uni, bi = stream.kept()
        # Occurrences of a chosen term, in stream order (unigrams, then bigrams: a term's forms are
        # all of one kind), as form codes: a bigram's packs both forms above the unigrams'.
        form = np.concatenate(
            [
                stream.tokens[uni[among_sorted(stream.word_of_form[stream.tokens[uni]], wanted)]],
                _bigram_forms(stream, bi, wanted),
            ]
        )
        codes, first, seen = np.unique(form, return_index=True, return_counts=True)
        written: dict[int, list[tuple[int, str, int]]] = {}
        for f, pos, k in zip(codes.tolist(), first.tolist(), seen.tolist(), strict=True):
            if f < n_forms:
                term, text = int(stream.word_of_form[f]), stream.shown[f]
            else:
                a, b = divmod(f - n_forms, n_forms)
                term = words + int(stream.word_of_form[a]) * words + int(stream.word_of_form[b])
                text = f"{stream.shown[a]} {stream.shown[b]}"
            written.setdefault(term, []).append((pos, text, k))
        # Most frequent surface form; ties go to the lowercase-most form for a calm look.
        return {
            t: min(written[self.named[t]], key=lambda w: (-w[2], w[1].swapcase(), w[0]))[1] for t in chosen
        }


def _bigram_forms(stream: _Stream, bi: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Form codes of the bigram occurrences (positions ``bi``) whose term code is in ``wanted``."""
    words, n_forms = len(stream.folded), len(stream.shown)
    phrases = wanted[wanted >= words] - words
    if len(phrases) == 0:
        return np.zeros(0, dtype=np.int64)
    first, second = stream.tokens[bi - 1], stream.tokens[bi]
    # A cheap filter on the first word, then the exact test on what is left.
    starts = np.zeros(words, dtype=bool)
    starts[phrases // words] = True
    near = np.flatnonzero(starts[stream.word_of_form[first]])
    first, second = first[near], second[near]
    code = stream.word_of_form[first] * words + stream.word_of_form[second]
    hit = among_sorted(code, phrases)
    return n_forms + first[hit] * n_forms + second[hit]


def _keep(token: str, stop: frozenset[str]) -> bool:
    if len(token) < 2 or token in stop:
        return False
    if token.partition("'")[2] in _CONTRACTION_TAILS:
        return False
    # Numbers, dates, amounts and ordinals ("45c", "10th") say little on their own;
    # names like "g7" or "covid-19" start with a letter and stay.
    return token[0].isalpha() and "_" not in token


def _diverse(ranked: Iterator[str] | Sequence[str], counts: Mapping[str, int], top_n: int) -> list[str]:
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
