"""One ingest over many bad sources: every failure is a recorded, readable error, the good
sources still land, and nothing is lost or stored twice. Feeds are served over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit.feed_server import FeedServer
from flows.prefect_flows import ingest_flow
from tests.builders import (
    external_entity_doctype,
    last_fetches,
    query,
    quick_fetch,
    rss,
    rss_item,
    source_health,
    write_sources,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


GOOD = rss(
    rss_item("g1", "Harbour bridge reopens after repairs", "The harbour bridge reopened on Friday."),
    rss_item("g2", "Library extends opening hours", "The city library will open until ten at night."),
)
# Each entity expands to ten of the one before: &lol9; would be 10^9 "lol"s.
_LAUGHS = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(2, 10))
BILLION_LAUGHS = (
    f'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol1 "{"lol" * 10}">{_LAUGHS}]>'
    '<rss version="2.0"><channel><title>&lol9;</title></channel></rss>'
)
EXTERNAL_ENTITY = rss(
    rss_item("xx1", "Entity &x;", "body", date=None),
    title="x",
    doctype=external_entity_doctype("file:///etc/passwd"),
)


def serve_bad_sources(srv: FeedServer) -> dict[str, str]:
    """name -> URL for a good feed and one of every kind of trouble."""
    srv.route("/good.xml", GOOD, etag='"good-1"')
    srv.route("/html.xml", "<!DOCTYPE html><html><head><title>Sign in</title></head><body>x</body></html>",
              content_type="text/html")  # fmt: skip
    srv.route("/empty.xml", b"")
    srv.route("/garbage.xml", b"\x00\x01\x02 this is not xml at all \xff\xfe")
    latin1 = rss(rss_item("l1", "Caf\u00e9 M\u00fcller opens", "S\u00e3o Paulo caf\u00e9s")).encode("latin-1")
    srv.route("/wrong-charset.xml", latin1, content_type="application/rss+xml; charset=utf-8")
    utf8_said_latin1 = rss(rss_item("u1", "Jürgen's café", "Amélie and the émigrés"), encoding="iso-8859-1")
    srv.route("/utf8-declared-latin1.xml", utf8_said_latin1.encode("utf-8"))
    srv.route("/huge.xml", b"<rss>" + b"x" * 300_000 + b"</rss>")
    srv.route("/endless.xml", endless=True)
    srv.route("/slow.xml", GOOD, trickle=0.2)
    srv.route("/laughs.xml", BILLION_LAUGHS)
    srv.route("/entity.xml", EXTERNAL_ENTITY)
    srv.route("/gone.xml", status=410)
    srv.route("/broken-server.xml", "oops", status=500, content_type="text/plain")
    srv.route(
        "/dirty.xml",
        rss(
            rss_item("d1", None, "An item without a title still has a story to tell. Second sentence."),
            rss_item("d2", "No date on this one", "Undated body text.", date=None),
            rss_item("d3", "Far future", "Body from the future.", date="Sat, 20 Apr 2031 10:00:00 GMT"),
            rss_item("d4", "Broken date", "Body with an unreadable date.", date="yesterday-ish"),
            rss_item(
                "same", "Ice rink opens", "The ice rink opens on Saturday.", link="https://x.example/rink"
            ),
            rss_item(
                "same",
                "Fire engine named",
                "The new fire engine is called Ember.",
                link="https://x.example/engine",
            ),
            rss_item("d5", "Listed twice", "Exactly the same entry twice in one feed."),
            rss_item("d5", "Listed twice", "Exactly the same entry twice in one feed."),
        ),
    )
    names = {
        "good": "/good.xml", "html": "/html.xml", "empty": "/empty.xml", "garbage": "/garbage.xml",
        "wrong-charset": "/wrong-charset.xml", "utf8-declared-latin1": "/utf8-declared-latin1.xml",
        "huge": "/huge.xml", "endless": "/endless.xml", "slow": "/slow.xml", "laughs": "/laughs.xml",
        "entity": "/entity.xml", "gone": "/gone.xml", "broken-server": "/broken-server.xml",
        "dirty": "/dirty.xml", "missing": "/no-such-feed.xml",
    }  # fmt: skip
    return {name: srv.url(path) for name, path in names.items()} | {"refused": "http://127.0.0.1:9/x.xml"}


@pytest.fixture
def bad_sources(tmp_path: Path, feed_server: FeedServer) -> Path:
    return write_sources(tmp_path / "sources.toml", serve_bad_sources(feed_server))


def _articles(db: Path) -> dict[str, list[tuple]]:
    """(title, text, published_at) of the stored articles, by source."""
    rows = query(db, "SELECT source, title, text, published_at FROM articles ORDER BY title")
    out: dict[str, list[tuple]] = {}
    for source, *rest in rows:
        out.setdefault(source, []).append(tuple(rest))
    return out


def test_every_bad_source_gets_a_readable_error_and_the_good_ones_still_land(
    bad_sources: Path, make_settings, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = quick_fetch(make_settings(sources=bad_sources), max_bytes=200_000, deadline_s=2.0)
    report = ingest_flow(settings)
    fetches = last_fetches(settings.db)
    assert set(fetches) == set(report.failures) | {
        "good",
        "wrong-charset",
        "utf8-declared-latin1",
        "dirty",
        "entity",
    }

    def failed(name: str, error_class: str) -> str:
        fetch = fetches[name]
        assert (fetch["status"], fetch["error_class"]) == ("error", error_class), (name, fetch)
        error = fetch["error"]
        assert error and len(error) < 400
        return error

    assert "HTML page titled 'Sign in'" in failed("html", "not_a_feed")
    assert failed("empty", "empty") == "empty response body"
    failed("garbage", "malformed")
    assert "limit" in failed("huge", "too_large")
    assert "limit" in failed("endless", "too_large")
    assert "deadline" in failed("slow", "timeout")
    failed("laughs", "malformed")
    failed("gone", "gone")
    failed("broken-server", "http_5xx")
    failed("missing", "http_4xx")
    failed("refused", "connect_error")
    # A transient error is retried within the run before it is recorded; a permanent one is not.
    assert len(feed_server.requests_for("/broken-server.xml")) == 2
    assert len(feed_server.requests_for("/gone.xml")) == 1

    articles = _articles(settings.db)
    assert [t for t, *_ in articles["good"]] == [
        "Harbour bridge reopens after repairs",
        "Library extends opening hours",
    ]
    # An external entity is never resolved: the title keeps no file content.
    assert all("root:" not in (t + x) for t, x, _ in articles.get("entity", []))
    assert articles["wrong-charset"][0][0] == "Café Müller opens"
    assert "declared character set utf-8" in fetches["wrong-charset"]["warning"]
    assert "read as windows-1252" in fetches["wrong-charset"]["warning"]
    assert articles["utf8-declared-latin1"][0][0] == "Jürgen's café"
    dirty = {t: (x, p) for t, x, p in articles["dirty"]}
    assert "An item without a title still has a story to tell." in dirty
    assert dirty["No date on this one"][1] is None
    assert dirty["Far future"][1] is None, "a date years ahead is not trusted"
    assert dirty["Broken date"][1] is None
    assert {"Ice rink opens", "Fire engine named"} <= set(dirty), "one GUID for two items loses neither"
    assert len(articles["dirty"]) == 7, "the entry listed twice is stored once"
    assert "future" in fetches["dirty"]["warning"] and "GUID 'same'" in fetches["dirty"]["warning"]

    health = source_health(settings.db)
    assert (health["gone"]["health"], health["gone"]["disabled_reason"]) == ("disabled", "410 Gone")
    assert health["html"]["health"] == health["refused"]["health"] == "failing"

    # The same pass again: nothing new, nothing doubled, the removed feed is left alone.
    total = sum(len(v) for v in articles.values())
    again = ingest_flow(settings)
    assert again.new_articles == 0
    assert sum(len(v) for v in _articles(settings.db).values()) == total
    assert len(feed_server.requests_for("/gone.xml")) == 1
    assert feed_server.requests_for("/good.xml")[-1].headers.get("if-none-match") == '"good-1"'
