"""Sources, their fetch state and the log of fetch attempts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.records import FetchResult, FetchState, Source
from storage.batch import registered, strings
from storage.convert import from_db_time, to_db_time


@dataclass(frozen=True)
class SourceRow:
    """A source as stored, with what the next fetch needs."""

    source: Source
    state: FetchState
    enabled: bool
    consecutive_failures: int
    next_fetch_at: datetime | None
    ttl_minutes: int | None
    retry_after_until: datetime | None = None


def sync_sources(con: duckdb.DuckDBPyConnection, sources: Sequence[Source], now: datetime) -> None:
    """Make the table follow the sources file: add new ones, pick up edited URLs.

    A URL edited in the file resets the redirect-followed URL and the validators and re-enables a
    source that was disabled (e.g. by 410 Gone): the user has said where to look. An unchanged URL
    keeps them; language, category and aggregator always follow the file. Sources removed from the
    file stay (their articles refer to them) but are disabled.

    Set-based: one upsert of the whole file and one update, whatever the number of sources (one
    statement per source cost 80-95 CPU s a pass at 10,000 sources). A name listed twice counts once, as
    its last entry: DuckDB would silently apply only the first row of a key within one insert.
    Rows whose file entry is unchanged are not rewritten.
    """
    latest = {s.name: s for s in sources}  # the last entry of a name wins
    if not latest:
        return
    incoming = list(latest.values())
    columns = {
        "name": strings(s.name for s in incoming),
        "url": strings(s.url for s in incoming),
        "language": strings(s.language for s in incoming),
        "category": strings(s.category for s in incoming),
        "aggregator": pa.array([bool(s.aggregator) for s in incoming], pa.bool_()),
    }
    with registered(con, "incoming_sources", columns):
        con.execute(
            """
            INSERT INTO sources (name, url, config_url, language, category, aggregator, added_at)
            SELECT name, url, url, language, category, aggregator, ?::TIMESTAMP FROM incoming_sources
            ON CONFLICT (name) DO UPDATE SET
                url = CASE WHEN sources.config_url = excluded.config_url THEN sources.url
                           ELSE excluded.url END,
                enabled = CASE WHEN sources.config_url = excluded.config_url THEN sources.enabled
                               ELSE TRUE END,
                disabled_reason = CASE WHEN sources.config_url = excluded.config_url
                                       THEN sources.disabled_reason END,
                etag = CASE WHEN sources.config_url = excluded.config_url THEN sources.etag END,
                last_modified = CASE WHEN sources.config_url = excluded.config_url
                                     THEN sources.last_modified END,
                body_hash = CASE WHEN sources.config_url = excluded.config_url THEN sources.body_hash END,
                config_url = excluded.config_url,
                language = excluded.language,
                category = excluded.category,
                aggregator = excluded.aggregator
            WHERE sources.config_url IS DISTINCT FROM excluded.config_url
               OR sources.language IS DISTINCT FROM excluded.language
               OR sources.category IS DISTINCT FROM excluded.category
               OR sources.aggregator IS DISTINCT FROM excluded.aggregator
            """,
            [to_db_time(now)],
        ).fetchall()
        con.execute(
            "UPDATE sources SET enabled = FALSE, disabled_reason = 'removed from sources file' "
            "WHERE enabled AND name NOT IN (SELECT name FROM incoming_sources)"
        ).fetchall()


def load_sources(con: duckdb.DuckDBPyConnection) -> list[SourceRow]:
    rows = con.execute(
        """
        SELECT name, url, language, etag, last_modified, body_hash, enabled,
               consecutive_failures, next_fetch_at, ttl_minutes, retry_after_until, category, aggregator
        FROM sources ORDER BY name
        """
    ).fetchall()
    return [
        SourceRow(
            source=Source(name=r[0], url=r[1], language=r[2], category=r[11], aggregator=bool(r[12])),
            state=FetchState(etag=r[3], last_modified=r[4], body_hash=r[5]),
            enabled=bool(r[6]),
            consecutive_failures=int(r[7]),
            next_fetch_at=from_db_time(r[8]),
            ttl_minutes=r[9],
            retry_after_until=from_db_time(r[10]),
        )
        for r in rows
    ]


def record_fetch(
    con: duckdb.DuckDBPyConnection,
    *,
    run_id: int | None,
    result: FetchResult,
    entries: int | None,
    new_articles: int | None,
    warning: str | None,
    next_fetch_at: datetime | None,
    ttl_minutes: int | None,
    disable_reason: str | None = None,
    retry_after_until: datetime | None = None,
) -> None:
    """Log one attempt and update the source's state (call inside the source's transaction)."""
    started = to_db_time(result.started_at)
    con.execute(
        """
        INSERT INTO fetches (run_id, source, url, started_at, duration_ms, status, http_status, bytes,
                             entries, new_articles, error_class, error, warning)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
        [
            run_id, result.source, result.url, started, result.duration_ms, result.status,
            result.http_status, result.bytes_read, entries, new_articles, result.error_class,
            result.error, warning,
        ],
    )  # fmt: skip
    updates: dict[str, Any] = {
        "last_attempt_at": started,
        "next_fetch_at": to_db_time(next_fetch_at),
        "retry_after_until": to_db_time(retry_after_until),
    }
    if result.failed:
        con.execute(
            """
            UPDATE sources SET consecutive_failures = consecutive_failures + 1,
                failing_since = coalesce(failing_since, ?),
                last_error_class = ?, last_error = ?
            WHERE name = ?
            """,
            [started, result.error_class, result.error, result.source],
        )
    else:
        updates |= {
            "consecutive_failures": 0,
            "failing_since": None,
            "last_success_at": started,
        }
        if result.status == "ok":
            updates |= {
                "etag": result.etag,
                "last_modified": result.last_modified,
                "body_hash": result.body_hash,
            }
        if ttl_minutes is not None:
            updates["ttl_minutes"] = ttl_minutes
    if result.permanent_redirect and result.final_url:
        updates["url"] = result.final_url
    if disable_reason:
        updates |= {"enabled": False, "disabled_reason": disable_reason}
    assignments = ", ".join(f"{column} = ?" for column in updates)
    con.execute(f"UPDATE sources SET {assignments} WHERE name = ?", [*updates.values(), result.source])


def source_health(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cur = con.execute("SELECT * FROM source_health ORDER BY health <> 'ok' DESC, name")
    columns = [d[0] for d in cur.description or []]
    return [dict(zip(columns, row, strict=True)) for row in cur.fetchall()]


def ensure_import_sources(con: duckdb.DuckDBPyConnection, names: Iterable[str], now: datetime) -> None:
    """Imported outlets appear in `sources` (disabled: there is nothing to fetch) so joins stay simple."""
    for name in sorted(set(names)):
        con.execute(
            """
            INSERT INTO sources (name, url, config_url, enabled, disabled_reason, added_at)
            VALUES (?, '', '', FALSE, 'imported (no feed)', ?)
            ON CONFLICT (name) DO NOTHING
            """,
            [name, to_db_time(now)],
        )


def categories(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The categories of the sources, sorted (what `digest --category` can name)."""
    rows = con.execute(
        "SELECT DISTINCT category FROM sources WHERE category IS NOT NULL ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]
