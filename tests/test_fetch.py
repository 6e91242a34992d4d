"""Fetching over real HTTP from a local server, and from local files: every failure is a result."""

from __future__ import annotations

import gzip
import hashlib
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devkit.feed_server import FeedServer
from pipeline.feeds.fetch import fetch_source, is_transient, make_client
from pipeline.records import FetchResult, FetchState, Source
from pipeline.settings import FetchSettings
from tests.builders import rss, rss_item

FEED = rss(
    rss_item("1", "Bridge approved", "The council voted.", date=None), title="Gazette", link=None
).encode()
HASH = hashlib.sha256(FEED).hexdigest()
SETTINGS = FetchSettings(connect_timeout_s=5, read_timeout_s=5, deadline_s=10.0, max_bytes=64 * 1024)
# For slow-server tests: a deadline shorter than the read timeout keeps them quick and shows which fired.
SLOW = SETTINGS.model_copy(update={"read_timeout_s": 2.0, "deadline_s": 1.0})
NOW = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def srv() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def fetch(
    url: str, state: FetchState | None = None, settings: FetchSettings = SETTINGS, **kwargs: object
) -> FetchResult:
    return fetch_source(Source("Gazette", url), state or FetchState(), settings, now=NOW, **kwargs)  # type: ignore[arg-type]


def test_new_feed_is_fetched_with_validators_and_hash(srv: FeedServer) -> None:
    srv.route("/feed.xml", FEED, etag='"v1"', last_modified="Tue, 03 Mar 2026 10:00:00 GMT")
    res = fetch(srv.url("/feed.xml"))
    assert res.status == "ok" and res.http_status == 200
    assert res.body == FEED and res.body_hash == HASH and res.bytes_read == len(FEED)
    assert res.etag == '"v1"' and res.last_modified == "Tue, 03 Mar 2026 10:00:00 GMT"
    assert res.content_type == "application/rss+xml; charset=utf-8"
    assert res.final_url == srv.url("/feed.xml") and not res.permanent_redirect
    assert res.started_at == NOW and res.error_class is None


def test_request_identifies_itself_and_accepts_gzip(srv: FeedServer) -> None:
    srv.route("/feed.xml", FEED)
    fetch(srv.url("/feed.xml"))
    (request,) = srv.requests_for("/feed.xml")
    assert request.headers["user-agent"] == SETTINGS.user_agent
    assert "gzip" in request.headers["accept-encoding"]
    assert "if-none-match" not in request.headers


def test_conditional_get_sends_validators_and_304_means_not_modified(srv: FeedServer) -> None:
    srv.route("/feed.xml", FEED, etag='"v1"', last_modified="Tue, 03 Mar 2026 10:00:00 GMT")
    state = FetchState(etag='"v1"', last_modified="Tue, 03 Mar 2026 10:00:00 GMT", body_hash=HASH)
    res = fetch(srv.url("/feed.xml"), state)
    assert res.status == "not_modified" and res.http_status == 304
    assert res.body is None and res.etag == '"v1"' and res.body_hash == HASH
    request = srv.requests_for("/feed.xml")[-1]
    assert request.headers["if-none-match"] == '"v1"'
    assert request.headers["if-modified-since"] == "Tue, 03 Mar 2026 10:00:00 GMT"


def test_if_modified_since_alone_gets_304(srv: FeedServer) -> None:
    srv.route("/feed.xml", FEED, last_modified="Tue, 03 Mar 2026 10:00:00 GMT")
    res = fetch(srv.url("/feed.xml"), FetchState(last_modified="Tue, 03 Mar 2026 10:00:00 GMT"))
    assert res.status == "not_modified"


def test_same_body_without_validators_is_unchanged(srv: FeedServer) -> None:
    srv.route("/feed.xml", FEED)
    res = fetch(srv.url("/feed.xml"), FetchState(body_hash=HASH))
    assert res.status == "unchanged" and res.body is None and res.body_hash == HASH
    changed = fetch(srv.url("/feed.xml"), FetchState(body_hash="0" * 64))
    assert changed.status == "ok" and changed.body == FEED


def test_gzip_body_is_decoded(srv: FeedServer) -> None:
    srv.route("/feed.xml", FEED, gzip=True)
    res = fetch(srv.url("/feed.xml"))
    assert res.status == "ok" and res.body == FEED and res.body_hash == HASH


