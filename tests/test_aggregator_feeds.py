"""Aggregator feeds (Google News and the like): each item counts for its real publisher.

The publisher is the article's source (distinct and independent source counts, the digest's
outlets); the aggregator stays the feed it came through (`articles.via_feed`, fetch records,
source health); the " - Publisher" suffix leaves the headline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from devkit.feed_server import FeedServer
from flows.cli import EXIT_OK, EXIT_USAGE, main
from pipeline.articles.normalise import entries_to_articles
from pipeline.feeds.parse import parse_feed
from pipeline.records import Source
from tests.builders import FEED_DATE, FLOOD_REPORTS, RATE_RISE_REPORTS, query, rss, source_health

FETCHED = datetime(2026, 11, 21, tzinfo=UTC)
FLOOD_PUBLISHERS = ["Harbor Times", "Valley Post", "Coastal Courier"]
RATE_PUBLISHERS = ["Prairie Ledger", "Maple Wire", "Northern Star"]


def news_item(guid: str, text: str, publisher: str, *, source_element: bool = True) -> str:
    """A Google News item: redirect link, " - Publisher" headline suffix, <source url> (optional)."""
    title, body = text.split(". ", 1)
    source = f'<source url="https://{publisher.split()[0].lower()}.example">{publisher}</source>'
    return (
        f"<item><title>{title} - {publisher}</title>"
        f"<link>https://news.google.com/rss/articles/{guid}?oc=5</link>"
        f'<guid isPermaLink="false">{guid}</guid><pubDate>{FEED_DATE}</pubDate>'
        f"<description>{body}</description>{source if source_element else ''}</item>"
    )


def _articles(document: str, *, aggregator: bool = False, name: str = "Google News"):
    feed = parse_feed(document.encode())
    source = Source(name=name, url="https://news.google.com/rss/search?q=x", aggregator=aggregator)
    return entries_to_articles(feed, source, FETCHED)[0]


def test_items_naming_their_publishers_count_for_them_with_the_suffix_removed() -> None:
    items = [
        news_item(f"g{i}", text, p)
        for i, (text, p) in enumerate(zip(FLOOD_REPORTS, FLOOD_PUBLISHERS, strict=True))
    ]

    articles = _articles(rss(*items, title="valencia floods - Google News"))

    assert [a.source for a in articles] == FLOOD_PUBLISHERS
    assert [a.via_feed for a in articles] == ["Google News"] * 3
    assert articles[0].title == "Floods force thousands from their homes in Valencia"


def test_in_a_feed_marked_aggregator_the_headline_suffix_names_the_publisher() -> None:
    items = [
        news_item(f"r{i}", text, p, source_element=False)
        for i, (text, p) in enumerate(zip(RATE_RISE_REPORTS, RATE_PUBLISHERS, strict=True))
    ]
    plain = rss(*items, title="Business wire")

    assert [a.source for a in _articles(plain, aggregator=True)] == RATE_PUBLISHERS
    unmarked = _articles(plain, aggregator=False)
    assert {a.source for a in unmarked} == {"Google News"}, "a dash in a headline is not a publisher"
    assert unmarked[0].title == "Bank of Canada raises interest rate to 5% - Prairie Ledger"


def test_an_outlet_naming_itself_in_every_item_keeps_its_configured_name() -> None:
    items = [news_item(f"s{i}", text, "Harbor Times Online") for i, text in enumerate(FLOOD_REPORTS)]

    articles = _articles(rss(*items), name="Harbor Times")

    assert {a.source for a in articles} == {"Harbor Times"}
    assert {a.via_feed for a in articles} == {"Harbor Times"}


def test_item_ids_stay_keyed_by_the_feed_whoever_published_them() -> None:
    item = news_item("g1", FLOOD_REPORTS[0], "Harbor Times")
    other = news_item("g2", FLOOD_REPORTS[1], "Valley Post")

    as_aggregator = _articles(rss(item, other))
    as_plain_feed = _articles(rss(item, other), name="Google News")

    assert [a.article_id for a in as_aggregator] == [a.article_id for a in as_plain_feed]


@pytest.mark.slow
def test_a_served_aggregator_feed_makes_stories_whose_outlets_are_the_publishers(
    tmp_path: Path, make_settings, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    floods = [
        news_item(f"f{i}", t, p) for i, (t, p) in enumerate(zip(FLOOD_REPORTS, FLOOD_PUBLISHERS, strict=True))
    ]
    rates = [
        news_item(f"r{i}", t, p, source_element=False)
        for i, (t, p) in enumerate(zip(RATE_RISE_REPORTS, RATE_PUBLISHERS, strict=True))
    ]
    feed_server.route("/news.xml", rss(*floods, title="valencia - Google News"))
    feed_server.route("/business.xml", rss(*rates, title="Business wire"))
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[[sources]]\nname = "Google News"\nurl = "{feed_server.url("/news.xml")}"\ncategory = "World"\n\n'
        f'[[sources]]\nname = "Business wire"\nurl = "{feed_server.url("/business.xml")}"\n'
        'category = "Business/Markets"\naggregator = true\n',
        encoding="utf-8",
    )
    db = tmp_path / "agg.duckdb"

    assert main(["run", "--sources", str(sources), "--db", str(db)]) == EXIT_OK

    stored = query(db, "SELECT source, via_feed, title FROM articles ORDER BY source")
    assert {(s, v) for s, v, _ in stored} == {(p, "Google News") for p in FLOOD_PUBLISHERS} | {
        (p, "Business wire") for p in RATE_PUBLISHERS
    }
    assert not any(" - " in title for _, _, title in stored)
    assert query(db, "SELECT source, new_articles FROM fetches ORDER BY source") == [
        ("Business wire", 3),
        ("Google News", 3),
    ]
    assert {n: h["health"] for n, h in source_health(db).items()} == {
        "Business wire": "ok",
        "Google News": "ok",
    }
    summary = query(db, "SELECT source_count, independent_source_count FROM story_summary")
    assert sorted(summary) == [(3, 3), (3, 3)]

    out = tmp_path / "digests"
    assert main(["digest", "--db", str(db), "--date", "2026-11-20", "--out", str(out)]) == EXIT_OK
    markdown = (out / "digest-2026-11-20.md").read_text(encoding="utf-8")
    outlets = [
        frozenset(line.removeprefix("Outlets: ").strip().split(", "))
        for line in markdown.splitlines()
        if line.startswith("Outlets: ")
    ]
    assert set(outlets) == {frozenset(FLOOD_PUBLISHERS), frozenset(RATE_PUBLISHERS)}
    assert "Google News" not in markdown and "Business wire" not in markdown

    capsys.readouterr()
    day = ["--db", str(db), "--date", "2026-11-20", "--out", str(out)]
    assert main(["digest", *day, "--category", "Business"]) == EXIT_OK
    business = (out / "digest-2026-11-20-category-business.md").read_text(encoding="utf-8")
    assert "Prairie Ledger" in business and "Harbor Times" not in business
    assert main(["digest", *day, "--category", "Sports"]) == EXIT_USAGE
    assert "unknown source category 'Sports' (known: Business/Markets, World)" in capsys.readouterr().err
