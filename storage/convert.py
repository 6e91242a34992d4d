"""Time conventions at the storage boundary: aware UTC in Python, naive UTC in DuckDB."""

from __future__ import annotations

from datetime import UTC, datetime

# Stand-in for a time a NOT NULL column cannot lack; aware, so comparisons never mix kinds.
OLDEST = datetime.min.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_db_time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)


def from_db_time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
