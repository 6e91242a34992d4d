"""The vectorised c-TF-IDF keywords agree exactly with the plain-Python reference they replaced, on
corpora built to hit the awkward cases: ties, casing, "ß"/"ss", possessives, contractions, numbers,
punctuation inside and between words, several languages, empty documents, and keywords asked for a
few stories only."""

from __future__ import annotations

import random

import pytest

from pipeline.stories.keywords import ctfidf_keywords
from tests.ctfidf_reference import ctfidf_keywords as reference

_WORDS = [
    "Summit", "summit", "SUMMIT", "leaders", "Leaders'", "Leader's", "interest", "rates", "Interest",
    "Straße", "straße", "strasse", "STRASSE", "don't", "they’re", "covid-19", "G7", "g7", "45c", "10th",
    "2026",
    "Bank", "bank's", "Canada", "canada", "the", "and", "der", "und", "die", "floods", "Valencia",
    "Jucar", "Turia", "évacués", "Évacués", "O’Neil", "o'neil", "_under", "x", "a-b", "über", "Über",
]  # fmt: skip
_BREAKS = [" ", " ", " ", " ", ". ", ", ", "; ", " - ", " (", ") ", " — ", "\n", " / ", " “", "” ", "!"]


def _doc(rng: random.Random, words: int) -> str:
    out = []
    for _ in range(words):
        out.append(rng.choice(_WORDS))
        out.append(rng.choice(_BREAKS))
    return "".join(out).strip()


def _corpus(seed: int, stories: int) -> tuple[dict[str, list[str]], dict[str, list[str | None]]]:
    rng = random.Random(seed)
    docs: dict[str, list[str]] = {}
    languages: dict[str, list[str | None]] = {}
    for k in range(stories):
        n = rng.choice([0, 1, 1, 2, 3, 5])
        texts = [_doc(rng, rng.randint(0, 14)) for _ in range(n)]
        if texts and rng.random() < 0.2:
            texts[0] = rng.choice(["", "   ", "2026 10th 45c", "the and"])
        docs[f"s{k:03d}"] = texts
        languages[f"s{k:03d}"] = [rng.choice([None, "en", "de", "fr", "ur", "de-AT"]) for _ in texts]
    return docs, languages


@pytest.mark.parametrize("seed", range(12))
def test_every_story_gets_the_keywords_of_the_reference(seed: int) -> None:
    docs, languages = _corpus(seed, stories=2 + seed * 4)
    for top_n in (1, 3, 5, 8):
        expected = reference(docs, top_n, languages=languages)
        assert ctfidf_keywords(docs, top_n, languages=languages) == expected
    assert ctfidf_keywords(docs) == reference(docs)


@pytest.mark.parametrize("seed", range(6))
def test_keywords_of_a_few_stories_are_those_of_the_whole_computation(seed: int) -> None:
    docs, languages = _corpus(100 + seed, stories=30)
    everything = reference(docs, languages=languages)
    wanted = set(list(docs)[seed::5]) | {"not-a-story"}
    few = ctfidf_keywords(docs, languages=languages, only=wanted)
    assert few == {s: everything[s] for s in docs if s in wanted}


def test_stories_without_any_kept_word_get_no_keywords() -> None:
    docs = {"a": ["the and 2026"], "b": [], "c": ["", "  "]}
    assert ctfidf_keywords(docs) == reference(docs) == {"a": [], "b": [], "c": []}
    assert ctfidf_keywords({}) == {}
