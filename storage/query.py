"""Read-only SQL for users: the database can be read, nothing else, and only for so long.

Each query runs on its own short-lived read-only connection with file access,
COPY, ATTACH and INSTALL off and the configuration locked, and within limits:

* time (``timeout_s``): a reader holds the file, and while it does every writer
  waits (a scheduled ingest waits ``lock_wait_s``, 120 s by default, then fails).
  At the deadline the query is interrupted and the connection closed, also when
  the rows are still waiting for a slow consumer (a pager, a stalled pipe). Keep
  it well below the writers' lock wait.
* memory (``memory_limit``) and temporary disk space for spilling
  (``max_temp_size``, in ``<db>.tmp`` beside the database); DuckDB's defaults are
  80 % of RAM and 90 % of the free disk.
* rows are fetched in batches on a worker thread and handed over through a small
  queue, so a result of any size is never held in memory at once.

Ctrl-C while a query runs interrupts it (KeyboardInterrupt reaches the caller as
usual); DuckDB itself does not notice signals during a long query.
"""

from __future__ import annotations

import math
import queue
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from storage.db import StorageError, connect

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MEMORY_LIMIT = "2GB"
DEFAULT_MAX_TEMP_SIZE = "4GB"
BATCH_ROWS = 2048
# Batches waiting for the consumer: memory stays at a few batches whatever the result size.
_QUEUED_BATCHES = 4
_POLL_S = 0.05
# How long leaving a stream_readonly block waits for DuckDB to notice the interrupt.
_HALT_WAIT_S = 10.0


# A size DuckDB understands: 512MB, 2GB, 1.5GiB ... (KB/MB/GB/TB decimal, KiB/MiB/GiB/TiB binary).
_SIZE = re.compile(r"\s*\d+(\.\d+)?\s*[KMGT]i?B\s*", re.IGNORECASE)


