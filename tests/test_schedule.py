"""Politeness policy: how long we leave a source alone after each fetch."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.feeds.schedule import next_fetch_at, parse_retry_after
from pipeline.records import FetchResult
from pipeline.settings import FetchSettings

NOW = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
SETTINGS = FetchSettings(
    base_interval_s=900, min_interval_s=300, max_interval_s=86400, error_backoff_cap_s=7 * 86400
)


def result(status: str = "ok", error_class: str | None = None, **headers: str) -> FetchResult:
    return FetchResult(
        source="s",
        url="https://example.com/feed",
        status=status,
        started_at=NOW,
        error_class=error_class,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )


def wait(res: FetchResult, failures: int = 0, ttl: int | None = None, seed: int | None = 1) -> float:
    rng = random.Random(seed) if seed is not None else None
    when = next_fetch_at(NOW, res, consecutive_failures=failures, ttl_minutes=ttl, settings=SETTINGS, rng=rng)
    return (when - NOW).total_seconds()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Tue, 03 Mar 2026 12:10:00 GMT", 600.0),
        ("Tue, 03 Mar 2026 11:00:00 GMT", 0.0),
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize("status", ["ok", "not_modified", "unchanged"])
def test_success_without_hints_waits_the_base_interval(status: str) -> None:
    assert wait(result(status)) == 900


def test_feed_ttl_longer_than_the_base_interval_is_respected() -> None:
    assert wait(result(), ttl=60) == 3600
    assert wait(result(), ttl=5) == 900


def test_cache_control_max_age_minus_age() -> None:
    assert wait(result(cache_control="public, max-age=7200", age="1200")) == 6000
    assert wait(result(cache_control="no-cache, max-age=0")) == 900


def test_expires_relative_to_the_date_header() -> None:
    res = result(expires="Tue, 03 Mar 2026 14:00:00 GMT", date="Tue, 03 Mar 2026 12:30:00 GMT")
    assert wait(res) == 5400
    # Without Date, relative to now; a malformed Expires is ignored.
    assert wait(result(expires="Tue, 03 Mar 2026 13:00:00 GMT")) == 3600
    assert wait(result(expires="0")) == 900


def test_retry_after_on_success_is_honoured() -> None:
    assert wait(result(retry_after="5000")) == 5000


def test_success_waits_are_clamped() -> None:
    assert wait(result(cache_control="max-age=9999999")) == 86400
    small = FetchSettings(base_interval_s=10, min_interval_s=300, max_interval_s=86400)
    when = next_fetch_at(NOW, result(), consecutive_failures=0, ttl_minutes=None, settings=small)
    assert when == NOW + timedelta(seconds=300)


def test_errors_back_off_exponentially_with_bounded_jitter() -> None:
    for failures in range(1, 8):
        expected = 900 * 2 ** (failures - 1)
        seconds = wait(result("error", "http_5xx"), failures=failures, seed=failures)
        assert expected * 0.8 <= seconds <= expected * 1.2


def test_backoff_is_capped() -> None:
    assert wait(result("error", "timeout"), failures=60) <= 7 * 86400
    assert wait(result("error", "timeout"), failures=10_000) <= 7 * 86400


def test_backoff_never_comes_before_retry_after() -> None:
    seconds = wait(result("error", "rate_limited", retry_after="36000"), failures=1)
    assert seconds == 36000
    # An absurd Retry-After is held to the backoff cap.
    assert wait(result("error", "rate_limited", retry_after="99999999"), failures=1) == 7 * 86400


def test_backoff_is_deterministic_with_a_seeded_rng() -> None:
    assert wait(result("error", "timeout"), failures=3, seed=42) == wait(
        result("error", "timeout"), failures=3, seed=42
    )


def test_jitter_spreads_sources_that_failed_together() -> None:
    waits = {wait(result("error", "timeout"), failures=2, seed=s) for s in range(20)}
    assert len(waits) > 1
