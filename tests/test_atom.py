"""The Atom feed of stories: valid RFC 4287, one entry per story with a stable tag-URI id, feed text
escaped so it can never become markup, links http(s) only."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime

import feedparser

from pipeline.briefs.records import Brief, BriefSentence
from pipeline.publish.atom import FeedArticle, FeedInfo, FeedStory, render_atom, story_entry_id

NS = "{http://www.w3.org/2005/Atom}"
AUTH = "storyline.localhost,2026"
WHEN = datetime(2026, 11, 20, 10, tzinfo=UTC)


def story(sid: str = "s_66674ff24cfd", **changes: object) -> FeedStory:
    values: dict[str, object] = {
        "story_id": sid, "headline": "Truce talks resume", "keywords": ["truce", "Doha"], "first_seen": WHEN,
        "updated": WHEN,
        "articles": [FeedArticle("Talks resume", "Global Wire", "https://wire.example/1", WHEN),
                     FeedArticle("Talks resume", "Herald", "https://herald.example/1", WHEN, True)],
        "brief": Brief(sid, [BriefSentence("Talks resumed in Doha.", "a1", "Global Wire", WHEN)],
                       date(2026, 11, 20), []),
    }  # fmt: skip
    values.update(changes)
    return FeedStory(**values)  # type: ignore[arg-type]


def feed(*stories: FeedStory) -> bytes:
    info = FeedInfo(
        title="Storyline — stories", feed_id=f"tag:{AUTH}:stories", self_url="http://x.example/f.atom"
    )
    return render_atom(
        info, list(stories), authority=AUTH, story_url=lambda s: f"http://x.example/stories/{s}"
    )


def test_the_feed_has_every_element_rfc_4287_requires_and_feedparser_reads_it_cleanly() -> None:
    body = feed(story(), story("s_000000000001", updated=datetime(2026, 11, 21, tzinfo=UTC)))
    root = ET.fromstring(body)
    for name in ("id", "title", "updated", "author"):
        assert root.find(NS + name) is not None
    assert root.findtext(NS + "updated") == "2026-11-21T00:00:00Z", "the newest entry's update"
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0 and parsed.version == "atom10" and len(parsed.entries) == 2
    entry = parsed.entries[0]
    assert (
        entry.id
        == "tag:storyline.localhost,2026:story/s_66674ff24cfd"
        == story_entry_id(AUTH, "s_66674ff24cfd")
    )
    assert entry.updated == "2026-11-20T10:00:00Z" and entry.link == "http://x.example/stories/s_66674ff24cfd"
    content = entry.content[0].value
    assert "Talks resumed in Doha." in content and "(syndicated copy)" in content
    assert '<a href="https://wire.example/1">' in content


def test_feed_text_is_escaped_and_only_http_links_survive() -> None:
    hostile = story(
        headline='<script>alert(1)</script>Truce',
        keywords=['<img src=x onerror=alert(1)>'],
        articles=[FeedArticle('<svg onload=alert(1)>', 'Evil "outlet" <b>', "javascript:alert(1)", WHEN),
                  FeedArticle("ok", "Wire\x0b\x00", "data:text/html,<script>alert(1)</script>", WHEN)],
    )  # fmt: skip
    body = feed(hostile)
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0, "control characters removed, markup escaped: still well-formed XML"
    entry = parsed.entries[0]
    assert entry.title == "<script>alert(1)</script>Truce", "the headline is text, as the outlet wrote it"
    content = ET.fromstring(body).find(f"{NS}entry/{NS}content").text or ""
    assert "<script>" not in content and "<svg" not in content and "<img" not in content
    assert "&lt;svg onload=alert(1)&gt;" in content
    assert "javascript:" not in content and "data:text" not in content


def test_the_same_stories_give_the_same_bytes() -> None:
    assert feed(story(), story("s_2")) == feed(story(), story("s_2"))


def test_an_empty_feed_is_still_valid() -> None:
    parsed = feedparser.parse(feed())
    assert parsed.bozo == 0 and parsed.entries == [] and parsed.feed.updated == "1970-01-01T00:00:00Z"
