"""`storyline serve` on one machine: a local Prefect server with its UI, the three schedules running
against a real feed server, their step logs and artifacts in Prefect, and a clean stop (the server
and every flow run go with it)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from devkit.feed_server import FeedServer
from flows.execution import processes_below, running
from flows.serve import base_url, choose_port
from tests.builders import query, rss, rss_item, write_sources


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


@pytest.mark.slow
def test_serve_shows_its_work_in_prefects_ui_and_stops_everything_on_sigterm(tmp_path: Path) -> None:
    port = choose_port("127.0.0.1", 0)  # a configured port (free now), as a user would set one
    with FeedServer() as srv:
        srv.route("/local.xml", bridge_feed(time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())))
        write_sources(tmp_path / "sources.toml", {"Local": srv.url("/local.xml")})
        (tmp_path / "storyline.toml").write_text(
            'db = "s.duckdb"\nsources = "sources.toml"\n'
            "[fetch]\nbase_interval_s = 5\nmin_interval_s = 5\n"
            '[schedule]\ningest_every_s = 10\ncluster_every_s = 15\ndigest_cron = "* * * * *"\n'
            '[digest]\nout_dir = "digests"\n'
            f"[serve]\nport = {port}\n"
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
        output = _Output(proc)
        try:
            first = output.wait_for(lambda lines: lines[0] if lines else None, 30)
            assert first.startswith(f"storyline serve: Prefect UI at http://127.0.0.1:{port} "), first
            serving = output.wait_for(lambda _: re.search(r"Prefect API at (\S+/api);", output.text), 120)
            api = serving.group(1)
            assert api == f"http://127.0.0.1:{port}/api"

            page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10, trust_env=False)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert "<title>Prefect Server</title>" in page.text
            ui_settings = httpx.get(f"http://127.0.0.1:{port}/ui-settings", timeout=10, trust_env=False)
            assert ui_settings.json()["api_url"] == api, "the UI would ask another server"

            schedules = {
                d["name"]: [s["schedule"] for s in d["schedules"]] for d in _api(api, "deployments/filter")
            }
            assert schedules.keys() == {"storyline-ingest", "storyline-embed-and-cluster", "storyline-digest"}
            assert schedules["storyline-ingest"][0]["interval"] == 10
            assert schedules["storyline-embed-and-cluster"][0]["interval"] == 15
            assert schedules["storyline-digest"][0]["cron"] == "* * * * *"

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

            # The steps' INFO lines are in the runs' logs (the UI's run pages show these).
            logs = output.wait_for(lambda _: _step_logs(api), 60)
            assert "storyline.ingest: Local: ok, 2 articles" in logs
            assert "storyline.ingest: ingest: 1 sources, 2 new articles, 0 failed, 0 deferred" in logs
            assert any(re.match(CLUSTER_LINE, x) for x in logs), [x for x in logs if "cluster" in x]
            assert any(x.startswith("prefect.flow_runs: digest: ") for x in logs)

            artifacts = output.wait_for(lambda _: _artifacts(api), 60)
            digest_html = next(iter((tmp_path / "digests").glob("digest-*.html"))).resolve()
            assert all(digest_html.as_uri() in a["description"] for a in artifacts["daily-digest"])
            assert {a["type"] for a in artifacts["cluster-summary"] + artifacts["ingest-summary"]} == {
                "table"
            }
            assert any('"stories new": 1' in a["data"] for a in artifacts["cluster-summary"])
            assert any('"new articles": 2' in a["data"] for a in artifacts["ingest-summary"])

            started_by_serve = set(processes_below(proc.pid))
            assert started_by_serve, "serve started no process?"
        finally:
            proc.send_signal(signal.SIGTERM)
            stop = time.monotonic()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
            while time.monotonic() - stop < 10 and any(running(p) for p in set(processes_below(proc.pid))):
                time.sleep(0.1)
            stopped_in = time.monotonic() - stop
            output.close()
    out = output.text
    assert proc.returncode == 0, out[-3000:]
    assert "storyline serve: stopped" in out
    left = sorted(p for p in started_by_serve if running(p))
    assert not left, f"still running after SIGTERM: {left}"
    assert stopped_in < 10, f"stopping took {stopped_in:.1f} s"
    with pytest.raises(httpx.TransportError):
        httpx.get(api + "/health", timeout=2, trust_env=False)
    # The terminal stays quiet: the step lines went to Prefect, not to stdout/stderr.
    assert "Local: ok" not in out and "| INFO" not in out, out[-3000:]
    stories = query(tmp_path / "s.duckdb", "SELECT article_count FROM story_summary")
    (overlapping,) = query(
        tmp_path / "s.duckdb",
        "SELECT count(*) FROM runs a JOIN runs b ON a.kind = b.kind AND a.run_id < b.run_id "
        "AND b.started_at < a.finished_at",
    )[0]
    assert stories == [(2,)]
    assert overlapping == 0, "two runs of one deployment overlapped"


class _Output:
    """serve's stdout and stderr, read as they come."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._proc = proc
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, found: Callable[[list[str]], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = found(list(self.lines))
            if value:
                return value
            assert self._proc.poll() is None, "serve exited:\n" + self.text[-3000:]
            time.sleep(1)
        raise AssertionError(f"not there after {timeout} s; serve said:\n{self.text[-3000:]}")

    def close(self) -> None:
        self._reader.join(timeout=10)


def _api(api: str, path: str, body: dict[str, Any] | None = None) -> Any:
    response = httpx.post(f"{api}/{path}", json=body or {}, timeout=10, trust_env=False)
    response.raise_for_status()
    return response.json()


CLUSTER_LINE = r"prefect\.flow_runs: cluster: 2 window articles, 1 stories touched, 1 new"


def _step_logs(api: str) -> list[str] | None:
    """'logger: message' of every log line of the finished flow runs, once the ingest and the cluster
    runs that did the work (and a digest) have theirs."""
    done = {"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}
    lines: list[str] = []
    for run in _api(api, "flow_runs/filter", done):
        logs = _api(api, "logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}, "limit": 200})
        lines += [f"{log['name']}: {log['message']}" for log in logs]
    wanted = ("storyline.ingest: Local: ok", CLUSTER_LINE, "prefect.flow_runs: digest: ")
    return lines if all(any(re.match(w, x) for x in lines) for w in wanted) else None


def _artifacts(api: str) -> dict[str, list[dict[str, Any]]] | None:
    """Every version of the three artifacts by key, once each key has one."""
    keys = ["daily-digest", "cluster-summary", "ingest-summary"]
    found: dict[str, list[dict[str, Any]]] = {}
    for artifact in _api(api, "artifacts/filter", {"artifacts": {"key": {"any_": keys}}}):
        found.setdefault(artifact["key"], []).append(artifact)
    return found if found.keys() == set(keys) else None


def test_the_configured_port_is_used_unless_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        other = choose_port("127.0.0.1", busy)
        assert other not in (busy, 0)
    free = choose_port("127.0.0.1", 0)
    assert choose_port("127.0.0.1", free) == free
    assert base_url("127.0.0.1", 4200) == "http://127.0.0.1:4200"
    assert base_url("0.0.0.0", 4200) == "http://127.0.0.1:4200"
    assert base_url("::1", 4200) == "http://[::1]:4200"


def test_artifacts_carry_the_digest_link_and_the_cluster_counts(tmp_path: Path) -> None:
    from datetime import UTC, date, datetime

    from flows.cluster import ClusterReport
    from flows.digest import DigestResult
    from flows.prefect_flows import cluster_summary, digest_artifact_description

    html = tmp_path / "digests" / "digest-2026-11-20.html"
    result = DigestResult(
        day=date(2026, 11, 20),
        stories=3,
        html_path=html,
        markdown_path=html.with_suffix(".md"),
        markdown="#\n",
    )
    assert digest_artifact_description(result) == (
        f"Storyline digest for 2026-11-20. HTML digest: [digest-2026-11-20.html]({html.resolve().as_uri()})"
        f" — `{html.resolve()}`"
    )
    report = ClusterReport(run_id=7, as_of=datetime(2026, 11, 20, tzinfo=UTC), window_articles=10,
                           stories_touched=4, new_stories=2, merges=1, splits=0, unassigned=3)  # fmt: skip
    assert cluster_summary(report) == [{
        "window articles": 10, "stories touched": 4, "stories new": 2, "merged": 1, "split": 0,
        "share without a story": "30%",
    }]  # fmt: skip
