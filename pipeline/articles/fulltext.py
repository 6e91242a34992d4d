"""Which articles want the text of their linked page, and an article with that text in place.

Pure functions on plain data; fetching is pipeline.feeds.pages, wiring flows.fulltext.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import Literal
from urllib.parse import urlsplit

from pipeline.articles.normalise import capped_text
from pipeline.records import Article

Mode = Literal["off", "auto", "always"]


def page_mode(global_mode: Mode, source_flag: bool | None) -> Mode:
    """A source's own `fulltext = true|false` wins over the global setting."""
    if source_flag is None:
        return global_mode
    return "always" if source_flag else "off"


def wants_page(article: Article, mode: Mode, min_chars: int) -> bool:
    """Whether to fetch the article's page: it links to one over HTTP(S) and the mode asks for it
    ("auto": its feed text is shorter than ``min_chars``)."""
    if mode == "off" or not article.url or article.text_source == "page":
        return False
    if urlsplit(article.url).scheme.lower() not in ("http", "https"):
        return False
    return mode == "always" or len(article.text) < min_chars


def with_page_text(article: Article, page_text: str) -> Article | None:
    """The article with the page's text as its text (cleaned and capped like feed text); None when
    the page gave nothing longer than what the feed already had.

    Id and content hash stay those of the feed entry, so the same entry in a later fetch is still
    recognised as stored.
    """
    text, _ = capped_text(article.title, page_text)
    if len(text) <= len(article.text):
        return None
    return replace(article, text=text, text_source="page")


# A line (paragraph) found on this many pages of one host in one run is the site's, not an
# article's: a cookie notice, a newsletter box, a footer that the markup did not give away.
REPEATED_ON_PAGES = 3


def repeated_lines(pages: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """Per host, the lines of extracted text that recur on at least REPEATED_ON_PAGES of its pages;
    ``pages`` are (host, text) pairs."""
    counts: Counter[tuple[str, str]] = Counter()
    for host, text in pages:
        counts.update((host, line) for line in {ln.strip() for ln in text.split("\n")} if line)
    out: dict[str, set[str]] = {}
    for (host, line), n in counts.items():
        if n >= REPEATED_ON_PAGES:
            out.setdefault(host, set()).add(line)
    return out


def drop_lines(text: str, lines: set[str]) -> str:
    """The text without the given lines."""
    if not lines:
        return text
    return "\n".join(ln for ln in text.split("\n") if ln.strip() not in lines)