def test_oversized_response_is_too_large(srv: FeedServer) -> None:
    srv.route("/big.xml", b"x" * (SETTINGS.max_bytes + 1))
    res = fetch(srv.url("/big.xml"))
    assert res.status == "error" and res.error_class == "too_large" and res.body is None
    assert not is_transient(res)


def test_gzip_bomb_is_caught_by_counting_decoded_bytes(srv: FeedServer) -> None:
    bomb = b"\0" * (50 * SETTINGS.max_bytes)
    assert len(gzip.compress(bomb)) < SETTINGS.max_bytes
    srv.route("/bomb.xml", bomb, gzip=True)
    res = fetch(srv.url("/bomb.xml"))
    assert res.error_class == "too_large"


def test_endless_response_is_cut_off(srv: FeedServer) -> None:
    srv.route("/forever.xml", endless=True)
    res = fetch(srv.url("/forever.xml"))
    assert res.error_class == "too_large" and res.body is None


def test_trickling_server_hits_the_whole_request_deadline(srv: FeedServer) -> None:
    srv.route("/slow.xml", FEED, trickle=0.05)
    res = fetch(srv.url("/slow.xml"), settings=SLOW)
    assert res.status == "error" and res.error_class == "timeout"
    assert "deadline" in (res.error or "")
    assert is_transient(res)


def test_server_that_never_answers_hits_the_deadline(srv: FeedServer) -> None:
    # SLOW's read timeout (2 s) is longer than its deadline (1 s): the deadline must bound the wait
    # for the status line too, not only the body.
    srv.route("/stall.xml", FEED, delay=10)
    res = fetch(srv.url("/stall.xml"), settings=SLOW)
    assert res.error_class == "timeout" and "deadline" in (res.error or "")


def test_silent_server_trips_the_read_timeout_before_the_deadline(srv: FeedServer) -> None:
    srv.route("/silent.xml", FEED, delay=10)
    res = fetch(srv.url("/silent.xml"), settings=SETTINGS.model_copy(update={"read_timeout_s": 0.3}))
    assert res.error_class == "timeout" and "sent nothing for 0.3 s" in (res.error or "")


def test_429_is_rate_limited_and_keeps_retry_after(srv: FeedServer) -> None:
    srv.route("/feed.xml", status=429, headers={"Retry-After": "120"})
    res = fetch(srv.url("/feed.xml"))
    assert res.error_class == "rate_limited" and res.http_status == 429
    assert res.headers["retry-after"] == "120"
    assert "Retry-After: 120" in (res.error or "")
    assert is_transient(res)


def test_410_is_gone_for_good(srv: FeedServer) -> None:
    srv.route("/feed.xml", status=410)
    res = fetch(srv.url("/feed.xml"))
    assert res.error_class == "gone" and "410" in (res.error or "")
    assert not is_transient(res)


def test_server_errors_are_transient_and_client_errors_are_not(srv: FeedServer) -> None:
    srv.route("/503", status=503, headers={"Retry-After": "60"})
    unavailable = fetch(srv.url("/503"))
    assert unavailable.error_class == "http_5xx" and unavailable.headers["retry-after"] == "60"
    assert is_transient(unavailable)
    missing = fetch(srv.url("/no-such-feed"))
    assert missing.error_class == "http_4xx" and missing.http_status == 404
    assert not is_transient(missing)


def test_scheduling_headers_are_kept(srv: FeedServer) -> None:
    srv.route(
        "/feed.xml",
        FEED,
        headers={"Cache-Control": "max-age=600", "Expires": "x", "Age": "5", "X-Other": "1"},
    )
    res = fetch(srv.url("/feed.xml"))
    assert res.headers["cache-control"] == "max-age=600"
    assert res.headers["age"] == "5" and res.headers["expires"] == "x" and "date" in res.headers
    assert "x-other" not in res.headers


def test_permanent_redirect_is_flagged_with_the_new_url(srv: FeedServer) -> None:
    srv.route("/new.xml", FEED)
    srv.redirect("/old.xml", "/new.xml", status=301)
    res = fetch(srv.url("/old.xml"))
    assert res.status == "ok" and res.body == FEED
    assert res.permanent_redirect and res.final_url == srv.url("/new.xml")
    srv.redirect("/moved.xml", srv.url("/new.xml"), status=308)
    assert fetch(srv.url("/moved.xml")).permanent_redirect


