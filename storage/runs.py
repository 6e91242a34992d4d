"""Run history: one row per step execution."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb

from storage.convert import to_db_time, utcnow
from storage.db import scalar


def start_run(con: duckdb.DuckDBPyConnection, kind: str, *, as_of: datetime | None = None) -> int:
    run_id = scalar(
        con,
        "INSERT INTO runs (kind, started_at, as_of) VALUES (?, ?, ?) RETURNING run_id",
        [kind, to_db_time(utcnow()), to_db_time(as_of)],
    )
    return int(run_id)


def finish_run(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    *,
    status: str = "ok",
    stats: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    con.execute(
        "UPDATE runs SET finished_at = ?, status = ?, stats = ?, error = ? WHERE run_id = ?",
        [to_db_time(utcnow()), status, json.dumps(stats or {}, default=str), error, run_id],
    )
