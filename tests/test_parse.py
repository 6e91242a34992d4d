"""Feed parsing: every body yields entries or a readable reason, never an exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.feeds.parse import parse_feed
from tests.builders import external_entity_doctype, rss, rss_item

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Lakeside Gazette</title>
  <link>https://gazette.example/</link>
  <ttl>45</ttl>
  <item>
    <title>Council approves new bridge</title>
    <link>https://gazette.example/news/bridge</link>
    <guid isPermaLink="false">gazette-1001</guid>
    <pubDate>Tue, 03 Mar 2026 14:30:00 +0100</pubDate>
    <dc:creator>Ana Ruiz</dc:creator>
    <description>Short summary.</description>
    <content:encoded><![CDATA[<p>The council voted 9 to 2 for the bridge.</p>
      <p>Work starts in May.</p>]]></content:encoded>
  </item>
  <item>
    <title>Market reopens</title>
    <link>/news/market</link>
    <description>The weekly market is back.</description>
  </item>
  <item>
    <title>Bad date</title>
    <pubDate>sometime last week</pubDate>
    <description>x</description>
  </item>
</channel>
</rss>
"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Herald</title>
  <id>urn:herald</id>
  <updated>2026-03-03T10:00:00Z</updated>
  <entry>
    <title>Atom entry</title>
    <id>tag:herald.example,2026:1</id>
    <link rel="alternate" href="https://herald.example/1"/>
    <updated>2026-03-03T09:15:00-05:00</updated>
    <content type="html">&lt;p&gt;Body text.&lt;/p&gt;</content>
  </entry>
</feed>
"""


def test_rss_entries_carry_ids_links_text_dates_and_ttl() -> None:
    feed = parse_feed(RSS, content_type="application/rss+xml", url="https://gazette.example/feed.xml")
    assert feed.error_class is None and feed.warning is None
    assert feed.title == "Lakeside Gazette"
    assert feed.version == "rss20"
    assert feed.ttl_minutes == 45
    first, second, third = feed.entries
    assert first.guid == "gazette-1001"
    assert first.link == "https://gazette.example/news/bridge"
    assert first.title == "Council approves new bridge"
    assert first.summary == "Short summary."
    assert "voted 9 to 2" in (first.content or "")
    assert first.author == "Ana Ruiz"
    assert first.published_at == datetime(2026, 3, 3, 13, 30, tzinfo=UTC)
    # Relative links are resolved against the feed's URL.
    assert second.link == "https://gazette.example/news/market"
    assert second.published_at is None
    assert third.published_at is None


def test_atom_dates_fall_back_to_updated_and_are_utc() -> None:
    feed = parse_feed(ATOM)
    (entry,) = feed.entries
    assert feed.version == "atom10"
    assert entry.guid == "tag:herald.example,2026:1"
    assert entry.link == "https://herald.example/1"
    assert entry.published_at == datetime(2026, 3, 3, 14, 15, tzinfo=UTC)
    assert entry.content == "<p>Body text.</p>"


