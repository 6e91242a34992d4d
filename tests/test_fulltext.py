"""Full text behind teasers: a source's linked article pages are fetched, under the feed fetcher's
rules, and their main text replaces the teaser (README "Full text").

Real HTTP from a local server, a real database; the source is on 127.0.0.1, which is what lets its
pages be there too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devkit.article_page import FURNITURE_WORDS, article_page
from devkit.feed_server import FeedServer
from flows.ingest import ingest_step
from pipeline.feeds.addresses import Resolver, resolve_host
from pipeline.feeds.fetch import make_client
from pipeline.feeds.pages import fetch_page, page_settings, source_is_internal
from pipeline.records import FetchState
from pipeline.settings import FetchSettings
from tests.builders import query_dicts, quick_fetch, rss, rss_item

HTML = "text/html; charset=utf-8"
PUBLIC = "93.184.216.34"
BARRIER = [
    "The city council approved a new flood barrier on Tuesday after months of debate among residents.",
    "Construction is expected to begin next spring and will cost an estimated 40 million euros.",
    "Opponents argued the barrier would harm the river's ecology, but the vote passed by 31 to 12.",
]
TRAMS = [
    "Night trams will run every twenty minutes on the three busiest lines from January, the operator said.",
    "The trial follows a petition signed by more than 9,000 shift workers and students last year.",
    "If passenger numbers hold up, the service will be extended to the whole network by the summer.",
]


def teaser_feed(srv: FeedServer, items: dict[str, str]) -> str:
    """An RSS feed of teasers (headline + first sentence) linking to ``/pages/<guid>.html``."""
    return rss(
        *(rss_item(guid, title, text, link=srv.url(f"/pages/{guid}.html")) for guid, (title, text) in items)
    )


def sources_file(path: Path, url: str, extra: str = "") -> Path:
    path.write_text(f'[[sources]]\nname = "Gazette"\nurl = {json.dumps(url)}\n{extra}\n', encoding="utf-8")
    return path


def stored(db: Path) -> dict[str, dict]:
    return {r["guid"]: r for r in query_dicts(db, "SELECT guid, text, text_source FROM articles")}


def pages(db: Path) -> dict[str, dict]:
    return {r["article_id"]: r for r in query_dicts(db, "SELECT * FROM page_fetches")}


@pytest.fixture
def site(feed_server: FeedServer) -> FeedServer:
    feed_server.route(
        "/pages/barrier.html", article_page("Council approves flood barrier", BARRIER), content_type=HTML
    )
    feed_server.route("/pages/trams.html", article_page("Night trams from January", TRAMS), content_type=HTML)
    feed_server.route(
        "/feed.xml",
        teaser_feed(feed_server, {"barrier": ("Council approves flood barrier", BARRIER[0]),
                                  "trams": ("Night trams from January", TRAMS[0])}.items()),
    )  # fmt: skip
    return feed_server


def test_a_source_with_fulltext_stores_each_pages_article_text_without_its_furniture(
    site: FeedServer, make_settings, tmp_path: Path
) -> None:
    sources = sources_file(tmp_path / "sources.toml", site.url("/feed.xml"), "fulltext = true")
    settings = quick_fetch(make_settings(sources=sources), fulltext_delay_s=0)
    report = ingest_step(settings, progress=False)
    assert report.new_articles == 2 and report.sources_failed == 0
    assert report.pages == {"extracted": 2}
    articles = stored(settings.db)
    for guid, paragraphs in (("barrier", BARRIER), ("trams", TRAMS)):
        assert articles[guid]["text_source"] == "page"
        for paragraph in paragraphs:
            assert paragraph in articles[guid]["text"]
        leaked = {w.lower() for w in articles[guid]["text"].split()} & {
            "cookies",
            "newsletter",
            "unsubscribe",
        }
        assert not leaked
    assert {r["status"] for r in pages(settings.db).values()} == {"extracted"}
    # Each page is asked for once, with our User-Agent, after robots.txt (once for the host).
    assert len(site.requests_for("/robots.txt")) == 1
    request = site.requests_for("/pages/barrier.html")[0]
    assert request.headers["user-agent"] == settings.fetch.user_agent
    assert "gzip" in request.headers["accept-encoding"]
    assert FURNITURE_WORDS  # the builder's vocabulary, which bench/fulltext.py counts


def test_an_extracted_page_is_never_fetched_again(site: FeedServer, make_settings, tmp_path: Path) -> None:
    sources = sources_file(tmp_path / "sources.toml", site.url("/feed.xml"), "fulltext = true")
    settings = quick_fetch(make_settings(sources=sources), fulltext_delay_s=0)
    ingest_step(settings, progress=False)
    # The feed changes (a new item), so it is parsed again: only the new item's page is fetched.
    site.route("/pages/new.html", article_page("Library reopens", TRAMS[::-1]), content_type=HTML)
    site.route(
        "/feed.xml",
        teaser_feed(site, {"barrier": ("Council approves flood barrier", BARRIER[0]),
                           "trams": ("Night trams from January", TRAMS[0]),
                           "new": ("Library reopens", TRAMS[2])}.items()),
    )  # fmt: skip
    report = ingest_step(settings, progress=False)
    assert report.new_articles == 1 and report.pages == {"extracted": 1}
    assert len(site.requests_for("/pages/barrier.html")) == 1
    assert len(site.requests_for("/pages/new.html")) == 1
    assert stored(settings.db)["new"]["text_source"] == "page"


def test_auto_fetches_only_entries_shorter_than_the_threshold(
    site: FeedServer, make_settings, tmp_path: Path
) -> None:
    long_text = " ".join(TRAMS * 3)
    site.route(
        "/feed.xml",
        teaser_feed(site, {"barrier": ("Council approves flood barrier", BARRIER[0]),
                           "trams": ("Night trams from January", long_text)}.items()),
    )  # fmt: skip
    sources = sources_file(tmp_path / "sources.toml", site.url("/feed.xml"))
    settings = quick_fetch(make_settings(sources=sources), fulltext="auto", fulltext_min_chars=200)
    settings.fetch.fulltext_delay_s = 0
    ingest_step(settings, progress=False)
    articles = stored(settings.db)
    assert articles["barrier"]["text_source"] == "page"
    assert articles["trams"]["text_source"] == "feed" and articles["trams"]["text"] == long_text
    assert site.requests_for("/pages/trams.html") == []


def test_by_default_and_with_fulltext_false_no_page_is_fetched(
    site: FeedServer, make_settings, tmp_path: Path
) -> None:
    for extra, mode in (("", "off"), ("fulltext = false", "always")):
        sources = sources_file(tmp_path / "sources.toml", site.url("/feed.xml"), extra)
        settings = quick_fetch(make_settings(sources=sources, db=tmp_path / f"{mode}.duckdb"), fulltext=mode)
        report = ingest_step(settings, progress=False)
        assert report.new_articles == 2 and report.pages == {}
        assert {r["text_source"] for r in stored(settings.db).values()} == {"feed"}
    assert [r.path for r in site.requests if r.path != "/feed.xml"] == []


def test_failed_pages_are_recorded_per_article_and_the_source_still_succeeds(
    site: FeedServer, make_settings, tmp_path: Path
) -> None:
    site.route("/pages/barrier.html", b"oops", status=500, content_type="text/plain")
    site.route("/pages/trams.html", b"<html><body></body></html>", content_type=HTML)
    sources = sources_file(tmp_path / "sources.toml", site.url("/feed.xml"), "fulltext = true")
    settings = quick_fetch(make_settings(sources=sources), fulltext_delay_s=0)
    report = ingest_step(settings, progress=False)
    assert report.sources_failed == 0 and report.sources_ok == 1 and report.new_articles == 2
    assert report.pages == {"error": 1, "no_text": 1}
    articles = stored(settings.db)
    assert articles["barrier"]["text"] == BARRIER[0] and articles["barrier"]["text_source"] == "feed"
    rows = {r["url"].rsplit("/", 1)[1]: r for r in pages(settings.db).values()}
    assert rows["barrier.html"]["error_class"] == "http_5xx" and rows["barrier.html"]["http_status"] == 500
    assert rows["trams.html"]["status"] == "no_text"


def test_robots_txt_is_honoured_for_our_user_agent(site: FeedServer, make_settings, tmp_path: Path) -> None:
    site.route(
        "/robots.txt",
        "User-agent: *\nAllow: /\n\nUser-agent: Storyline\nDisallow: /pages/barrier.html\n",
        content_type="text/plain",
    )
    sources = sources_file(tmp_path / "sources.toml", site.url("/feed.xml"), "fulltext = true")
    settings = quick_fetch(make_settings(sources=sources), fulltext_delay_s=0)
    report = ingest_step(settings, progress=False)
    assert report.pages == {"skipped": 1, "extracted": 1}
    assert site.requests_for("/pages/barrier.html") == []
    row = next(r for r in pages(settings.db).values() if r["url"].endswith("barrier.html"))
    assert row["error_class"] == "robots_disallowed"


def test_an_unreachable_robots_txt_disallows_the_host_for_the_run(
    site: FeedServer, make_settings, tmp_path: Path
) -> None:
    site.route("/robots.txt", b"down", status=503, content_type="text/plain")
    sources = sources_file(tmp_path / "sources.toml", site.url("/feed.xml"), "fulltext = true")
    settings = quick_fetch(make_settings(sources=sources), fulltext_delay_s=0)
    report = ingest_step(settings, progress=False)
    assert report.pages == {"skipped": 2} and report.sources_failed == 0
    assert site.requests_for("/pages/barrier.html") == []


def test_requests_to_one_host_are_spaced_by_the_politeness_delay(
    site: FeedServer, make_settings, tmp_path: Path
) -> None:
    sources = sources_file(tmp_path / "sources.toml", site.url("/feed.xml"), "fulltext = true")
    settings = quick_fetch(make_settings(sources=sources), fulltext_delay_s=0.3, per_host_limit=2)
    ingest_step(settings, progress=False)
    starts = sorted(r.at for r in site.requests if r.path.startswith("/pages/"))
    assert len(starts) == 2 and starts[1] - starts[0] >= 0.29


def test_a_page_that_gave_no_text_is_asked_again_later_with_its_validators(
    site: FeedServer, make_settings, tmp_path: Path
) -> None:
    site.route("/pages/trams.html", b"<html><body></body></html>", content_type=HTML, etag='"p1"')
    sources = sources_file(tmp_path / "sources.toml", site.url("/feed.xml"), "fulltext = true")
    settings = quick_fetch(make_settings(sources=sources), fulltext_delay_s=0, fulltext_retry_s=0)
    ingest_step(settings, progress=False)
    assert stored(settings.db)["trams"]["text_source"] == "feed"

    padding = []

    def feed_changes() -> None:  # a new body, so that the feed is parsed again
        padding.append(" ")
        items = {
            "barrier": ("Council approves flood barrier", BARRIER[0]),
            "trams": ("Night trams from January", TRAMS[0]),
        }
        site.route("/feed.xml", teaser_feed(site, items.items()) + "".join(padding))

    feed_changes()
    report = ingest_step(settings, progress=False)
    assert report.pages == {"not_modified": 1} and report.new_articles == 0
    assert site.requests_for("/pages/trams.html")[-1].headers["if-none-match"] == '"p1"'
    row = next(r for r in pages(settings.db).values() if r["url"].endswith("trams.html"))
    assert row["status"] == "no_text" and row["etag"] == '"p1"'
    # The page fills in: the stored article gets its text, and is embedded again.
    site.route(
        "/pages/trams.html", article_page("Night trams from January", TRAMS), content_type=HTML, etag='"p2"'
    )
    feed_changes()
    report = ingest_step(settings, progress=False)
    assert report.pages == {"extracted": 1}
    assert stored(settings.db)["trams"]["text_source"] == "page"
    assert TRAMS[2] in stored(settings.db)["trams"]["text"]
    # Extracted pages (barrier's, and now trams') are never asked for again.
    feed_changes()
    assert ingest_step(settings, progress=False).pages == {}
    assert (
        len(site.requests_for("/pages/barrier.html")) == 1
        and len(site.requests_for("/pages/trams.html")) == 3
    )


def test_a_page_larger_than_the_cap_is_refused(site: FeedServer, make_settings, tmp_path: Path) -> None:
    site.route("/pages/barrier.html", article_page("Big", BARRIER * 400), content_type=HTML, gzip=True)
    sources = sources_file(tmp_path / "sources.toml", site.url("/feed.xml"), "fulltext = true")
    settings = quick_fetch(make_settings(sources=sources), fulltext_delay_s=0, fulltext_max_bytes=20_000)
    report = ingest_step(settings, progress=False)
    assert report.pages == {"error": 1, "extracted": 1}
    row = next(r for r in pages(settings.db).values() if r["url"].endswith("barrier.html"))
    assert row["error_class"] == "too_large"


def test_at_most_fulltext_max_pages_per_source_per_run(
    site: FeedServer, make_settings, tmp_path: Path
) -> None:
    sources = sources_file(tmp_path / "sources.toml", site.url("/feed.xml"), "fulltext = true")
    settings = quick_fetch(make_settings(sources=sources), fulltext_delay_s=0, fulltext_max_pages=1)
    report = ingest_step(settings, progress=False)
    assert report.new_articles == 2 and report.pages == {"extracted": 1}
    assert sorted(r["text_source"] for r in stored(settings.db).values()) == ["feed", "page"]


def test_furniture_that_the_markup_does_not_give_away_is_dropped_when_it_recurs_across_pages(
    feed_server: FeedServer, make_settings, tmp_path: Path
) -> None:
    """Pages of only <div>s and <p>s: the extractor keeps the banner, the newsletter box and the
    footer, but those lines recur on the host's pages while the stories' own lines do not."""
    stories = {"barrier": BARRIER, "trams": TRAMS, "mixed": [TRAMS[1], BARRIER[2], "A third, new paragraph."]}
    for guid, paragraphs in stories.items():
        page = article_page(
            guid.title(), paragraphs, opaque=True, comments=[(f"reader_{guid}", f"On {guid}.")]
        )
        feed_server.route(f"/pages/{guid}.html", page, content_type=HTML)
    items = {guid: (guid.title(), paragraphs[0]) for guid, paragraphs in stories.items()}
    feed_server.route("/feed.xml", teaser_feed(feed_server, items.items()))
    sources = sources_file(tmp_path / "sources.toml", feed_server.url("/feed.xml"), "fulltext = true")
    settings = quick_fetch(make_settings(sources=sources), fulltext_delay_s=0)
    assert ingest_step(settings, progress=False).pages == {"extracted": 3}
    for guid, row in stored(settings.db).items():
        for paragraph in stories[guid]:
            assert paragraph in row["text"]
        assert "cookies" not in row["text"] and "newsletter" not in row["text"]
        assert "Copyright" not in row["text"]


# --- which addresses an article link may lead to ------------------------------------------------


def fake_dns(table: dict[str, list[str]]) -> Resolver:
    def resolve(host: str, port: int) -> list[str]:
        return table[host] if host in table else resolve_host(host, port)

    return resolve


def test_a_source_on_a_loopback_or_private_address_may_link_to_pages_there(feed_server: FeedServer) -> None:
    assert source_is_internal(feed_server.url("/feed.xml"))
    assert source_is_internal("http://10.1.2.3/feed.xml")
    assert not source_is_internal("https://news.example/rss", fake_dns({"news.example": [PUBLIC]}))


def test_links_from_a_public_source_to_internal_addresses_are_never_requested(
    feed_server: FeedServer,
) -> None:
    feed_server.route("/pages/a.html", article_page("A", BARRIER), content_type=HTML)
    settings = page_settings(FetchSettings(read_timeout_s=1.0))
    port = feed_server.base_url.rsplit(":", 1)[1]
    with make_client(settings) as client:
        for url in (feed_server.url("/pages/a.html"), f"http://localhost:{port}/pages/a.html"):
            res = fetch_page(url, FetchState(), settings, client=client, internal_source=False)
            assert res.status == "error" and res.error_class == "blocked_address", res.error
        # A name that looks public when checked and is internal when connected to (DNS rebinding).
        answers = iter([[PUBLIC], ["127.0.0.1"], ["127.0.0.1"]])
        rebind = fake_dns({})
        res = fetch_page(
            f"http://rebind.example:{port}/pages/a.html",
            FetchState(),
            settings,
            client=client,
            internal_source=False,
            resolve=lambda h, p: next(answers) if h == "rebind.example" else rebind(h, p),
        )
        assert res.status == "error" and res.error_class == "blocked_redirect", res.error
    assert feed_server.requests_for("/pages/a.html") == []


def test_fulltext_in_the_sources_file_must_be_true_or_false(tmp_path: Path) -> None:
    from pipeline.feeds.sources import load_sources_file
    from pipeline.settings import ConfigError

    path = sources_file(tmp_path / "s.toml", "https://news.example/rss", 'fulltext = "yes"')
    with pytest.raises(ConfigError, match="'fulltext' must be true or false"):
        load_sources_file(path)
    path = sources_file(tmp_path / "s.toml", "https://news.example/rss", "fulltext = true")
    assert load_sources_file(path)[0].fulltext is True
