"""Politeness: when to fetch a source next.

After a successful fetch (new body, 304 or unchanged) the next fetch waits the
longest of: the base interval, the feed's <ttl>, the response's freshness
lifetime (Cache-Control max-age minus Age, else Expires minus Date) and any
Retry-After, clamped to [min_interval, max_interval]. After a failure it backs
off exponentially from the base interval (doubling per consecutive failure,
+-20 % jitter so sources that failed together do not return together), capped
at error_backoff_cap_s, and never earlier than a Retry-After (429, 503).
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from pipeline.records import FetchResult
from pipeline.settings import FetchSettings

JITTER = 0.2
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    # RFC 9110 dates are GMT; a zone-less one is read as UTC rather than local time.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or an HTTP date); None if absent or invalid."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    when = _http_date(value)
    if when is None:
        return None
    return max(0.0, (when - now).total_seconds())


def retry_after_until(result: FetchResult, now: datetime, settings: FetchSettings) -> datetime | None:
    """Until when the server asked not to be fetched again (capped like error backoff), if it did."""
    seconds = parse_retry_after(result.headers.get("retry-after"), now)
    if not seconds:
        return None
    return now + timedelta(seconds=min(seconds, settings.error_backoff_cap_s))


def _freshness(result: FetchResult, now: datetime) -> float | None:
    """Seconds the response stays fresh according to its caching headers."""
    headers = result.headers
    cache_control = headers.get("cache-control", "")
    match = _MAX_AGE.search(cache_control)
    if match:
        age = headers.get("age", "").strip()
        return max(0.0, int(match.group(1)) - (int(age) if age.isdigit() else 0))
    expires = _http_date(headers.get("expires"))
    if expires is not None:
        served = _http_date(headers.get("date")) or now
        return max(0.0, (expires - served).total_seconds())
    return None


def next_fetch_at(
    now: datetime,
    result: FetchResult,
    *,
    consecutive_failures: int,
    ttl_minutes: int | None,
    settings: FetchSettings,
    rng: random.Random | None = None,
) -> datetime:
    """When the source should be fetched again (see the module docstring for the policy)."""
    retry_after = parse_retry_after(result.headers.get("retry-after"), now)
    if result.failed:
        rng = rng or random.Random()
        failures = max(1, consecutive_failures)
        delay = settings.base_interval_s * 2.0 ** min(failures - 1, 40)
        delay = min(delay, settings.error_backoff_cap_s) * (1.0 + rng.uniform(-JITTER, JITTER))
        delay = max(settings.min_interval_s, min(delay, settings.error_backoff_cap_s))
        if retry_after is not None:
            # The server said when; it wins over our guess but not over the cap.
            delay = max(delay, min(retry_after, settings.error_backoff_cap_s))
        return now + timedelta(seconds=delay)
    candidates = [float(settings.base_interval_s)]
    if ttl_minutes:
        candidates.append(ttl_minutes * 60.0)
    fresh = _freshness(result, now)
    if fresh is not None:
        candidates.append(fresh)
    if retry_after is not None:
        candidates.append(retry_after)
    delay = min(max(max(candidates), settings.min_interval_s), settings.max_interval_s)
    return now + timedelta(seconds=delay)
