"""One ingest over many bad sources: every failure is a recorded, readable error, the good
sources still land, and nothing is lost or stored twice. Feeds are served over real HTTP."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from devkit.feed_server import FeedServer
from flows.run import ingest_flow_for

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def rss(*items: str, channel_extra: str = "") -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://example.org/</link>{channel_extra}{''.join(items)}</channel></rss>"
    )


def item(guid: str | None, title: str | None, text: str, date: str | None = "Fri, 20 Nov 2026 10:00:00 GMT",
         link: str | None = None) -> str:  # fmt: skip
    parts = []
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{guid}</guid>')
    if title is not None:
        parts.append(f"<title>{title}</title>")
    if link is not None:
        parts.append(f"<link>{link}</link>")
    if date is not None:
        parts.append(f"<pubDate>{date}</pubDate>")
    parts.append(f"<description>{text}</description>")
    return "<item>" + "".join(parts) + "</item>"


GOOD = rss(
    item("g1", "Harbour bridge reopens after repairs", "The harbour bridge reopened on Friday."),
    item("g2", "Library extends opening hours", "The city library will open until ten at night."),
)
# Each entity expands to ten of the one before: &lol9; would be 10^9 "lol"s.
_LAUGHS = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(2, 10))
BILLION_LAUGHS = (
    f'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol1 "{"lol" * 10}">{_LAUGHS}]>'
    '<rss version="2.0"><channel><title>&lol9;</title></channel></rss>'
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    '<rss version="2.0"><channel><title>x</title><item><guid>xx1</guid><title>Entity &x;</title>'
    "<description>body</description></item></channel></rss>"
)


def serve_bad_sources(srv: FeedServer) -> dict[str, str]:
    """name -> URL for a good feed and one of every kind of trouble."""
    srv.route("/good.xml", GOOD, etag='"good-1"')
    srv.route("/html.xml", "<!DOCTYPE html><html><head><title>Sign in</title></head><body>x</body></html>",
              content_type="text/html")  # fmt: skip
    srv.route("/empty.xml", b"")
    srv.route("/garbage.xml", b"\x00\x01\x02 this is not xml at all \xff\xfe")
    latin1 = rss(item("l1", "Caf\u00e9 M\u00fcller opens", "S\u00e3o Paulo caf\u00e9s")).encode("latin-1")
    srv.route("/wrong-charset.xml", latin1, content_type="application/rss+xml; charset=utf-8")
    utf8_said_latin1 = rss(item("u1", "Jürgen's café", "Amélie and the émigrés")).replace(
        'encoding="utf-8"', 'encoding="iso-8859-1"'
    )
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
            item("d1", None, "An item without a title still has a story to tell. Second sentence."),
            item("d2", "No date on this one", "Undated body text.", date=None),
            item("d3", "Far future", "Body from the future.", date="Sat, 20 Apr 2031 10:00:00 GMT"),
            item("d4", "Broken date", "Body with an unreadable date.", date="yesterday-ish"),
            item("same", "Ice rink opens", "The ice rink opens on Saturday.", link="https://x.example/rink"),
            item(
                "same",
                "Fire engine named",
                "The new fire engine is called Ember.",
                link="https://x.example/engine",
            ),
            item("d5", "Listed twice", "Exactly the same entry twice in one feed."),
            item("d5", "Listed twice", "Exactly the same entry twice in one feed."),
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
    urls = serve_bad_sources(feed_server)
    path = tmp_path / "sources.toml"
    path.write_text("".join(f'[[sources]]\nname = "{n}"\nurl = "{u}"\n\n' for n, u in urls.items()))
    return path


def _fetches(db: Path) -> dict[str, tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT source, status, error_class, error, warning, entries, new_articles "
            "FROM fetches ORDER BY fetch_id"
        ).fetchall()
    return {r[0]: r[1:] for r in rows}


def _articles(db: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT source, title, text, published_at FROM articles ORDER BY title").fetchall()
    out: dict[str, list[tuple]] = {}
    for source, *rest in rows:
        out.setdefault(source, []).append(tuple(rest))
    return out


def test_every_bad_source_gets_a_readable_error_and_the_good_ones_still_land(
    bad_sources: Path, make_settings, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(sources=bad_sources)
    settings.fetch.max_bytes = 200_000
    settings.fetch.deadline_s = 2.0
    settings.fetch.read_timeout_s = 1.0
    settings.fetch.retries = 1
    settings.fetch.retry_delay_s = 0.05
    report = ingest_flow_for(settings)(settings)
    fetches = _fetches(settings.db)
    assert set(fetches) == set(report.failures) | {
        "good",
        "wrong-charset",
        "utf8-declared-latin1",
        "dirty",
        "entity",
    }

    def failed(name: str, error_class: str) -> str:
        status, cls, error, *_ = fetches[name]
        assert (status, cls) == ("error", error_class), (name, fetches[name])
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
    assert "declared as utf-8" in fetches["wrong-charset"][3]
    assert articles["utf8-declared-latin1"][0][0] == "Jürgen's café"
    dirty = {t: (x, p) for t, x, p in articles["dirty"]}
    assert "An item without a title still has a story to tell." in dirty
    assert dirty["No date on this one"][1] is None
    assert dirty["Far future"][1] is None, "a date years ahead is not trusted"
    assert dirty["Broken date"][1] is None
    assert {"Ice rink opens", "Fire engine named"} <= set(dirty), "one GUID for two items loses neither"
    assert len(articles["dirty"]) == 7, "the entry listed twice is stored once"
    assert "future" in fetches["dirty"][3] and "GUID 'same'" in fetches["dirty"][3]

    health = _health(settings.db)
    assert health["gone"] == ("disabled", "410 Gone")
    assert health["html"][0] == health["refused"][0] == "failing"

    # The same pass again: nothing new, nothing doubled, the removed feed is left alone.
    total = sum(len(v) for v in articles.values())
    again = ingest_flow_for(settings)(settings)
    assert again.new_articles == 0
    assert sum(len(v) for v in _articles(settings.db).values()) == total
    assert len(feed_server.requests_for("/gone.xml")) == 1
    assert feed_server.requests_for("/good.xml")[-1].headers.get("if-none-match") == '"good-1"'


def _health(db: Path) -> dict[str, tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT name, health, disabled_reason FROM source_health").fetchall()
    return {r[0]: r[1:] for r in rows}
