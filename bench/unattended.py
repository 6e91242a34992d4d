"""Unattended operation for a few minutes: `storyline serve` with short schedules against a local
feed server, one source turning to 429 + Retry-After, one that stops answering, and an analyst's
`storyline sql` running alongside the scheduled writers the whole time.

    .venv/bin/python bench/unattended.py --minutes 4

Prints what the reader saw (queries answered, how long the slowest waited for a writer), every
flow run the schedules made, and `source_health` at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb

from devkit.feed_server import FeedServer, RequestRecord


class GrowingFeed:
    """A feed that publishes one more item every ``every`` seconds."""

    def __init__(self, name: str, every: float) -> None:
        self.name, self.every, self.start = name, every, time.monotonic()

    def __call__(self, _: RequestRecord) -> str:
        count = 1 + int((time.monotonic() - self.start) / self.every)
        now = datetime.now(UTC)
        items = "".join(
            f'<item><guid isPermaLink="false">{self.name}-{k}</guid>'
            f"<title>{self.name} update {k}: harbour bridge repairs and ferry timetable</title>"
            f"<pubDate>{format_datetime(now)}</pubDate><description>Update {k} from {self.name} on the "
            f"harbour bridge repairs, the ferry timetable and the city's traffic plan.</description></item>"
            for k in range(count)
        )
        head = f'<?xml version="1.0"?><rss version="2.0"><channel><title>{self.name}</title>'
        return f"{head}{items}</channel></rss>"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="storyline-serve-") as tmp, FeedServer() as srv:
        work = Path(tmp)
        for name in ("Harbor Times", "Global Wire", "Levant Ledger"):
            slug = name.lower().replace(" ", "-")
            srv.route(f"/{slug}.xml", GrowingFeed(name, 40.0))
        busy = GrowingFeed("Busy Daily", 40.0)
        srv.route("/busy.xml", busy)
        srv.route("/stuck.xml", GrowingFeed("Stuck Post", 40.0))
        sources = ["Harbor Times", "Global Wire", "Levant Ledger"]
        lines = [
            f'[[sources]]\nname = "{n}"\nurl = "{srv.url("/" + n.lower().replace(" ", "-") + ".xml")}"\n'
            for n in sources
        ]
        lines.append(f'[[sources]]\nname = "Busy Daily"\nurl = "{srv.url("/busy.xml")}"\n')
        lines.append(f'[[sources]]\nname = "Stuck Post"\nurl = "{srv.url("/stuck.xml")}"\n')
        (work / "sources.toml").write_text("\n".join(lines))
        (work / "storyline.toml").write_text(
            'db = "news.duckdb"\nsources = "sources.toml"\nlock_wait_s = 60\n'
            "[fetch]\nbase_interval_s = 30\nmin_interval_s = 30\n"
            "read_timeout_s = 3\ndeadline_s = 6\nretries = 1\n"
            '[schedule]\ningest_every_s = 30\ncluster_every_s = 60\ndigest_cron = "*/2 * * * *"\n'
            '[digest]\nout_dir = "digests"\n'
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "STORYLINE_"))}
        env |= {"PREFECT_HOME": str(work / ".prefect"), "PREFECT_RUNNER_POLL_FREQUENCY": "5"}
        serve = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve"],
            cwd=work,
            env=env,
            stdout=(work / "serve.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        print(
            f"storyline serve started (pid {serve.pid}); feeds at {srv.base_url}; "
            f"running {args.minutes:g} min"
        )

        reads: list[tuple[float, int, str]] = []
        stop = threading.Event()

        def reader() -> None:
            query = "SELECT count(*) FROM articles"
            while not stop.is_set():
                if (work / "news.duckdb").exists():
                    start = time.monotonic()
                    done = subprocess.run(
                        [sys.executable, "-m", "flows.cli", "sql", query, "--csv"],
                        cwd=work,
                        env=env,
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    reads.append(
                        (time.monotonic() - start, done.returncode, done.stdout.strip().split("\n")[-1])
                    )
                stop.wait(2.0)

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        started = time.monotonic()
        turned = False
        while time.monotonic() - started < args.minutes * 60:
            if not turned and time.monotonic() - started > 60:
                # After a minute: one source starts rate-limiting, another stops answering.
                srv.route(
                    "/busy.xml",
                    "slow down",
                    status=429,
                    content_type="text/plain",
                    headers={"Retry-After": "3600"},
                )
                srv.route("/stuck.xml", busy(None), delay=60)
                turned = True
                print("  t+60s: Busy Daily now answers 429 Retry-After: 3600; Stuck Post stops answering")
            time.sleep(2)
        stop.set()
        thread.join(timeout=120)
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=120)
        print(f"storyline serve stopped (exit {serve.returncode})")

        ok = [r for r in reads if r[1] == 0]
        print(
            f"\nreader: {len(reads)} `storyline sql` queries, {len(ok)} answered, "
            f"slowest {max((r[0] for r in reads), default=0):.1f} s (CLI start-up included); "
            f"articles seen grew {ok[0][2] if ok else '-'} -> {ok[-1][2] if ok else '-'}"
        )
        failed = [r for r in reads if r[1] != 0]
        if failed:
            print(f"  {len(failed)} queries failed: exit codes {sorted({r[1] for r in failed})}")
        with duckdb.connect(str(work / "news.duckdb"), read_only=True) as con:
            print("\nruns by the schedules:")
            for kind, status, n, first, last in con.execute(
                "SELECT kind, status, count(*), min(started_at), max(started_at) FROM runs "
                "GROUP BY ALL ORDER BY 1, 2"
            ).fetchall():
                print(f"  {kind:8s} {status:12s} {n:3d}  {first:%H:%M:%S} .. {last:%H:%M:%S}")
            print("\nsource_health:")
            cur = con.execute(
                "SELECT name, health, consecutive_failures, last_error_class, last_error, next_fetch_at "
                "FROM source_health ORDER BY name"
            )
            for row in cur.fetchall():
                name, health, fails, cls, err, nxt = row
                print(
                    f"  {name:14s} {health:8s} failures={fails} {cls or '':13s} "
                    f"next={nxt:%H:%M:%S}  {(err or '')[:60]}"
                )
            (stories,) = con.execute("SELECT count(*) FROM story_summary").fetchall()[0]
            print(f"\nstories: {stories}; digests written: {len(list((work / 'digests').glob('*.md')))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
