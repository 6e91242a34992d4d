"""Polite, robust fetching over many runs: Retry-After and timeouts show up in source_health with
the next attempt the server asked for, redirects are remembered, one host is never flooded."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from devkit.feed_server import FeedServer, RequestRecord
from flows.cli import EXIT_OK, main
from flows.prefect_flows import ingest_flow
from storage.convert import from_db_time, utcnow
from tests.builders import quick_fetch, rss, rss_item, source_health, write_sources

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def one_report_feed(name: str) -> str:
    return rss(rss_item(f"{name}-1", f"{name} reports", f"Body of {name}.", date=None), title=name, link=None)


class Gauge:
    """How many requests the server is handling at once, at most."""

    def __init__(self) -> None:
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def body(self, name: str):
        def serve(_: RequestRecord) -> str:
            with self.lock:
                self.now += 1
                self.peak = max(self.peak, self.now)
            time.sleep(0.4)
            with self.lock:
                self.now -= 1
            return one_report_feed(name)

        return serve


def test_rate_limits_timeouts_redirects_and_per_host_limits(
    tmp_path: Path, make_settings, feed_server: FeedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    gauge = Gauge()
    feed_server.route("/busy.xml", "slow down", status=429, content_type="text/plain",
                      headers={"Retry-After": "7200"})  # fmt: skip
    feed_server.route("/stuck.xml", one_report_feed("stuck"), delay=5)
    feed_server.redirect("/old.xml", "/new.xml", status=301)
    feed_server.route("/new.xml", one_report_feed("moved"))
    for k in range(6):
        feed_server.route(f"/section-{k}.xml", gauge.body(f"section{k}"))
    names = {"busy": "/busy.xml", "stuck": "/stuck.xml", "moved": "/old.xml"}
    names |= {f"section-{k}": f"/section-{k}.xml" for k in range(6)}
    sources = write_sources(tmp_path / "sources.toml", {n: feed_server.url(p) for n, p in names.items()})
    settings = quick_fetch(make_settings(sources=sources), per_host_limit=2, max_workers=8)
    before = utcnow()
    ingest_flow(settings)

    health = source_health(settings.db)
    busy = health["busy"]
    assert busy["health"] == "failing" and busy["last_error_class"] == "rate_limited"
    assert "429" in busy["last_error"] and "Retry-After: 7200" in busy["last_error"]
    assert from_db_time(busy["next_fetch_at"]) >= before + timedelta(seconds=7200)
    assert len(feed_server.requests_for("/busy.xml")) == 1, "told to wait: not asked again this run"
    stuck = health["stuck"]
    assert stuck["health"] == "failing" and stuck["last_error_class"] == "timeout"
    assert len(feed_server.requests_for("/stuck.xml")) == 1, "an expired deadline is not tried again this run"
    assert from_db_time(stuck["next_fetch_at"]) > before + timedelta(seconds=60)
    assert health["moved"]["health"] == "ok" and health["moved"]["url"].endswith("/new.xml")
    assert gauge.peak <= 2, f"{gauge.peak} requests to one host at once"

    # The next due-only pass leaves the rate-limited and the backed-off sources alone and goes
    # straight to the new address of the moved feed.
    feed_server.clear_log()
    settings.fetch.base_interval_s = settings.fetch.min_interval_s = 0
    with duckdb.connect(str(settings.db)) as con:
        con.execute("UPDATE sources SET next_fetch_at = NULL WHERE name = 'moved'")
    ingest_flow(settings, due_only=True)
    assert feed_server.requests_for("/busy.xml") == [] and feed_server.requests_for("/stuck.xml") == []
    assert feed_server.requests_for("/old.xml") == [] and len(feed_server.requests_for("/new.xml")) == 1

    assert main(["sources", "--db", str(settings.db)]) == EXIT_OK
    table = capsys.readouterr().out
    assert "busy" in table and "failing" in table and "Retry-After: 7200" in table
