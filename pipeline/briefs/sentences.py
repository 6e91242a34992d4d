"""Splitting article text into sentences a brief can quote.

Rule-based on purpose: deterministic, no model, no download. Handles the cases news copy
actually has: abbreviations ("Mr.", "U.S.", "Jan."), initials, decimal numbers, closing
quotes after the full stop, and line breaks between paragraphs. A dateline such as
"DOHA (Global Wire) — " is dropped from the start of the first sentence: it says where,
not what.
"""

from __future__ import annotations

import re

# Enough of each article for its key facts: news puts them first.
LEAD_CHARS = 2500
# Sentences outside these bounds are fragments (captions, bylines) or run-ons.
MIN_WORDS, MAX_WORDS = 6, 60

_ABBREVIATIONS = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "sen", "rep", "gen", "col", "lt", "sgt", "st", "jr", "sr",
        "inc", "ltd", "co", "corp", "no", "vs", "etc", "approx", "est", "dept", "univ", "gov",
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
    }
)  # fmt: skip
# A full stop, question or exclamation mark, optional closing quotes/brackets, then space.
_BOUNDARY = re.compile(r"([.!?])([\"'”’)\]]*)\s+")
# Reader guidance, not news: "Here is what we know", "Read more", "Click here".
_TEASER = re.compile(
    r"(?i)\b(here is what|here's what|what we know|read more|read our|full coverage|live updates"
    r"|click here|sign up|subscribe)\b"
)
_DATELINE = re.compile(r"^[A-Z][A-Z .'-]{1,40}(?:\([^)]{1,40}\))?\s*[—–-]{1,2}\s+")


def split_sentences(text: str, *, limit: int = LEAD_CHARS) -> list[str]:
    """The sentences of ``text`` (its first ``limit`` characters), whitespace normalised."""
    out: list[str] = []
    for paragraph in text[:limit].splitlines():
        out.extend(_split_paragraph(" ".join(paragraph.split())))
    if out:
        out[0] = _DATELINE.sub("", out[0], count=1)
    return [s for s in out if s]


def _split_paragraph(paragraph: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(paragraph):
        end = match.end(2)
        if match.group(1) == "." and _is_abbreviation(paragraph, match.start(1)):
            continue
        nxt = paragraph[match.end() : match.end() + 1]
        # A new sentence starts with a capital, a digit or an opening quote.
        if nxt and not (nxt.isupper() or nxt.isdigit() or nxt in "\"'“‘("):
            continue
        sentences.append(paragraph[start:end].strip())
        start = match.end()
    tail = paragraph[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def _is_abbreviation(text: str, dot: int) -> bool:
    word_start = dot
    while word_start > 0 and (text[word_start - 1].isalpha() or text[word_start - 1] == "."):
        word_start -= 1
    word = text[word_start:dot]
    if not word:
        return False
    # Initials and dotted acronyms: "J. Smith", "U.S.", "a.m."
    if len(word) == 1 or "." in word:
        return True
    return word.casefold() in _ABBREVIATIONS


def quotable(sentence: str) -> bool:
    """Whether a sentence can stand alone in a brief: a statement of sensible length."""
    words = len(sentence.split())
    if not MIN_WORDS <= words <= MAX_WORDS:
        return False
    # Questions and teasers ("Here is what we know:") do not state anything.
    if sentence.endswith(("?", ":")) or _TEASER.search(sentence):
        return False
    return sentence[0].isalnum() or sentence[0] in "\"“‘'"
