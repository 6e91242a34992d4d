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


def test_a_slow_host_waits_for_its_own_slot_not_on_every_thread(
    tmp_path: Path, make_settings, feed_server: FeedServer
) -> None:
    """One host answers in 2 s and allows one request at a time: its second feed waits in its own
    queue, and the other host's feeds are fetched on the free thread meanwhile."""
    for k in range(2):
        feed_server.route(f"/slow-{k}.xml", FEED, delay=2.0)
    for k in range(8):
        feed_server.route(f"/quick-{k}.xml", rss(rss_item(f"q-{k}", f"Quick {k}", "A quick answer.")))
    # Sources are fetched in name order: the slow host's first. "localhost" is the same server under
    # another host name.
    urls = {f"a-slow-{k}": feed_server.url(f"/slow-{k}.xml") for k in range(2)}
    other_host = feed_server.base_url.replace("127.0.0.1", "localhost")
    urls |= {f"b-quick-{k}": f"{other_host}/quick-{k}.xml" for k in range(8)}
    sources = write_sources(tmp_path / "sources.toml", urls)
    settings = quick_fetch(
        make_settings(sources=sources), per_host_limit=1, max_workers=2, read_timeout_s=5.0
    )
    report = ingest_step(settings, progress=False)

    assert report.sources_ok == 10
    slow = sorted(r.at for r in feed_server.requests if r.path.startswith("/slow-"))
    quick = [r.at for r in feed_server.requests if r.path.startswith("/quick-")]
    assert len(quick) == 8 and max(quick) < slow[1], "the quick host's feeds did not wait for the slow host"


def test_a_source_waiting_for_its_retry_holds_no_thread(
    tmp_path: Path, make_settings, feed_server: FeedServer
) -> None:
    """With one fetch thread, a failing feed's wait before its retry (1-3 s here) is spent fetching
    the other feeds, not sleeping on the thread."""
    feed_server.route("/flaky.xml", "try again", status=503, content_type="text/plain")
    for k in range(5):
        feed_server.route(f"/quick-{k}.xml", rss(rss_item(f"q-{k}", f"Quick {k}", "A quick answer.")))
    urls = {"a-flaky": feed_server.url("/flaky.xml")}
    urls |= {f"b-quick-{k}": feed_server.url(f"/quick-{k}.xml") for k in range(5)}
    sources = write_sources(tmp_path / "sources.toml", urls)
    settings = quick_fetch(make_settings(sources=sources), max_workers=1, retries=1, retry_delay_s=2.0)
    report = ingest_step(settings, progress=False)

    assert report.failures["a-flaky"].startswith("http_5xx") and report.sources_ok == 5
    flaky = [r.at for r in feed_server.requests_for("/flaky.xml")]
    quick = [r.at for r in feed_server.requests if r.path.startswith("/quick-")]
    assert len(flaky) == 2 and max(quick) < flaky[1], "the other feeds were fetched during the wait"