@dataclass(frozen=True)
class QueryLimits:
    """How long and how much one user query may take (see the module docstring)."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    max_temp_size: str = DEFAULT_MAX_TEMP_SIZE
    # Complete the messages "query stopped after N s (...)" and "needs more than ... (...)":
    # say which settings allow more.
    timeout_hint: str = "sql timeout"
    memory_hint: str = "sql memory limits"

    def __post_init__(self) -> None:
        if not (self.timeout_s > 0 and math.isfinite(self.timeout_s)):
            raise ValueError(f"the sql timeout must be a positive number of seconds, not {self.timeout_s!r}")
        for name in ("memory_limit", "max_temp_size"):
            value = getattr(self, name)
            if not _SIZE.fullmatch(value):
                # DuckDB reads "-1GB" as no limit at all, so anything unusual is refused here.
                raise ValueError(f"the sql {name} must be a size such as 2GB or 512MiB, not {value!r}")

    @classmethod
    def from_settings(cls, section: Any | None = None, **overrides: Any) -> QueryLimits:
        """Limits from a settings section with these field names (missing ones keep the defaults).

        ``overrides`` that are None are ignored, so CLI options can be passed as they are.
        """
        values = {
            name: getattr(section, name)
            for name in ("timeout_s", "memory_limit", "max_temp_size")
            if section is not None and getattr(section, name, None) is not None
        }
        values |= {k: v for k, v in overrides.items() if v is not None}
        return cls(**values)


class QueryStopped(StorageError):
    """The query ran into its time limit and was stopped."""


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def open_reader(
    db: str | Path, *, lock_wait_s: float = 30.0, limits: QueryLimits | None = None
) -> duckdb.DuckDBPyConnection:
    """A read-only connection for user SQL: limits set, external access off, configuration locked."""
    limits = limits or QueryLimits()
    con = connect(db, read_only=True, lock_wait_s=lock_wait_s)
    try:
        # Order matters: lock_configuration last, after which no SET can loosen anything.
        # DuckDB's progress bar writes to stdout, into the rows of a long result: off.
        con.execute("SET enable_progress_bar = false")
        con.execute(f"SET memory_limit = {_sql_string(limits.memory_limit)}")
        con.execute(f"SET max_temp_directory_size = {_sql_string(limits.max_temp_size)}")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        con.close()
        raise StorageError(f"cannot set the query limits: {exc}") from exc
    except BaseException:
        con.close()
        raise
    return con


class _Stopped(Exception):
    """Internal: the consumer went away or the deadline passed while a batch waited."""


class _Reader(threading.Thread):
    """Runs the query and fetches batches into a bounded queue; owns and closes the connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, sql: str, limits: QueryLimits, batch_rows: int):
        super().__init__(name="storyline-sql", daemon=True)
        self.sql = sql
        self.limits = limits
        self.batch_rows = batch_rows
        self.items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=_QUEUED_BATCHES)
        self.stop = threading.Event()
        self.running = threading.Event()
        self.done = threading.Event()
        self.timed_out = False
        self.error: BaseException | None = None
        self._con: duckdb.DuckDBPyConnection | None = con
        self._con_lock = threading.Lock()

    def run(self) -> None:
        self.running.set()
        watchdog = threading.Thread(target=self._watch, name="storyline-sql-deadline", daemon=True)
        watchdog.start()
        try:
            self._read()
        except _Stopped:
            pass
        except duckdb.InterruptException:
            pass  # timed out or halted: the consumer reports it
        except duckdb.OutOfMemoryException as exc:
            limits = self.limits
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            self.error = StorageError(
                f"query failed: it needs more than {limits.memory_limit} of memory plus "
                f"{limits.max_temp_size} of temporary disk space ({limits.memory_hint}): {first_line}"
            )
        except duckdb.Error as exc:
            self.error = StorageError(f"query failed: {exc}")
        except BaseException as exc:  # handed to the consumer's thread
            self.error = exc
        finally:
            with self._con_lock:
                if self._con is not None:
                    self._con.close()
                    self._con = None
            self.done.set()

    def _read(self) -> None:
        with self._con_lock:
            con = self._con
        if con is None or self.stop.is_set():  # halted before it began
            return
        cur = con.execute(self.sql)
        columns = [d[0] for d in cur.description or []]
        self._put(("columns", columns))
        if not columns:
            return
        while not self.stop.is_set():
            batch = cur.fetchmany(self.batch_rows)
            if not batch:
                break
            self._put(("rows", batch))

    def _put(self, item: tuple[str, Any]) -> None:
        while True:
            try:
                self.items.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                if self.stop.is_set():
                    raise _Stopped from None

    def _watch(self) -> None:
        if not self.done.wait(self.limits.timeout_s):
            self.timed_out = True
            self.halt()

    def halt(self, wait_s: float | None = None) -> None:
        """Stop the query (from any thread); wait until the connection is closed, or ``wait_s``."""
        self.stop.set()
        if not self.running.is_set():
            # Halted while starting (Ctrl-C during start()): the thread, if it runs at all, finds
            # no connection and ends; nothing would ever set ``done`` for the loop below.
            with self._con_lock:
                if self._con is not None:
                    self._con.close()
                    self._con = None
            return
        give_up = None if wait_s is None else time.monotonic() + wait_s
        # Repeated: an interrupt that lands between two fetches is lost, the next one is not.
        while not self.done.wait(_POLL_S):
            if give_up is not None and time.monotonic() > give_up:
                return  # a daemon thread: it cannot keep the process alive
            with self._con_lock:
                if self._con is not None:
                    self._con.interrupt()

    def next_item(self) -> tuple[str, Any] | None:
        """The next item for the consumer, None at the end; raises what stopped the query."""
        while True:
            if self.timed_out:
                raise QueryStopped(
                    f"query stopped after {self.limits.timeout_s:g} s ({self.limits.timeout_hint})"
                )
            try:
                return self.items.get(timeout=_POLL_S)
            except queue.Empty:
                # done is set after the last put: nothing more can arrive once it is empty
                if self.done.is_set() and self.items.empty() and not self.timed_out:
                    if self.error is not None:
                        raise self.error from None
                    return None


class QueryStream:
    """Column names, and rows fetched as they are read (once)."""

    def __init__(self, reader: _Reader, columns: list[str]) -> None:
        self._reader = reader
        self.columns = columns

    def batches(self) -> Iterator[list[tuple[Any, ...]]]:
        while (item := self._reader.next_item()) is not None:
            yield item[1]

    def rows(self) -> Iterator[tuple[Any, ...]]:
        for batch in self.batches():
            yield from batch


@contextmanager
def stream_readonly(
    db: str | Path,
    sql: str,
    *,
    lock_wait_s: float = 30.0,
    limits: QueryLimits | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[QueryStream]:
    """Run one query within ``limits``; rows stream while the block runs.

    Leaving the block early (enough rows, a closed pipe, Ctrl-C) stops the query
    and closes the connection. Raises StorageError when the query fails and
    QueryStopped (a StorageError) when it runs past ``limits.timeout_s``.
    """
    limits = limits or QueryLimits()
    reader = _Reader(open_reader(db, lock_wait_s=lock_wait_s, limits=limits), sql, limits, batch_rows)
    try:
        # Inside the try: a Ctrl-C that lands while the thread starts must still stop the query,
        # or it runs on to its deadline and holds the process (and the database) until then.
        reader.start()
        first = reader.next_item()
        columns: list[str] = first[1] if first is not None else []
        yield QueryStream(reader, columns)
    finally:
        reader.halt(wait_s=_HALT_WAIT_S)


def run_readonly(
    db: str | Path, sql: str, *, lock_wait_s: float = 30.0, limits: QueryLimits | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one query within ``limits`` and return all rows (for small results; else stream_readonly)."""
    with stream_readonly(db, sql, lock_wait_s=lock_wait_s, limits=limits) as result:
        return result.columns, list(result.rows())
