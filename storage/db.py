"""Opening the DuckDB file: migrations, lock waits, transactions.

DuckDB allows one read-write process or many read-only ones per file. Writers
therefore hold the file only for a short write phase, and both writers and
readers wait (with backoff) while another process holds a conflicting lock.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

log = logging.getLogger("storyline.storage")

SCHEMA_TABLE = "schema_migrations"


class StorageError(Exception):
    """The database cannot be used; the message says why."""


class DatabaseLocked(StorageError):
    """Another process held the database for longer than we were willing to wait."""


def _is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:3].isdigit():
            found.append((int(name[:3]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply pending migrations, each in its own transaction. Returns the names applied."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} "
        "(version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    done = {row[0] for row in con.execute(f"SELECT version FROM {SCHEMA_TABLE}").fetchall()}
    applied = []
    for version, name, sql in _migrations():
        if version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute(
                f"INSERT INTO {SCHEMA_TABLE} VALUES (?, ?, now() AT TIME ZONE 'UTC')", [version, name]
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied


def connect(
    path: str | Path,
    *,
    read_only: bool = False,
    lock_wait_s: float = 120.0,
    safe: bool = False,
) -> duckdb.DuckDBPyConnection:
    """Open the database, waiting up to ``lock_wait_s`` while another process holds it.

    A read-write open also creates the file and applies migrations. ``safe``
    (read-only only) turns off file access, COPY, ATTACH and INSTALL so user SQL
    can only read the database.
    """
    path = Path(path)
    if read_only and not path.exists():
        raise StorageError(f"database {path} does not exist yet (run `storyline run` or `import` first)")
    if not read_only and not path.parent.exists():
        raise StorageError(f"cannot create database {path}: folder {path.parent} does not exist")
    config: dict[str, str | bool] = {}
    if safe:
        config = {"enable_external_access": False, "lock_configuration": True}
    deadline = time.monotonic() + lock_wait_s
    delay = 0.2
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only, config=config)
            break
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise StorageError(f"cannot open database {path}: {exc}") from exc
            if time.monotonic() >= deadline:
                raise DatabaseLocked(
                    f"database {path} is locked by another process (waited {lock_wait_s:.0f}s): {exc}"
                ) from exc
            log.info("database %s is locked by another process; retrying in %.1fs", path, delay)
            time.sleep(delay * (1 + random.random() * 0.5))
            delay = min(delay * 2, 5.0)
        except duckdb.Error as exc:
            raise StorageError(f"cannot open database {path}: {exc}") from exc
    if not read_only:
        try:
            con.execute("SET TimeZone = 'UTC'")
            migrate(con)
        except Exception:
            con.close()
            raise
    return con


@contextmanager
def open_db(
    path: str | Path, *, read_only: bool = False, lock_wait_s: float = 120.0, safe: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Connection for one short phase of work; closed (and the lock released) on exit."""
    con = connect(path, read_only=read_only, lock_wait_s=lock_wait_s, safe=safe)
    try:
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All-or-nothing: a crash or exception inside leaves the last committed state."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


# DuckDB 2.x keeps a result pending until it is fetched to the end, and a pending
# result blocks register()/unregister() on the connection: never use fetchone().
def first(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> tuple[Any, ...] | None:
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    row = first(con, sql, params)
    return row[0] if row else None
