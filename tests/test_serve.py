"""`storyline serve` on one machine: a local Prefect server, the three schedules running against a
real feed server, and a clean stop (the server goes with it)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest

from devkit.feed_server import FeedServer
from tests.builders import query, rss, rss_item, write_sources

pytestmark = pytest.mark.slow


def bridge_feed(date: str) -> str:
    """Two reports of the harbour bridge reopening, both dated `date`."""
    return rss(
        rss_item(
            "l1",
            "Harbour bridge reopens after repairs",
            "The harbour bridge reopened on Friday after months of repairs, the\n"
            "city said, and the ferry returns to its winter timetable.",
            date=date,
        ),
        rss_item(
            "l2",
            "Harbour bridge open again as repair work ends",
            "Traffic crossed the harbour bridge again on Friday as the city ended\n"
            "months of repair work and the ferry went back to its winter timetable.",
            date=date,
        ),
        title="Local",
        link=None,
    )


def _runs(db: Path) -> dict[str, set[str]]:
    """Kinds of run and their statuses, read the way an analyst would (read-only, briefly)."""
    from storage.db import DatabaseLocked, StorageError, open_db

    try:
        with open_db(db, read_only=True, lock_wait_s=5) as con:
            rows = con.execute("SELECT kind, status FROM runs").fetchall()
    except (DatabaseLocked, StorageError, duckdb.Error):
        return {}
    out: dict[str, set[str]] = {}
    for kind, status in rows:
        out.setdefault(kind, set()).add(status)
    return out


def test_serve_runs_the_ingest_cluster_and_digest_schedules_and_stops_cleanly(tmp_path: Path) -> None:
    with FeedServer() as srv:
        srv.route("/local.xml", bridge_feed(time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())))
        write_sources(tmp_path / "sources.toml", {"Local": srv.url("/local.xml")})
        (tmp_path / "storyline.toml").write_text(
            'db = "s.duckdb"\nsources = "sources.toml"\n'
            "[fetch]\nbase_interval_s = 5\nmin_interval_s = 5\n"
            '[schedule]\ningest_every_s = 10\ncluster_every_s = 15\ndigest_cron = "* * * * *"\n'
            '[digest]\nout_dir = "digests"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "STORYLINE_"))}
        env |= {"PREFECT_HOME": str(tmp_path / ".prefect"), "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 240
            runs: dict[str, set[str]] = {}
            while time.monotonic() < deadline and proc.poll() is None:
                runs = _runs(tmp_path / "s.duckdb")
                if all("ok" in runs.get(kind, set()) for kind in ("ingest", "embed", "cluster", "digest")):
                    break
                time.sleep(3)
            assert proc.poll() is None, "serve exited early"
            assert all("ok" in runs.get(kind, set()) for kind in ("ingest", "embed", "cluster", "digest")), (
                runs
            )
            assert len(srv.requests_for("/local.xml")) >= 1
            assert list((tmp_path / "digests").glob("digest-*.md"))
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out[-3000:]
    assert "storyline serve: stopped" in out
    api = re.search(r"Prefect API at (http://127\.0\.0\.1:\d+/api)", out)
    assert api, out[-3000:]
    with pytest.raises(httpx.TransportError):
        httpx.get(api.group(1) + "/health", timeout=2)
    stories = query(tmp_path / "s.duckdb", "SELECT article_count FROM story_summary")
    (overlapping,) = query(
        tmp_path / "s.duckdb",
        "SELECT count(*) FROM runs a JOIN runs b ON a.kind = b.kind AND a.run_id < b.run_id "
        "AND b.started_at < a.finished_at",
    )[0]
    assert stories == [(2,)]
    assert overlapping == 0, "two runs of one deployment overlapped"
