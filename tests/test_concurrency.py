"""An analyst's SQL and the scheduled writers share one DuckDB file across real processes: each side
waits for the other's short lock instead of failing, and a lock held too long is a clear error."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devkit.feed_server import FeedServer
from flows.ingest import ingest_step
from storage.db import connect
from tests.builders import process_holding, rss, rss_item, write_sources

pytestmark = pytest.mark.slow

FEED = rss(rss_item("c1", "Council votes on the budget", "The council met.", date=None), title="x", link=None)


def _storyline(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=(os.environ | (env or {})),
        check=False,
    )


def test_an_analysts_query_waits_for_a_writer_in_another_process(db_path: Path) -> None:
    connect(db_path).close()
    writer = process_holding(db_path, read_only=False, seconds=2)
    started = time.monotonic()
    done = _storyline("sql", "SELECT count(*) AS n FROM articles", "--db", str(db_path), "--csv")
    writer.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["n", "0"]
    assert time.monotonic() - started > 1.0, "it waited for the writer"


def test_a_lock_held_past_the_wait_makes_the_query_fail_clearly(db_path: Path) -> None:
    connect(db_path).close()
    writer = process_holding(db_path, read_only=False, seconds=30)
    try:
        done = _storyline("sql", "SELECT 1", "--db", str(db_path), env={"STORYLINE_LOCK_WAIT_S": "1"})
    finally:
        writer.kill()
        writer.wait()
    assert done.returncode == 3
    assert "locked by another process" in done.stderr


def test_a_scheduled_ingest_waits_for_an_open_analyst_session_and_then_writes(
    tmp_path: Path, make_settings, feed_server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    feed_server.route("/c.xml", FEED)
    sources = write_sources(tmp_path / "sources.toml", {"Council": feed_server.url("/c.xml")})
    settings = make_settings(sources=sources)
    connect(settings.db).close()
    reader = process_holding(settings.db, read_only=True, seconds=3)
    with caplog.at_level(logging.INFO, logger="storyline.storage"):
        report = ingest_step(settings, progress=False)
    reader.wait(timeout=30)
    assert report.new_articles == 1
    assert any("locked by another process" in r.getMessage() for r in caplog.records)