def test_temporary_redirect_is_followed_but_not_flagged(srv: FeedServer) -> None:
    srv.route("/new.xml", FEED)
    srv.redirect("/tmp.xml", "/new.xml", status=302)
    res = fetch(srv.url("/tmp.xml"))
    assert res.status == "ok" and not res.permanent_redirect and res.final_url == srv.url("/new.xml")


def test_conditional_headers_survive_a_redirect(srv: FeedServer) -> None:
    srv.route("/new.xml", FEED, etag='"v1"')
    srv.redirect("/old.xml", "/new.xml", status=301)
    res = fetch(srv.url("/old.xml"), FetchState(etag='"v1"'))
    assert res.status == "not_modified" and res.permanent_redirect


def test_redirect_loops_and_bad_targets_are_errors(srv: FeedServer) -> None:
    srv.redirect("/loop.xml", "/loop.xml", status=302)
    assert fetch(srv.url("/loop.xml")).error_class == "too_many_redirects"
    srv.redirect("/ftp.xml", "ftp://example.com/feed.xml", status=302)
    assert fetch(srv.url("/ftp.xml")).error_class == "bad_redirect"
    srv.route("/nowhere.xml", status=301, content_type=None)
    assert fetch(srv.url("/nowhere.xml")).error_class == "bad_redirect"


def test_refused_connection_is_a_transient_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    res = fetch(f"http://127.0.0.1:{port}/feed.xml")
    assert res.error_class == "connect_error" and is_transient(res)


def test_shared_client_serves_parallel_fetches(srv: FeedServer) -> None:
    for i in range(8):
        srv.route(f"/f{i}.xml", FEED.replace(b"Gazette", f"Gazette {i}".encode()))
    srv.route("/slow.xml", FEED, trickle=0.05)
    with make_client(SETTINGS) as client, ThreadPoolExecutor(max_workers=4) as pool:
        urls = [srv.url(f"/f{i}.xml") for i in range(8)] + [srv.url("/slow.xml")]
        results = list(
            pool.map(lambda u: fetch(u, settings=SLOW if "slow" in u else SETTINGS, client=client), urls)
        )
    assert [r.status for r in results[:8]] == ["ok"] * 8
    assert results[3].body is not None and b"Gazette 3" in results[3].body
    assert results[8].error_class == "timeout"


def test_local_file_by_file_url_and_by_relative_path(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "local.xml").write_bytes(FEED)
    by_url = fetch((feeds / "local.xml").as_uri())
    assert by_url.status == "ok" and by_url.body == FEED and by_url.body_hash == HASH
    by_path = fetch("feeds/local.xml", base_dir=tmp_path)
    assert by_path.status == "ok" and by_path.final_url == str(feeds / "local.xml")
    again = fetch("feeds/local.xml", FetchState(body_hash=HASH), base_dir=tmp_path)
    assert again.status == "unchanged" and again.body is None


def test_missing_and_oversized_local_files(tmp_path: Path) -> None:
    missing = fetch("nope.xml", base_dir=tmp_path)
    assert missing.error_class == "not_found" and "nope.xml" in (missing.error or "")
    assert not is_transient(missing)
    hint = fetch("example.com/feed.xml", base_dir=tmp_path)
    assert "https://" in (hint.error or "")
    assert fetch(str(tmp_path)).error_class == "not_found"
    (tmp_path / "big.xml").write_bytes(b"x" * (SETTINGS.max_bytes + 1))
    assert fetch("big.xml", base_dir=tmp_path).error_class == "too_large"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/feed.xml",
        "javascript:alert(1)",
        "mailto:news@example.com",
        "",
        "   ",
        "http://",
        "https:///x",
    ],
)
def test_unsupported_or_empty_urls_are_invalid(url: str) -> None:
    res = fetch(url)
    assert res.status == "error" and res.error_class == "invalid_url" and res.error
    assert not is_transient(res)


def test_remote_file_urls_are_refused() -> None:
    assert fetch("file://fileserver/share/feed.xml").error_class == "invalid_url"