def test_malformed_xml_entries_are_salvaged_with_a_warning() -> None:
    broken = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Broken</title>
    <item><title>Fish & chips prices rise</title><description>Up 10%</description></item>
    <item><title>Second item</title><description>still here</description>
    </channel></rss>"""
    feed = parse_feed(broken)
    assert feed.error_class is None
    assert [e.title for e in feed.entries] == ["Fish & chips prices rise", "Second item"]
    assert feed.warning is not None
    assert "not well-formed" in feed.warning and "2 entries salvaged" in feed.warning


def test_broken_document_with_nothing_to_salvage_is_malformed() -> None:
    feed = parse_feed(b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</ti')
    assert feed.entries == []
    assert feed.error_class == "malformed"
    assert "no entries could be salvaged" in (feed.error or "")


def test_html_page_instead_of_a_feed_is_not_a_feed() -> None:
    page = b"<!DOCTYPE html><html><head><title>Gazette - Home</title></head><body><p>Hi</p></body></html>"
    feed = parse_feed(page, content_type="text/html; charset=utf-8")
    assert feed.entries == []
    assert feed.error_class == "not_a_feed"
    assert "HTML page" in (feed.error or "") and "Gazette - Home" in (feed.error or "")


def test_other_xml_is_not_a_feed() -> None:
    opml = b'<?xml version="1.0"?><opml version="2.0"><head><title>Subs</title></head><body/></opml>'
    feed = parse_feed(opml)
    assert feed.error_class == "not_a_feed"
    assert "<opml>" in (feed.error or "")


@pytest.mark.parametrize("body", [b"", b"   \n\t ", b"\xef\xbb\xbf"])
def test_empty_body(body: bytes) -> None:
    feed = parse_feed(body)
    assert feed.error_class == "empty" and feed.entries == []


@pytest.mark.parametrize(
    "body", [b"\x00\x01\x02garbage\xff\xfe\x80", b"just some words", b"\x1f\x8b\x08\x00junk"]
)
def test_garbage_gives_an_error_not_an_exception(body: bytes) -> None:
    feed = parse_feed(body)
    assert feed.entries == []
    assert feed.error_class in ("malformed", "not_a_feed")
    assert feed.error


def _rss_with_title(title: str, declared: str) -> str:
    return rss(rss_item(None, title, title, date=None), title="t", link=None, encoding=declared)


def test_windows_1252_bytes_declared_as_utf8_come_out_readable() -> None:
    body = _rss_with_title("Café prices up 5 € – report", "utf-8").encode("cp1252")
    feed = parse_feed(body, content_type="application/rss+xml; charset=utf-8")
    assert feed.entries[0].title == "Café prices up 5 € – report"
    assert feed.warning and "character set" in feed.warning


def test_utf8_bytes_declared_as_latin1_come_out_readable() -> None:
    body = _rss_with_title("Café in Zürich", "iso-8859-1").encode("utf-8")
    feed = parse_feed(body)
    assert feed.entries[0].title == "Café in Zürich"
    assert feed.warning and "UTF-8" in feed.warning
    # Same when the wrong charset comes from the HTTP header.
    feed = parse_feed(body, content_type="text/xml; charset=ISO-8859-1")
    assert feed.entries[0].title == "Café in Zürich"


def test_correct_legacy_charsets_are_honoured() -> None:
    body = _rss_with_title("Café in Zürich", "iso-8859-1").encode("latin-1")
    assert parse_feed(body).entries[0].title == "Café in Zürich"
    body = _rss_with_title("Привет мир", "koi8-r").encode("koi8-r")
    feed = parse_feed(body)
    assert feed.entries[0].title == "Привет мир" and feed.warning is None


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>Laughs</title>
<item><title>&lol9;</title><description>&lol9;</description></item>
</channel></rss>
"""


def test_entity_expansion_attack_does_not_blow_up() -> None:
    feed = parse_feed(BILLION_LAUGHS)
    # Either a clear error or salvaged entries with a warning; never a gigabyte of "lol".
    assert feed.error_class or feed.warning
    for entry in feed.entries:
        assert len(entry.title or "") < 1000
        assert len(entry.summary or "") < 1000


def test_external_entities_are_not_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    body = rss(
        rss_item(None, "&x;", "d", date=None),
        title="t",
        link=None,
        doctype=external_entity_doctype(f"file://{secret}"),
    ).encode()
    feed = parse_feed(body)
    assert "TOP-SECRET" not in repr(feed)


def test_a_body_that_looks_like_a_path_is_never_opened(tmp_path: Path) -> None:
    feed_file = tmp_path / "feed.xml"
    feed_file.write_bytes(RSS)
    feed = parse_feed(str(feed_file).encode())
    assert feed.entries == []
    assert feed.error_class is not None


def test_whitespace_before_the_xml_declaration_is_tolerated() -> None:
    feed = parse_feed(b"\n\n   " + RSS)
    assert len(feed.entries) == 3
    assert feed.warning is None


def test_valid_feed_without_items_is_not_an_error() -> None:
    feed = parse_feed(rss(title="New blog", link=None).encode())
    assert feed.entries == [] and feed.error_class is None


def test_json_feed() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON Herald",
        "items": [
            {
                "id": "1",
                "url": "https://json.example/1",
                "title": "First",
                "content_html": "<p>Hello</p>",
                "date_published": "2026-03-03T10:00:00+02:00",
                "authors": [{"name": "Kim"}],
            },
            {"id": 2, "content_text": "Plain text only", "date_modified": "2026-03-04T00:00:00"},
            "not an item",
        ],
    }
    feed = parse_feed(json.dumps(doc).encode(), content_type="application/feed+json")
    assert feed.title == "JSON Herald" and feed.version == "json11"
    first, second = feed.entries
    assert (first.guid, first.link, first.title, first.content) == (
        "1",
        "https://json.example/1",
        "First",
        "<p>Hello</p>",
    )
    assert first.published_at == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    assert first.author == "Kim"
    assert (second.guid, second.content, second.title) == ("2", "Plain text only", None)
    assert second.published_at == datetime(2026, 3, 4, tzinfo=UTC)
    assert feed.warning and "skipped" in feed.warning


def test_json_that_is_not_a_json_feed() -> None:
    assert parse_feed(b'{"hello": "world"}').error_class == "not_a_feed"
    assert parse_feed(b'{"broken": ').error_class == "malformed"
