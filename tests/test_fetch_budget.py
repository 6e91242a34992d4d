"""How much of a run one source may take, and how long a server's "come back later" holds.

A source whose whole-request deadline expired is not tried again in the same run (a server that
trickles bytes would otherwise hold the run for several deadlines); fast transient failures are
retried; a server that answered with Retry-After is left alone until then by every ingest,
scheduled or manual, unless forced.
"""

from __future__ import annotations

from pathlib import Path

from devkit.feed_server import FeedServer
from flows.ingest import ingest_step
from tests.builders import quick_fetch, rss, rss_item, source_health, write_sources

FEED = rss(rss_item("b-1", "Budget report", "A report from a server that takes its time."))


def test_a_deadline_that_expired_is_not_retried_but_fast_failures_are(
    tmp_path: Path, make_settings, feed_server: FeedServer
) -> None:
    feed_server.route("/trickle.xml", FEED, trickle=0.3)
    feed_server.route("/flaky.xml", "try again", status=503, content_type="text/plain")
    sources = write_sources(
        tmp_path / "sources.toml",
        {"Trickle": feed_server.url("/trickle.xml"), "Flaky": feed_server.url("/flaky.xml")},
    )
    settings = quick_fetch(make_settings(sources=sources), deadline_s=1.5, retries=2, source_budget_s=30.0)
    report = ingest_step(settings, progress=False)

    assert report.failures["Trickle"].startswith("timeout")
    assert len(feed_server.requests_for("/trickle.xml")) == 1, "a second deadline after the first expired"
    assert report.failures["Flaky"].startswith("http_5xx")
    assert len(feed_server.requests_for("/flaky.xml")) == 3, "fast transient failures are retried"


def test_retries_stop_when_the_sources_budget_is_spent(
    tmp_path: Path, make_settings, feed_server: FeedServer
) -> None:
    feed_server.route("/flaky.xml", "try again", status=503, content_type="text/plain")
    sources = write_sources(tmp_path / "sources.toml", {"Flaky": feed_server.url("/flaky.xml")})
    # Retries would wait about 2 s, then about 8 s (±50 %): the second does not fit a 5 s budget.
    settings = quick_fetch(
        make_settings(sources=sources), deadline_s=1.0, retries=3, retry_delay_s=2.0, source_budget_s=5.0
    )
    ingest_step(settings, progress=False)
    assert len(feed_server.requests_for("/flaky.xml")) == 2


def test_every_ingest_honours_retry_after_until_forced(
    tmp_path: Path, make_settings, feed_server: FeedServer
) -> None:
    feed_server.route("/busy.xml", "slow down", status=429, content_type="text/plain",
                      headers={"Retry-After": "3600"})  # fmt: skip
    feed_server.route("/calm.xml", FEED)
    urls = {"Busy": feed_server.url("/busy.xml"), "Calm": feed_server.url("/calm.xml")}
    sources = write_sources(tmp_path / "sources.toml", urls)
    settings = quick_fetch(make_settings(sources=sources))
    first = ingest_step(settings, progress=False)
    assert first.failures["Busy"].startswith("rate_limited")
    assert len(feed_server.requests_for("/busy.xml")) == 1, "told to wait: not asked again this run"

    # A manual run (as from cron) an instant later: the busy server is not asked again.
    again = ingest_step(settings, progress=False)
    assert len(feed_server.requests_for("/busy.xml")) == 1
    assert "Busy" in again.deferred and "Calm" not in again.deferred
    assert len(feed_server.requests_for("/calm.xml")) == 2
    assert source_health(settings.db)["Busy"]["last_error_class"] == "rate_limited"

    forced = ingest_step(settings, force=True, progress=False)
    assert len(feed_server.requests_for("/busy.xml")) == 2 and forced.deferred == {}
