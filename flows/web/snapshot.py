"""Keeping the web app's in-memory copy of the database fresh without getting in a writer's way.

Measured trade-off (bench/web_latency.py, README "Reading stories"): a request never touches
the live file, so a page answers in milliseconds whether or not `storyline run` is writing,
and a writer meets the app's read lock only while a copy is taken (once per burst of writes,
for a fraction of a second; writers wait for it with backoff, far inside `lock_wait_s`).

When: a thread looks at the file's modification time and size (and its write-ahead log's)
every ``web.poll_s``. Once they changed and then stayed put for ``web.refresh_quiet_s`` (the
writer is done), or at the latest ``web.max_stale_s`` after the first change (a long series of
commits), it tries to copy — one attempt, no waiting: a writer holding the file means "later".
Pages keep the copy they started with until they finish, so a swap never tears a page.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.settings import Settings
from storage.db import DatabaseLocked, StorageError
from storage.snapshot import Snapshot, file_version, take_snapshot

log = logging.getLogger("storyline.web")


@dataclass
class KeeperStats:
    copies: int = 0
    # Attempts that found a writer holding the file (tried again later; never an error page).
    busy: int = 0
    failures: int = 0
    last_copy_s: float = 0.0
    max_copy_s: float = 0.0
    last_error: str | None = None


class SnapshotKeeper:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Path(settings.db)
        self.stats = KeeperStats()
        self._current: Snapshot | None = None
        self._version: tuple[int, ...] | None = None
        self._changed_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> Snapshot:
        snapshot = self._current
        if snapshot is None:
            raise StorageError("the web app has no copy of the database yet")
        return snapshot

    @property
    def stale_since(self) -> float | None:
        """When the live file first changed after the copy being served (None: up to date)."""
        return self._changed_at

    def start(self) -> None:
        """Take the first copy (waiting up to lock_wait_s for a writer), then keep it fresh."""
        self._copy(wait_s=self.settings.lock_wait_s)
        self._thread = threading.Thread(target=self._loop, name="snapshot-keeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _copy(self, *, wait_s: float) -> None:
        version = file_version(self.db)
        snapshot = take_snapshot(
            self.db, self.settings.embed.model, lock_wait_s=wait_s, previous=self._current
        )
        self._current, self._version = snapshot, version
        self.stats.copies += 1
        self.stats.last_copy_s = snapshot.copy_seconds
        self.stats.max_copy_s = max(self.stats.max_copy_s, snapshot.copy_seconds)
        log.info("copied the database in %.3f s (%d stories)", snapshot.copy_seconds, len(snapshot.story_ids))

    def _loop(self) -> None:
        web = self.settings.web
        seen = self._version
        last_move = time.monotonic()
        while not self._stop.wait(web.poll_s):
            now = time.monotonic()
            version = file_version(self.db)
            if version != seen:
                seen, last_move = version, now
            if version == self._version:
                self._changed_at = None
                continue
            if self._changed_at is None:
                self._changed_at = now
            quiet = now - last_move >= web.refresh_quiet_s
            overdue = now - self._changed_at >= web.max_stale_s
            if not (quiet or overdue):
                continue
            try:
                self._copy(wait_s=0)
                self._changed_at = None
            except DatabaseLocked:
                self.stats.busy += 1
            except Exception as exc:  # a bad copy must never take the app down: keep serving the last one
                self.stats.failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("could not copy the database (serving the previous copy): %s", exc)
