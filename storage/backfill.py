"""Queries the backfill replay needs."""

from __future__ import annotations

from datetime import datetime

import duckdb

from storage.convert import from_db_time


def article_time_range(con: duckdb.DuckDBPyConnection) -> tuple[datetime | None, datetime | None]:
    rows = con.execute("SELECT min(effective_at), max(effective_at) FROM articles").fetchall()
    return from_db_time(rows[0][0]), from_db_time(rows[0][1])
