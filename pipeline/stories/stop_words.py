"""Stop words for keywords, per language.

English: scikit-learn's list adjusted for news copy (words such as "said" and weekdays added,
words such as "fire" and "bill" that are news topics kept). Other languages: the lists of the
``stop-words`` package (33 languages: de, es, fr, ru, ar, fa, zh, ...). A language without a list
(Urdu, for one) falls back to the English list, which filters the English names and quotes such
articles carry and leaves the language's own function words to c-TF-IDF, whose rule that a term
used by most stories is never a keyword removes the commonest of them anyway.
"""

from __future__ import annotations

from functools import cache

# Words that carry no story information in news copy, on top of sklearn's list.
_NEWS_STOP_WORDS = frozenset(
    {
        "said", "says", "say", "told", "according", "new", "year", "years", "week",
        "today", "yesterday", "tomorrow", "monday", "tuesday", "wednesday", "thursday",
        "friday", "saturday", "sunday", "mr", "mrs", "ms", "dr", "just", "like", "also",
        "percent", "including", "people", "time", "day", "days", "read", "more",
    }
)  # fmt: skip
# sklearn's list holds words that are news topics in their own right.
_NEWS_WORDS = frozenset({"fire", "bill", "interest", "system", "computer", "front", "move", "call"})


@cache
def english_stop_words() -> frozenset[str]:
    """sklearn's English stop words, adjusted for news copy."""
    # Imported here: scikit-learn takes most of a second to import, and the CLI's
    # digest path never needs it.
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return (frozenset(ENGLISH_STOP_WORDS) - _NEWS_WORDS) | _NEWS_STOP_WORDS


@cache
def stop_words(language: str | None = "en") -> frozenset[str]:
    """Stop words for an ISO 639-1 language code ("en", "de-AT" reads as "de"); English when the
    language is unknown (None) or has no list here."""
    code = _code(language)
    if code == "en":
        return english_stop_words()
    from stop_words import LANGUAGE_MAPPING, get_stop_words

    if code not in LANGUAGE_MAPPING:
        return english_stop_words()
    return frozenset(word.casefold() for word in get_stop_words(code))


def has_stop_words(language: str | None) -> bool:
    """Whether ``language`` has a list of its own (else ``stop_words`` falls back to English)."""
    from stop_words import LANGUAGE_MAPPING

    code = _code(language)
    return code == "en" or code in LANGUAGE_MAPPING


def _code(language: str | None) -> str:
    """The ISO 639-1 part of a language tag ("de-AT", "pt_BR" -> "de", "pt"); "en" when None."""
    return (language or "en").strip().lower().replace("_", "-").split("-")[0]
