"""Read-only SQL for users: the database can be read, nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from storage.db import StorageError, open_db


def run_readonly(
    db: str | Path, sql: str, *, lock_wait_s: float = 30.0
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one query on a short-lived, locked-down read-only connection."""
    with open_db(db, read_only=True, lock_wait_s=lock_wait_s, safe=True) as con:
        try:
            cur = con.execute(sql)
            columns = [d[0] for d in cur.description or []]
            rows = cur.fetchall() if columns else []
        except duckdb.Error as exc:
            raise StorageError(f"query failed: {exc}") from exc
    return columns, rows
