"""The sources table follows the sources file (``storage.sources.sync_sources``). Spec:

- a new source is added, enabled, with ``added_at`` set once;
- an unchanged entry keeps its fetch state: the URL a permanent redirect led to, its validators
  (etag, last-modified, body hash), and a disabled source stays disabled;
- an entry whose URL was edited is fetched from the new URL with no validators, and is enabled
  again even if it had been disabled (e.g. by 410 Gone);
- language, category and aggregator always follow the file;
- a source removed from the file is disabled ('removed from sources file'), not deleted;
- a name listed twice counts as its last entry;
- 10,000 sources sync whole: all added, and one dropped from the file is the only one disabled.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.records import FetchResult, Source
from storage.db import open_db, transaction
from storage.sources import record_fetch, sync_sources

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
STATE = ["url", "config_url", "enabled", "disabled_reason", "etag", "last_modified", "body_hash"]


def rows(db: Path) -> dict[str, dict[str, Any]]:
    with open_db(db) as con:
        cur = con.execute("SELECT * FROM sources ORDER BY name")
        columns = [d[0] for d in cur.description or []]
        return {r[0]: dict(zip(columns, r, strict=True)) for r in cur.fetchall()}


def sync(db: Path, sources: list[Source], now: datetime) -> dict[str, dict[str, Any]]:
    with open_db(db) as con, transaction(con):
        sync_sources(con, sources, now)
    return rows(db)


def fetched(db: Path, name: str, url: str, *, etag: str, moved_to: str | None = None) -> None:
    """A successful fetch with validators, optionally through a permanent redirect."""
    result = FetchResult(
        source=name, url=url, status="ok", started_at=T0, http_status=200, etag=etag,
        last_modified="Fri, 20 Nov 2026 07:00:00 GMT", body_hash=f"hash-{etag}",
        final_url=moved_to, permanent_redirect=moved_to is not None,
    )  # fmt: skip
    with open_db(db) as con, transaction(con):
        record_fetch(con, run_id=None, result=result, entries=1, new_articles=1, warning=None,
                     next_fetch_at=None, ttl_minutes=None)  # fmt: skip


def gone(db: Path, name: str, url: str) -> None:
    result = FetchResult(source=name, url=url, status="error", started_at=T0, http_status=410,
                         error_class="gone", error="410 Gone")  # fmt: skip
    with open_db(db) as con, transaction(con):
        record_fetch(con, run_id=None, result=result, entries=None, new_articles=None, warning=None,
                     next_fetch_at=None, ttl_minutes=None, disable_reason="410 Gone")  # fmt: skip


def test_edited_urls_reset_fetch_state_unchanged_ones_keep_it_removed_ones_are_disabled(
    db_path: Path,
) -> None:
    first = [
        Source("Harbor Times", "https://harbor.example/rss"),
        Source("Valley Post", "https://valley.example/feed", language="en", category="News"),
        Source("Old Gazette", "https://gazette.example/rss"),
        Source("Moved Daily", "https://moved.example/old.xml"),
        Source("Closed Weekly", "https://closed.example/rss"),
    ]
    added = sync(db_path, first, T0)
    assert set(added) == {s.name for s in first}
    assert all(r["enabled"] and r["added_at"] == T0.replace(tzinfo=None) for r in added.values())
    assert added["Valley Post"]["url"] == added["Valley Post"]["config_url"] == "https://valley.example/feed"

    fetched(db_path, "Harbor Times", "https://harbor.example/rss", etag='"h1"')
    fetched(db_path, "Valley Post", "https://valley.example/feed", etag='"v1"')
    fetched(db_path, "Moved Daily", "https://moved.example/old.xml", etag='"m1"',
            moved_to="https://moved.example/new.xml")  # fmt: skip
    gone(db_path, "Closed Weekly", "https://closed.example/rss")
    before = rows(db_path)

    later = T0 + timedelta(days=1)
    second = [
        Source("Harbor Times", "https://harbor.example/rss"),  # unchanged
        Source(
            "Valley Post",
            "https://valley.example/world.xml",
            language="de",
            category="World",
            aggregator=True,
        ),  # URL edited, the rest too
        Source("Moved Daily", "https://moved.example/old.xml", category="Local"),  # same URL, new category
        Source("Closed Weekly", "https://closed.example/rss"),  # unchanged: stays disabled
        Source("New Courier", "https://courier.example/rss"),
    ]  # "Old Gazette" removed
    after = sync(db_path, second, later)

    # Unchanged entries keep their whole fetch state, whatever else of them changed.
    assert {k: after["Harbor Times"][k] for k in STATE} == {k: before["Harbor Times"][k] for k in STATE}
    assert after["Harbor Times"]["etag"] == '"h1"'
    moved = after["Moved Daily"]
    assert (moved["url"], moved["config_url"]) == (
        "https://moved.example/new.xml",
        "https://moved.example/old.xml",
    )
    assert (moved["etag"], moved["body_hash"], moved["category"]) == ('"m1"', 'hash-"m1"', "Local")
    closed = after["Closed Weekly"]
    assert (closed["enabled"], closed["disabled_reason"]) == (False, "410 Gone")

    # An edited URL: fetched from there, with no validators, and the rest follows the file.
    valley = after["Valley Post"]
    assert valley["url"] == valley["config_url"] == "https://valley.example/world.xml"
    assert (valley["etag"], valley["last_modified"], valley["body_hash"]) == (None, None, None)
    assert (valley["language"], valley["category"], valley["aggregator"]) == ("de", "World", True)
    assert valley["enabled"] and valley["added_at"] == T0.replace(tzinfo=None), "added_at is set once"

    # Removed: kept, disabled, with the reason; new: added now.
    gazette = after["Old Gazette"]
    assert (gazette["enabled"], gazette["disabled_reason"]) == (False, "removed from sources file")
    assert after["New Courier"]["enabled"] and after["New Courier"]["added_at"] == later.replace(tzinfo=None)

    # The disabled source's URL edited: enabled again, its reason cleared.
    third = [*second[:3], Source("Closed Weekly", "https://closed.example/reopened.xml"), second[4]]
    reopened = sync(db_path, third, later)["Closed Weekly"]
    assert (reopened["enabled"], reopened["disabled_reason"], reopened["url"]) == (
        True, None, "https://closed.example/reopened.xml"
    )  # fmt: skip

    # The same file again changes nothing.
    settled = rows(db_path)
    assert sync(db_path, third, later + timedelta(hours=1)) == settled


def test_a_name_listed_twice_counts_as_its_last_entry(db_path: Path) -> None:
    listed = [
        Source("Harbor Times", "https://harbor.example/a.xml", language="en"),
        Source("Valley Post", "https://valley.example/feed"),
        Source("Harbor Times", "https://harbor.example/b.xml", language="fr", category="World"),
    ]
    stored = sync(db_path, listed, T0)
    harbor = stored["Harbor Times"]
    assert (harbor["url"], harbor["config_url"], harbor["language"], harbor["category"]) == (
        "https://harbor.example/b.xml", "https://harbor.example/b.xml", "fr", "World"
    )  # fmt: skip
    assert set(stored) == {"Harbor Times", "Valley Post"}


def test_an_empty_sources_list_changes_nothing(db_path: Path) -> None:
    before = sync(db_path, [Source("Harbor Times", "https://harbor.example/rss")], T0)
    assert sync(db_path, [], T0 + timedelta(hours=1)) == before


def test_ten_thousand_sources_sync_whole(db_path: Path) -> None:
    # The sync is one set-based statement (its cost is in bench/README.md, not asserted here).
    sources = [Source(f"Outlet {i:05d}", f"https://h{i % 100}.example/{i}.xml") for i in range(10_000)]
    with open_db(db_path) as con:
        with transaction(con):
            sync_sources(con, sources, T0)
        with transaction(con):
            sync_sources(con, sources[:-1], T0)  # one removed, the rest unchanged
        enabled = con.execute("SELECT count(*) FILTER (enabled), count(*) FROM sources").fetchall()
        removed = con.execute("SELECT name FROM sources WHERE NOT enabled").fetchall()
    assert enabled == [(9_999, 10_000)]
    assert removed == [("Outlet 09999",)]
