"""The bundled sample corpus (samples/) is what `make demo` runs on and what end-to-end tests
compare against: these checks keep it loadable, its ground truth complete, and its deliberate
faults in place (samples/README.md lists them)."""

from __future__ import annotations

import calendar
import html
import re
import tomllib
import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import pytest

from pipeline.feeds.sources import load_sources_file

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
FEEDS = SAMPLES / "feeds"
OFFLINE_URL = "http://127.0.0.1:9/feed.xml"
BROKEN = {"broken-feed.xml", "not-a-feed.xml"}
LATIN1_FEED = "continental-post.xml"


def _sources() -> list[dict[str, Any]]:
    return tomllib.loads((SAMPLES / "sources.toml").read_text(encoding="utf-8"))["sources"]


def _local_files() -> list[str]:
    return [s["url"].removeprefix("feeds/") for s in _sources() if not s["url"].startswith("http")]


FEED_FILES = sorted(f for f in _local_files() if f not in BROKEN)


@cache
def _parsed(name: str) -> Any:
    # Parse bytes, never a path: this is how the pipeline hands feeds to feedparser.
    return feedparser.parse((FEEDS / name).read_bytes())


@cache
def _entries() -> list[tuple[str, Any]]:
    """(file name, entry) for every item the corpus offers, the salvaged broken feed included."""
    return [(name, e) for name in [*FEED_FILES, "broken-feed.xml"] for e in _parsed(name).entries]


def _by_guid() -> dict[str, list[tuple[str, Any]]]:
    out: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for name, e in _entries():
        out[e.id].append((name, e))
    return out


def _outlet(entry: Any) -> str:
    return urlsplit(entry.link).hostname or ""


def _published(entry: Any) -> datetime | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC) if parsed else None


def _body(entry: Any) -> str:
    contents = [c.value for c in entry.get("content", [])]
    return max([*contents, entry.get("summary", "")], key=len)


def _plain(markup: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", markup))).strip()


@cache
def _expected() -> dict[str, Any]:
    return tomllib.loads((SAMPLES / "expected.toml").read_text(encoding="utf-8"))


# --- sources file ---------------------------------------------------------------------------------


def test_sources_file_loads_and_every_local_feed_exists() -> None:
    sources = load_sources_file(SAMPLES / "sources.toml")
    names = [s.name for s in sources]
    assert len(names) == len(set(names))
    for source in sources:
        if source.url.startswith("http"):
            continue
        assert Path(source.url).is_absolute(), "local paths resolve against the sources file's folder"
        assert Path(source.url).is_file(), f"{source.name}: {source.url} is missing"


def test_exactly_one_source_is_unreachable_without_network() -> None:
    remote = [s for s in _sources() if urlsplit(s["url"]).scheme]
    assert [s["url"] for s in remote] == [OFFLINE_URL]


def test_every_bundled_feed_file_is_listed_in_the_sources_file() -> None:
    assert sorted(p.name for p in FEEDS.glob("*.xml")) == sorted(_local_files())


# --- feed files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FEED_FILES)
def test_feed_is_well_formed(name: str) -> None:
    ET.fromstring((FEEDS / name).read_bytes())
    feed = _parsed(name)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version in {"rss20", "atom10"}
    assert len(feed.entries) >= 3


def test_corpus_mixes_rss_and_atom() -> None:
    versions = [_parsed(name).version for name in FEED_FILES]
    assert versions.count("atom10") >= 2
    assert versions.count("rss20") > versions.count("atom10")


def test_corpus_size_and_date_range() -> None:
    entries = _entries()
    assert 60 <= len(entries) <= 90
    first, last = datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 22, tzinfo=UTC)
    dated = [d for _, e in entries if (d := _published(e)) is not None]
    in_range = [d for d in dated if first <= d < last]
    # Only the deliberately future-dated item lies outside 18-21 November 2026.
    assert len(dated) - len(in_range) == 1
    assert {d.day for d in in_range} == {18, 19, 20, 21}


def test_broken_feed_is_malformed_but_salvageable() -> None:
    with pytest.raises(ET.ParseError):
        ET.fromstring((FEEDS / "broken-feed.xml").read_bytes())
    feed = _parsed("broken-feed.xml")
    assert feed.bozo == 1
    assert len(feed.entries) >= 3


def test_not_a_feed_is_an_html_page_without_entries() -> None:
    body = (FEEDS / "not-a-feed.xml").read_bytes()
    assert body.lstrip().lower().startswith(b"<!doctype html")
    feed = _parsed("not-a-feed.xml")
    assert feed.version == ""
    assert feed.entries == []


def test_latin1_feed_declares_its_encoding_and_decodes() -> None:
    body = (FEEDS / LATIN1_FEED).read_bytes()
    assert body.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    entries = _parsed(LATIN1_FEED).entries
    text = " ".join(f"{e.title} {e.get('author', '')} {_plain(_body(e))}" for e in entries)
    for word in ("Müller", "São Paulo", "cafés", "Amélie"):
        assert word in text


