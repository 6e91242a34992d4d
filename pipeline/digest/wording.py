"""How the digest words things: safe links, one-line feed text, headers and per-story lines.

Shared by the HTML and Markdown renderers (``html_page``, ``markdown_page``), so both pages
say the same thing.

Safety. Titles, summaries, outlet names and keywords come from feeds and are
untrusted. Storage holds them as plain text (the clean step turned the feed's
HTML into text), so HTML output escapes every text and never parses it again:
markup-like characters in a headline are shown as the outlet published them;
links are kept only for http(s) URLs
and carry rel="noopener noreferrer"; the page has no script and a CSP that
forbids scripts and every external load. Markdown output escapes Markdown and
HTML syntax in feed text and links only http(s) URLs.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, date, tzinfo
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pipeline.digest.rank import DigestHeader, RankedStory


def safe_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) URL a reader may follow, else None."""
    if not url:
        return None
    url = url.strip()
    # Browsers drop tabs and newlines inside URLs ("java\tscript:"): refuse them outright.
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return url


def feed_text(value: str | None) -> str:
    """Stored feed text (a title, a summary) as one line, for escaping by the renderer.

    Storage holds plain text: the clean step already turned the feed's HTML into text and
    decoded its entities. What still looks like markup here is text the outlet published
    ("win <img src=x onerror=alert(1)>" in a headline), so it is shown as characters,
    never parsed again: dropping it would misquote the outlet, rendering it would run it.
    """
    return one_line(value or "")


def html_text(value: str | None) -> str:
    """Feed text for an HTML page or an Atom entry: one line, every markup character escaped."""
    return html.escape(feed_text(value), quote=True)


def one_line(value: str) -> str:
    # Collapsing all whitespace keeps feed text from starting Markdown blocks or headings.
    return " ".join("".join(ch for ch in value if ch.isprintable() or ch.isspace()).split())


def shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut.rstrip(" ,.;:") + "…"


def header_zone(header: DigestHeader) -> tzinfo:
    try:
        return ZoneInfo(header.timezone)
    except (ValueError, KeyError):
        return UTC


def digest_basename(day: date, topic: str | None = None, category: str | None = None) -> str:
    """File name stem for a digest: ``digest-2024-05-13``, ``digest-2024-05-13-energy`` (a topic),
    ``digest-2024-05-13-category-news-world`` (a category)."""
    stem = f"digest-{day.isoformat()}"
    if topic:
        slug = re.sub(r"[^a-z0-9]+", "-", topic.casefold()).strip("-")[:60]
        stem = f"{stem}-{slug or 'topic'}"
    if category:
        slug = re.sub(r"[^a-z0-9]+", "-", category.casefold()).strip("-")[:60]
        stem = f"{stem}-category-{slug or 'other'}"
    return stem


def title_line(header: DigestHeader) -> str:
    title = f"Storyline digest — {header.day:%A %d %B %Y}"
    if header.topic:
        title = f"{title} — {one_line(header.topic)}"
    return f"{title} — {one_line(header.category)}" if header.category else title


def language_mark(article_language: str | None, main: str | None) -> str:
    """The article's language code when it differs from the digest's main language, else ""."""
    if not article_language or article_language == main:
        return ""
    return one_line(article_language)[:12]


def sources_line(header: DigestHeader) -> str:
    if header.sources_ok or header.sources_failed:
        fetched = f"{header.sources_ok} fetched, {header.sources_failed} failed"
    else:
        # An archive, or a digest of a day before the feeds were first fetched.
        fetched = "no fetch ran that day"
    return f"{header.sources_total} sources: {fetched} · {header.articles_in} articles in"


def stats_line(item: RankedStory) -> str:
    parts = [
        plural(item.article_count, "article"),
        plural(item.independent_source_count, "independent source"),
    ]
    if item.syndicated_count:
        parts.append(plural(item.syndicated_count, "syndicated copy", "syndicated copies"))
    parts.append(f"{item.new_today} today")
    return " · ".join(parts)


def brief_lines(item: RankedStory) -> list[tuple[str, str]]:
    """The story's brief as (sentence, outlet) pairs, one line each, for escaping by the renderer."""
    brief = item.story.brief
    return [(feed_text(s.text), feed_text(s.source)) for s in (brief.sentences if brief else [])]


def new_today_lines(item: RankedStory) -> list[tuple[str, str]]:
    """What the digest day added to a developing story that earlier coverage had not said."""
    brief = item.story.brief
    if brief is None or item.status == "new" or brief.new_day != item.day:
        return []
    return [(feed_text(s.text), feed_text(s.source)) for s in brief.new_sentences]


def plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def status_line(item: RankedStory) -> str:
    if item.status == "new":
        return "first seen today"
    return f"since {item.started:%a %d %b %Y} (day {(item.day - item.started).days + 1})"
