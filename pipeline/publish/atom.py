"""Stories as an Atom feed (RFC 4287): one entry per story, updated as the story develops.

A feed reader keys entries on ``atom:id``; each entry's id is a tag URI (RFC 4151) built from
the story ID alone, so the same story keeps the same entry across runs and machines, and the
reader shows it once and marks it updated when ``atom:updated`` moves (when the story gains
articles). Content is HTML built here from escaped text (brief, outlets, a link to every
article; only http(s) links), carried escaped in the XML (``type="html"``): feed text can
never become markup in the reader or break the XML.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pipeline.briefs.records import Brief
from pipeline.digest.wording import feed_text, html_text, safe_url

ATOM_NS = "http://www.w3.org/2005/Atom"
GENERATOR = "Storyline"
# Characters XML 1.0 cannot carry at all (control characters other than tab and line breaks).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True)
class FeedArticle:
    title: str
    source: str
    url: str | None
    published_at: datetime
    is_duplicate: bool = False


@dataclass(frozen=True)
class FeedStory:
    story_id: str
    headline: str
    keywords: list[str]
    first_seen: datetime
    # When the story last gained articles: what moves the entry's atom:updated.
    updated: datetime
    articles: list[FeedArticle]
    brief: Brief | None = None
    topics: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FeedInfo:
    title: str
    # The feed's own tag URI (see ``tag_uri``).
    feed_id: str
    # Where the feed itself and the web app's pages are, when known (static files may not know).
    self_url: str | None = None
    home_url: str | None = None
    subtitle: str | None = None


def tag_uri(authority: str, specific: str) -> str:
    """``tag:storyline.localhost,2026:story/s_66674ff24cfd``: RFC 4151, stable for ever."""
    return f"tag:{authority}:{specific}"


def story_entry_id(authority: str, story_id: str) -> str:
    return tag_uri(authority, f"story/{story_id}")


def atom_time(value: datetime) -> str:
    """RFC 3339 in UTC, whole seconds (what every reader parses)."""
    utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return utc.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: str | None) -> str:
    return _NOT_XML.sub("", value or "")


def entry_html(story: FeedStory) -> str:
    """The entry's content: brief, outlets and every article, as escaped HTML."""

    parts: list[str] = []
    if story.brief and story.brief.sentences:
        said = " ".join(
            f"{html_text(s.text)} <em>({html_text(s.source)})</em>" for s in story.brief.sentences
        )
        parts.append(f"<p>{said}</p>")
    if story.brief and story.brief.new_sentences:
        new = " ".join(
            f"{html_text(s.text)} <em>({html_text(s.source)})</em>" for s in story.brief.new_sentences
        )
        parts.append(f"<p><strong>New on {story.brief.new_day:%d %b %Y}:</strong> {new}</p>")
    outlets = list(dict.fromkeys(a.source for a in story.articles))  # in order of first coverage
    independent = sum(1 for a in story.articles if not a.is_duplicate)
    parts.append(
        f"<p>{len(story.articles)} articles ({independent} independent) from {len(outlets)} outlets: "
        f"{', '.join(html_text(o) for o in outlets)}</p>"
    )
    if story.keywords:
        parts.append(f"<p>Keywords: {', '.join(html_text(k) for k in story.keywords)}</p>")
    items = []
    for a in sorted(story.articles, key=lambda a: (a.published_at, a.source, a.title), reverse=True):
        link = safe_url(a.url)
        title = html_text(a.title) or "untitled"
        label = f'<a href="{html.escape(link, quote=True)}">{title}</a>' if link else title
        copy = " (syndicated copy)" if a.is_duplicate else ""
        items.append(f"<li>{label} — {html_text(a.source)}, {atom_time(a.published_at)}{copy}</li>")
    parts.append(f"<ul>{''.join(items)}</ul>")
    return "".join(parts)


def render_atom(
    info: FeedInfo,
    stories: Sequence[FeedStory],
    *,
    authority: str,
    story_url: Callable[[str], str | None] = lambda _sid: None,
) -> bytes:
    """The feed as UTF-8 XML. Entries come in the order given (newest update first, normally)."""
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        node = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            node.text = _text(text)
        return node

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    sub(feed, "id", info.feed_id)
    sub(feed, "title", info.title)
    if info.subtitle:
        sub(feed, "subtitle", info.subtitle)
    newest = max((s.updated for s in stories), default=None)
    # An empty feed still needs atom:updated; the epoch says "nothing yet" and stays stable.
    sub(feed, "updated", atom_time(newest or datetime(1970, 1, 1, tzinfo=UTC)))
    author = sub(feed, "author")
    sub(author, "name", GENERATOR)
    sub(feed, "generator", GENERATOR)
    if info.self_url:
        sub(feed, "link", rel="self", type="application/atom+xml", href=info.self_url)
    if info.home_url:
        sub(feed, "link", rel="alternate", type="text/html", href=info.home_url)
    for story in stories:
        entry = sub(feed, "entry")
        sub(entry, "id", story_entry_id(authority, story.story_id))
        sub(entry, "title", feed_text(story.headline) or story.story_id)
        sub(entry, "updated", atom_time(story.updated))
        sub(entry, "published", atom_time(story.first_seen))
        url = story_url(story.story_id)
        if url:
            sub(entry, "link", rel="alternate", type="text/html", href=url)
        for keyword in story.keywords:
            sub(entry, "category", term=_text(feed_text(keyword)))
        for topic in story.topics:
            sub(entry, "category", term=_text(feed_text(topic)), scheme="storyline:topic")
        if story.brief and story.brief.sentences:
            sub(entry, "summary", " ".join(feed_text(s.text) for s in story.brief.sentences))
        sub(entry, "content", entry_html(story), type="html")
    ET.indent(feed)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True) + b"\n"