# --- ground truth ---------------------------------------------------------------------------------


def test_ground_truth_covers_every_item_exactly_once() -> None:
    expected = _expected()
    in_stories = [g for story in expected["stories"].values() for g in story["guids"]]
    singletons = expected["singletons"]
    same_article = {d["guid"] for d in expected["duplicates"] if d["kind"] in {"repost", "tracking-url"}}
    listed = in_stories + singletons
    assert len(listed) == len(set(listed)), "a GUID is in two places"
    guids = set(_by_guid())
    assert set(listed) <= guids, f"unknown GUIDs: {set(listed) - guids}"
    assert guids - set(listed) <= same_article
    for dup in expected["duplicates"]:
        assert dup["guid"] in guids and dup["same_as"] in guids


def test_each_story_is_covered_by_several_outlets() -> None:
    stories = _expected()["stories"]
    by_guid = _by_guid()
    assert len(stories) >= 6, "the seed story and at least five distractors"
    for key, story in stories.items():
        outlets = {_outlet(e) for g in story["guids"] for _, e in by_guid[g]}
        assert len(story["guids"]) >= 3 and len(outlets) >= 2, key


def test_seed_story_has_many_outlets_over_several_days() -> None:
    by_guid = _by_guid()
    guids = _expected()["stories"]["truce"]["guids"]
    entries = [e for g in guids for _, e in by_guid[g]]
    assert 15 <= len(guids) <= 20
    assert len({_outlet(e) for e in entries}) >= 6
    assert len({d.date() for e in entries if (d := _published(e))}) >= 3
    for e in entries:
        # Every seed item is about the negotiations, not a battlefield report.
        assert re.search(r"truce|ceasefire|hostage", _plain(e.title + " " + _body(e)), re.I), e.title


# --- deliberate dirt (samples/README.md) ----------------------------------------------------------


def _one(guid: str, name: str | None = None) -> Any:
    found = [e for n, e in _by_guid()[guid] if name is None or n == name]
    assert len(found) == 1, guid
    return found[0]


def _raw_description(name: str, guid: str) -> str:
    """An RSS item's description exactly as the file carries it (feedparser would sanitise it)."""
    for item in ET.fromstring((FEEDS / name).read_bytes()).iter("item"):
        if item.findtext("guid") == guid:
            return item.findtext("description") or ""
    raise AssertionError(f"{guid} not in {name}")


def test_dirt_active_content_in_descriptions() -> None:
    assert "<script>" in _raw_description("northern-courier.xml", "nc-2026-11-19-0461")
    map_guid = "https://pacifictribune.example/world/2026/11/20/chile-quake-aftershocks-map/"
    assert '<svg width="300" height="40"><a xlink:href="javascript:alert(1)">' in _raw_description(
        "pacific-tribune.xml", map_guid
    )
    # Markup as text in a headline: its text literally contains the tag.
    assert "<img src=x onerror=alert(1)>" in html.unescape(_one("mb-2026-1121-07").title)


def test_dirt_repeated_headline_and_comment_disclaimer() -> None:
    entry = _one("levantledger-48213")
    text = _plain(entry.content[0].value)
    assert text.startswith(f"{entry.title} {entry.title} ")
    assert text.endswith("Please read our community guidelines before posting.")
    assert "Comments are moderated. The views expressed in comments are those of their authors" in text


def test_dirt_syndicated_wire_copies() -> None:
    dups = [d for d in _expected()["duplicates"] if d["kind"] == "syndicated"]
    assert len(dups) == 2
    for dup in dups:
        original, copy = _one(dup["same_as"]), _one(dup["guid"])
        assert _outlet(original) != _outlet(copy) and original.link != copy.link
        assert _plain(original.summary) in _plain(copy.summary)
        assert "(Global Wire)" in copy.summary


def test_dirt_repost_and_tracking_url() -> None:
    world, mideast = "harbor-times-world.xml", "harbor-times-mideast.xml"
    by_kind = {d["kind"]: d for d in _expected()["duplicates"]}
    guid = by_kind["repost"]["guid"]
    first, again = _one(guid, world), _one(guid, mideast)
    assert first.link == again.link and first.title != again.title
    tracked = _one(by_kind["tracking-url"]["guid"], mideast)
    plain = _one(by_kind["tracking-url"]["same_as"], world)
    assert "utm_source=rss" in tracked.link and "utm_medium=feed" in tracked.link
    assert tracked.link.split("?")[0] == plain.link


def test_dirt_missing_and_bad_metadata() -> None:
    assert _published(_one("mb-2026-1117-01")) is None
    assert not _one("mb-2026-1118-02").get("title")
    future = _published(_one("mb-2026-1120-05"))
    assert future is not None and future.year >= 2030
    shared = [e for n, e in _by_guid()["mb-2026-1120"] if n == "metro-bulletin.xml"]
    assert len(shared) == 2 and shared[0].link != shared[1].link
