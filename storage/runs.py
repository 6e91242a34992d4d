"""Run history: one row per step execution, with the process that owns it."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from storage.convert import from_db_time, to_db_time, utcnow
from storage.db import open_db, scalar

_HOST = socket.gethostname()


def process_alive(pid: int) -> bool:
    """Whether a process of this machine with this id exists (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def mark_interrupted(con: duckdb.DuckDBPyConnection) -> int:
    """Runs left 'running' by a process of this host that no longer exists become 'interrupted'."""
    rows = con.execute(
        "SELECT run_id, pid FROM runs WHERE status = 'running' AND host = ? AND pid IS NOT NULL", [_HOST]
    ).fetchall()
    dead = [run_id for run_id, pid in rows if pid != os.getpid() and not process_alive(int(pid))]
    if dead:
        con.execute(
            "UPDATE runs SET status = 'interrupted', finished_at = ?, "
            "error = 'the process running it stopped before it finished' WHERE list_contains(?, run_id)",
            [to_db_time(utcnow()), dead],
        )
    return len(dead)


def start_run(con: duckdb.DuckDBPyConnection, kind: str, *, as_of: datetime | None = None) -> int:
    mark_interrupted(con)
    run_id = scalar(
        con,
        "INSERT INTO runs (kind, started_at, as_of, pid, host) VALUES (?, ?, ?, ?, ?) RETURNING run_id",
        [kind, to_db_time(utcnow()), to_db_time(as_of), os.getpid(), _HOST],
    )
    return int(run_id)


def last_ok(con: duckdb.DuckDBPyConnection, kind: str) -> tuple[int, datetime, datetime | None] | None:
    """(run_id, started_at, as_of) of the newest successful run of a kind."""
    rows = con.execute(
        "SELECT run_id, started_at, as_of FROM runs WHERE kind = ? AND status = 'ok' "
        "ORDER BY run_id DESC LIMIT 1",
        [kind],
    ).fetchall()
    if not rows:
        return None
    run_id, started, as_of = rows[0]
    return int(run_id), from_db_time(started) or utcnow(), from_db_time(as_of)


def last_deciding(con: duckdb.DuckDBPyConnection, kind: str) -> int | None:
    """The newest successful run of a kind that did its work (not skipped for lack of news)."""
    rows = con.execute(
        "SELECT run_id FROM runs WHERE kind = ? AND status = 'ok' "
        "AND coalesce(json_extract_string(stats, '$.skipped'), 'false') = 'false' "
        "ORDER BY run_id DESC LIMIT 1",
        [kind],
    ).fetchall()
    return int(rows[0][0]) if rows else None


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


@contextmanager
def failure_recorded(db: str | Path, run_id: int, *, lock_wait_s: float) -> Iterator[None]:
    """Mark the run 'failed' with the error if the block raises, or 'interrupted' if a signal
    (Ctrl-C, SIGTERM) stopped it; then re-raise."""
    try:
        yield
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            status, error = "interrupted", "stopped by a signal before it finished"
            # A stopped command must exit within seconds; the next run marks it otherwise.
            lock_wait_s = min(lock_wait_s, 3.0)
        else:
            status, error = "failed", f"{type(exc).__name__}: {exc}"[:2000]
        try:
            with open_db(db, lock_wait_s=lock_wait_s) as con:
                finish_run(con, run_id, status=status, error=error)
        except Exception:  # the original error matters more than a failed bookkeeping write
            pass
        raise
