"""An in-memory copy of what the web app reads, taken from the live file in one short read.

DuckDB lets one process write a file or many read it, never both. A web app that opened the
live file per request would hold read locks whenever it is busy, and a scheduled writer
(which waits with backoff while a reader holds the file) could be starved by a busy site;
while a writer holds the file, the app could not answer at all. So the app never queries the
live file: it copies the tables its pages need (article texts cut to their leads, no
embeddings; story centroids computed on the way) into an in-memory DuckDB in one read-only
connection of a fraction of a second, closes the file, and serves every request from that copy
until the file changes again. See ``flows/web/snapshot.py`` for when copies are taken.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from storage.briefs import has_briefs
from storage.convert import to_db_time, utcnow
from storage.db import connect
from storage.embeddings import story_centroids
from storage.web import LEAD_CHARS, Signature, centroid_matrix, membership_signatures

# Fetch attempts kept per source for the sources page (and the digest's day figures).
FETCH_DAYS = 62

# Table -> the SELECT list copied (every column, so columns added by later migrations follow).
# Article text is cut to its lead: what pages show and what a past day's brief is rebuilt from.
_COPIED = {
    "stories": "*",
    "story_articles": "*",
    "story_lineage": "*",
    "sources": "*",
    "articles": f"* REPLACE (left(text, {LEAD_CHARS}) AS text)",
}


@dataclass
class Snapshot:
    con: duckdb.DuckDBPyConnection
    # Live story ids and their unit centroids (one row each), for search, topics and related stories.
    story_ids: list[str]
    centroids: np.ndarray
    # Seconds the copy held the live file's read lock (reading; building the copy comes after).
    copy_seconds: float
    # When the copy was taken (time.time()).
    taken_at: float
    # Per story: (members, latest assignment) when its centroid was computed.
    signatures: dict[str, Signature] = field(default_factory=dict)
    # What readers derive from this copy once (watch-topic tags), shared by its requests.
    memo: dict[str, Any] = field(default_factory=dict)


def file_version(db: Path) -> tuple[int, ...]:
    """Changes whenever a writer commits (the file or its write-ahead log changes)."""
    out: list[int] = []
    for path in (db, db.with_name(db.name + ".wal")):
        try:
            st = path.stat()
            out += [st.st_mtime_ns, st.st_size]
        except FileNotFoundError:
            out += [0, 0]
    return tuple(out)


def _copy(mem: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> None:
    mem.register("copied_batch", data)
    try:
        mem.execute(f"CREATE TABLE {table} AS SELECT * FROM copied_batch")
    finally:
        mem.unregister("copied_batch")


def _centroids(
    live: duckdb.DuckDBPyConnection, model: str, previous: Snapshot | None
) -> tuple[list[str], np.ndarray, dict[str, Signature]]:
    """Live stories' centroids, reusing the previous copy's for every story whose membership is
    unchanged: a run touches hundreds of stories, not all of them, and reading every vector again
    would hold the read lock for seconds."""
    signatures = membership_signatures(live)
    ids = sorted(signatures)
    reuse: dict[str, np.ndarray] = {}
    if previous is not None:
        row = {sid: i for i, sid in enumerate(previous.story_ids)}
        reuse = {
            sid: previous.centroids[row[sid]]
            for sid in ids
            if sid in row and previous.signatures.get(sid) == signatures[sid]
        }
    fresh = story_centroids(live, model, [s for s in ids if s not in reuse])
    dim = previous.centroids.shape[1] if previous is not None and previous.centroids.size else 0
    kept, matrix = centroid_matrix(ids, reuse | fresh, dim)
    return kept, matrix, {s: signatures[s] for s in kept}


def take_snapshot(
    db: Path, model: str, *, lock_wait_s: float = 0.0, previous: Snapshot | None = None
) -> Snapshot:
    """Copy the live file's readable state into memory. Raises DatabaseLocked when a writer
    holds the file past ``lock_wait_s`` (0: try once)."""
    started = time.monotonic()
    live = connect(db, read_only=True, lock_wait_s=lock_wait_s)
    try:
        # Only reads while the lock is held; building the in-memory tables waits until it is released.
        copies = dict(_COPIED)
        # A file no read-write open has migrated to briefs has none to copy (readers check has_briefs).
        if has_briefs(live):
            copies["story_briefs"] = "*"
        data = {
            table: live.sql(f"SELECT {columns} FROM {table}").to_arrow_table()
            for table, columns in copies.items()
        }
        since = to_db_time(utcnow() - timedelta(days=FETCH_DAYS))
        data["fetches"] = live.sql(
            "SELECT * FROM fetches WHERE started_at >= ?", params=[since]
        ).to_arrow_table()
        views = live.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall()
        kept, matrix, signatures = _centroids(live, model, previous)
    finally:
        live.close()
    copy_seconds = time.monotonic() - started
    mem = duckdb.connect(":memory:")
    mem.execute("SET TimeZone = 'UTC'")
    for table, arrow in data.items():
        _copy(mem, table, arrow)
    for _name, sql in views:
        mem.execute(sql)
    return Snapshot(mem, kept, matrix, copy_seconds, time.time(), signatures)
