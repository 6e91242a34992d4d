"""What a person sees when something is wrong, and what a stopped command leaves behind.

Handled errors are one line with a meaningful exit code, before any work starts; one-shot commands
run their steps without starting a Prefect server when none is configured; SIGTERM ends a command
promptly with the run recorded as interrupted and no process left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from devkit.feed_server import FeedServer
from tests.builders import process_holding, query, rss, rss_item, write_sources

REPO = Path(__file__).resolve().parent.parent


def storyline(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it: its own process, no Prefect server configured."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("STORYLINE_", "PREFECT_API"))}
    environ |= {"PYTHONPATH": str(REPO), "PREFECT_HOME": str(cwd / ".prefect")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["stories", "--limit", "-1"], "must be 1 or more"),
        (["stories", "--limit", "many"], "not a whole number"),
        (["digest", "--date", "9999-12-31"], "out of range"),
        (["cluster", "--as-of", "0001-01-01"], "out of range"),
        (["backfill", "x.jsonl", "--step", "0h"], "invalid --step"),
    ],
)
def test_bad_command_line_values_are_usage_errors(tmp_path: Path, args: list[str], expected: str) -> None:
    done = storyline(*args, "--db", str(tmp_path / "db.duckdb"), cwd=tmp_path)
    assert done.returncode == 2
    assert expected in done.stderr and "Traceback" not in done.stderr


def test_configuration_and_database_problems_are_one_line_before_any_work(tmp_path: Path) -> None:
    missing = storyline("run", "--sources", "nope.toml", "--db", "db.duckdb", cwd=tmp_path)
    assert missing.returncode == 2 and "nope.toml" in one_line_error(missing)

    (tmp_path / "bad.toml").write_text("[[sources]\nname = 'x'", encoding="utf-8")
    malformed = storyline("ingest", "--sources", "bad.toml", "--db", "db.duckdb", cwd=tmp_path)
    assert malformed.returncode == 2 and "bad.toml" in one_line_error(malformed)

    twice = write_sources(tmp_path / "twice.toml", {"Same": "http://127.0.0.1:9/a.xml"})
    with twice.open("a", encoding="utf-8") as f:
        f.write('[[sources]]\nname = "Same "\nurl = "http://127.0.0.1:9/b.xml"\n')
    dup = storyline("run", "--sources", str(twice), "--db", "db.duckdb", cwd=tmp_path)
    assert dup.returncode == 2 and "same name" in one_line_error(dup)

    sources = write_sources(tmp_path / "ok.toml", {"Gone": "http://127.0.0.1:9/feed.xml"})
    no_folder = storyline("run", "--sources", str(sources), "--db", "no/such/dir/db.duckdb", cwd=tmp_path)
    assert no_folder.returncode == 3 and "does not exist" in one_line_error(no_folder)

    (tmp_path / "notduck.duckdb").write_text("this is not a database\n" * 100, encoding="utf-8")
    not_duck = storyline("cluster", "--db", "notduck.duckdb", cwd=tmp_path)
    assert not_duck.returncode == 3 and "notduck.duckdb" in one_line_error(not_duck)

    db = tmp_path / "held.duckdb"
    duckdb.connect(str(db)).close()
    holder = process_holding(db, read_only=False, seconds=30)
    try:
        locked = storyline("cluster", "--db", str(db), cwd=tmp_path, env={"STORYLINE_LOCK_WAIT_S": "1"})
    finally:
        holder.kill()
        holder.wait()
    assert locked.returncode == 3 and "locked" in one_line_error(locked)


def test_one_shot_commands_run_their_steps_without_prefect(tmp_path: Path) -> None:
    """No server configured: nothing of Prefect is imported, so no temporary server is started."""
    code = (
        "import sys; from flows.cli import main; "
        f"code = main(['cluster', '--db', {str(tmp_path / 'db.duckdb')!r}]); "
        "print('prefect loaded' if 'prefect' in sys.modules else 'no prefect'); sys.exit(code)"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("STORYLINE_", "PREFECT_API"))}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=environ | {"PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "no prefect" in done.stdout
    assert query(tmp_path / "db.duckdb", "SELECT kind, status FROM runs ORDER BY run_id") == [
        ("embed", "ok"),
        ("cluster", "ok"),
    ]


def test_a_closed_pipe_ends_output_quietly(tmp_path: Path) -> None:
    storyline("cluster", "--db", "db.duckdb", cwd=tmp_path)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STORYLINE_")}
    command = f"{sys.executable} -m flows.cli sql --db db.duckdb 'SELECT * FROM range(200000)' | head -n 2"
    done = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {command}"], cwd=tmp_path,
        env=environ | {"PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.stdout.count("\n") == 2
    assert "BrokenPipe" not in done.stderr and "Traceback" not in done.stderr


def _no_process_left(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_sigterm_during_a_slow_fetch_stops_the_run_and_leaves_nothing_running(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed = rss(rss_item("t-1", "Trickled report", "A report that arrives one byte at a time."))
    feed_server.route("/trickle.xml", feed, trickle=0.5)
    sources = write_sources(tmp_path / "sources.toml", {"Trickle": feed_server.url("/trickle.xml")})
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("STORYLINE_", "PREFECT_API"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "run", "--sources", str(sources), "--db", "db.duckdb"],
        cwd=tmp_path, env=environ | {"PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(600):
            if feed_server.requests_for("/trickle.xml"):
                break
            time.sleep(0.1)
        assert feed_server.requests_for("/trickle.xml"), "the fetch never started"
        time.sleep(1.0)
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert query(tmp_path / "db.duckdb", "SELECT kind, status FROM runs") == [("ingest", "interrupted")]
    time.sleep(0.5)
    assert _no_process_left(proc.pid), "a process of the stopped command is still running"


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_with_a_prefect_server_configured_commands_run_as_flows_it_records(
    tmp_path: Path, make_settings, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from flows.cli import EXIT_OK, main

    feed_server.route("/a.xml", rss(rss_item("p-1", "Prefect report", "A report for the flow run.")))
    sources = write_sources(tmp_path / "sources.toml", {"A": feed_server.url("/a.xml")})
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    assert main(["ingest", "--sources", str(sources), "--db", str(tmp_path / "db.duckdb")]) == EXIT_OK

    with get_client(sync_client=True) as client:
        names = {client.read_flow(r.flow_id).name: r.state_name for r in client.read_flow_runs(limit=50)}
    assert names.get("ingest") == "Completed"
    assert query(tmp_path / "db.duckdb", "SELECT kind, status FROM runs") == [("ingest", "ok")]
