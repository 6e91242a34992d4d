"""Fetching at scale: one ingest of N feeds (default 10,000) over loopback HTTP into a fresh DuckDB
file, per runner, in one run: the local runner (threads of the ingest's process) against the Dask
runner (a local cluster of 2 worker processes), and optionally the local runner with 16 threads, so
that more processes and more threads are told apart.

    nice .venv/bin/python bench/fetch_scale.py [--feeds 10000] [--items 10] [--hosts 100]
        [--runs local,dask,again] [--deadline 10] [--workdir DIR]

``again`` ingests a second time into the local run's database: every feed answers 304 Not
Modified, the steady state of a 15-minute schedule.

The feeds come from a server in its own process (``devkit.feed_server``, generated on the fly,
one server per loopback address 127.0.1.x so that each is a host of its own for per_host_limit).
Of every 200 feeds: one trickles a byte every 0.2 s (past the fetch deadline: a timeout), one
answers after 3 s (slow, but within every limit), one answers HTTP 500 and one resets the
connection (both retried within the run, then recorded as failed). Each ingest runs in a process of
its own (the step, or the Prefect flow for the Dask runner, as ``storyline ingest`` would) and is
measured from here: wall time, peak RSS of the ingest process (its own getrusage) and of it with its
Dask workers (sampled), CPU seconds of its whole process tree. No process outlives the benchmark.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# (fetch.runner, fetch.max_workers) of each run this script knows. "again" ingests once more into the
# database of the "local" run (which must come before it): every feed answers 304, the steady state
# of a schedule where little is new.
RUNS = {"local": ("local", 8), "local-16": ("local", 16), "dask": ("dask", 8), "again": ("local", 8)}
DASK_WORKERS = 2


# --- the feed server (its own process) -----------------------------------------------------------

_SYLLABLES = ["ka", "lo", "mi", "ren", "tas", "vol", "der", "an", "is", "po", "sel", "tur", "ni", "gra"]


def _vocabulary(size: int = 3000) -> list[str]:
    rng = random.Random(7)
    return ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(size)]


def _feed(n: int, items: int, base: datetime, words: list[str]) -> str:
    """Feed n: ``items`` distinct articles, the same on every request (so runs store the same)."""
    rng = random.Random(n)
    parts = []
    for j in range(items):
        title = " ".join(rng.choices(words, k=8)).capitalize()
        text = " ".join(rng.choices(words, k=rng.randint(40, 80))).capitalize() + "."
        when = format_datetime(base - timedelta(minutes=rng.randint(0, 48 * 60)), usegmt=True)
        parts.append(
            f'<item><guid isPermaLink="false">{n}-{j}</guid><title>{title}</title>'
            f"<link>https://outlet-{n}.example/news/{j}</link><pubDate>{when}</pubDate>"
            f"<description>&lt;p&gt;{text}&lt;/p&gt;</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Outlet {n}</title><link>https://outlet-{n}.example/</link>{''.join(parts)}</channel></rss>"
    )


def serve(args: argparse.Namespace) -> None:
    """Serve the feeds until stdin closes (the benchmark ended, or died: then SIGTERM too)."""
    from devkit.feed_server import FeedServer, Route
    from flows.execution import die_with_parent

    die_with_parent()
    words = _vocabulary()
    base = datetime.fromtimestamp(args.base, UTC)

    def make(rest: str) -> Route | None:
        name = rest.removesuffix(".xml")
        if not name.isdigit():
            return None
        n, kind = int(name), int(name) % 200
        if kind == 7:
            return Route(body=_feed(n, args.items, base, words), trickle=0.2)
        if kind == 57:
            return Route(body="server error", status=500, content_type="text/plain")
        if kind == 157:
            return Route(reset=True)
        delay = 3.0 if kind == 107 else 0.0
        return Route(body=_feed(n, args.items, base, words), etag=f'"{n}"', delay=delay)

    # One port for all: the first server takes a free one, the others listen on it too.
    servers: list[FeedServer] = []
    port = 0
    for h in range(1, args.hosts + 1):
        server = FeedServer(f"127.0.1.{h}", port, log_requests=False, poll_interval=0.5)
        server.generate("/feed/", make)
        servers.append(server.start())
        port = int(server.base_url.rsplit(":", 1)[1])
    print(port, flush=True)
    try:
        sys.stdin.read()
    finally:
        for server in servers:
            server.stop()


# --- one ingest (its own process) ----------------------------------------------------------------


def ingest(args: argparse.Namespace) -> None:
    """One ingest as the command line runs it; prints its figures as one JSON line."""
    from flows.runtime import configure_environment

    configure_environment()
    import flows.ingest as step
    from pipeline.settings import load_settings

    phases: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        def run(*a: Any, **k: Any) -> Any:
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return fn(*a, **k)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - started
                # CPU of this process's threads (for the Dask runner, not its workers').
                phases[f"{name}_cpu"] = phases.get(f"{name}_cpu", 0.0) + time.process_time() - cpu

        return run

    # Phase timers around the step's own functions (measurement only: the calls are unchanged).
    step.prepare = timed("prepare", step.prepare)
    step.fetch_all = timed("fetch", step.fetch_all)
    step.fetch_pages = timed("pages", step.fetch_pages)
    step.store_outcomes = timed("store", step.store_outcomes)
    settings = load_settings(db=args.db, sources=args.sources)
    runner, threads = RUNS[args.run]
    settings.fetch.runner = runner
    settings.fetch.max_workers = threads
    settings.fetch.deadline_s = args.deadline
    settings.embed.dask_workers = DASK_WORKERS
    if runner == "dask":
        from prefect import flow

        from flows.prefect_flows import ingest_flow

        # Start Prefect's temporary server before the clock, as a `storyline serve` would have it.
        flow(name="warm-up")(lambda: None)()
        started = time.perf_counter()
        report = ingest_flow(settings)
    else:
        started = time.perf_counter()
        report = step.ingest_step(settings, progress=False)
    seconds = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({
        "ingest_s": seconds, "phases": phases, "ok": report.sources_ok + report.sources_unchanged,
        "failed": report.sources_failed, "new_articles": report.new_articles, "runner": report.runner,
        "own_rss_mb": own.ru_maxrss / 1024,
    }), flush=True)  # fmt: skip


# --- the benchmark -------------------------------------------------------------------------------


class Processes:
    """Every process the benchmark started, and what they started, as seen while they ran: a
    process whose parent exited is no longer below us, but is still ours to stop."""

    def __init__(self) -> None:
        self.seen: dict[int, Any] = {}

    def below(self, pid: int) -> list[Any]:
        import psutil

        try:
            found = psutil.Process(pid).children(recursive=True)
        except psutil.Error:
            found = []
        for p in found:
            self.seen.setdefault(p.pid, p)
        return found

    def add(self, pid: int) -> None:
        import psutil

        with contextlib.suppress(psutil.Error):
            self.seen.setdefault(pid, psutil.Process(pid))

    def alive(self) -> list[Any]:
        return [p for p in self.seen.values() if p.is_running() and p.status() != "zombie"]

    def stop(self) -> None:
        """SIGTERM every one still running, then SIGKILL what is left after 5 s."""
        import psutil

        for p in self.seen.values():
            self.below(p.pid)
        procs = self.alive()
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.terminate()
        _, left = psutil.wait_procs(procs, timeout=5)
        for p in left:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(left, timeout=5)


def _rss(p: Any) -> tuple[int, bool]:
    """A process's resident memory, and whether it is Prefect's temporary server (not counted)."""
    try:
        return int(p.memory_info().rss), "uvicorn" in " ".join(p.cmdline())
    except Exception:
        return 0, False


def measure(argv: list[str], out: Path, env: dict[str, str], cwd: Path, procs: Processes) -> dict[str, Any]:
    """Run one ingest process; its figures plus wall, CPU and sampled peak memory. Every process of
    it is stopped when it ends, and stays in ``procs`` to be checked at the end."""
    import psutil

    tree = Processes()
    started = time.perf_counter()
    with out.open("w") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    tree.add(proc.pid)
    peak_tree = 0
    try:
        while True:
            # wait4: the CPU time of the ingest process and of every process below it that it reaped.
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            with contextlib.suppress(psutil.Error):
                sizes = [_rss(p) for p in [psutil.Process(proc.pid), *tree.below(proc.pid)]]
                peak_tree = max(peak_tree, sum(rss for rss, server in sizes if not server))
            time.sleep(0.25)
    finally:
        tree.stop()
        procs.seen.update(tree.seen)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"ingest exited {os.waitstatus_to_exitcode(status)}:\n{out.read_text()[-3000:]}")
    lines = [line for line in out.read_text().splitlines() if line.startswith("{")]
    figures = json.loads(lines[-1])
    return figures | {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "tree_rss_mb": max(peak_tree / 2**20, figures["own_rss_mb"]),
    }


def _host(n: int, hosts: int) -> int:
    """Feed n's host (127.0.1.x): hashed, so that the slow and failing feeds (n % 200) spread over
    the hosts. (n % hosts put them all on two hosts: one whose 100 feeds were all slow set the pace
    of the whole fetch phase, 327 s, whatever the threads or the runner.)"""
    return 1 + zlib.crc32(str(n).encode()) % hosts


def _stored(db: Path) -> tuple[int, int]:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        count, digest = con.execute("SELECT count(*), sum(hash(article_id)) FROM articles").fetchone()
    return int(count), int(digest or 0)


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "serve", "ingest"])
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=10, help="articles per feed")
    parser.add_argument("--hosts", type=int, default=100, help="loopback addresses 127.0.1.1-N (at most 250)")
    parser.add_argument("--runs", default="local,dask,again", help=f"runs, in order: {', '.join(RUNS)}")
    parser.add_argument("--deadline", type=float, default=10.0, help="fetch.deadline_s (whole request)")
    parser.add_argument("--workdir", type=Path, help="kept afterwards (default: a temporary directory)")
    # Internal: the server and ingest processes.
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--base", type=float, default=0.0)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--sources", type=Path)
    parser.add_argument("--run", default="local")
    args = parser.parse_args()
    if args.mode == "serve":
        return serve(args)
    if args.mode == "ingest":
        return ingest(args)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = [r for r in runs if r not in RUNS]
    if unknown or not 1 <= args.hosts <= 250:
        parser.error(f"unknown runs {unknown} or --hosts out of 1-250")
    if "again" in runs and "local" not in runs[: runs.index("again")]:
        parser.error("the run 'again' needs a 'local' run before it (it ingests into that database)")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fetch-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORYLINE_", "PREFECT_API"))}
    env |= {"PYTHONPATH": str(REPO), "PREFECT_HOME": str(work / ".prefect"), "PREFECT_LOGGING_LEVEL": "ERROR"}
    base = datetime.now(UTC).replace(microsecond=0)
    print(f"start: {_uptime()}", flush=True)
    server = subprocess.Popen(
        [sys.executable, __file__, "serve", f"--items={args.items}", f"--hosts={args.hosts}",
         f"--base={base.timestamp()}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
    )  # fmt: skip
    procs = Processes()
    procs.add(server.pid)
    results: dict[str, dict[str, Any]] = {}
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        sources = work / "sources.toml"
        urls = {
            f"feed-{n:05d}": f"http://127.0.1.{_host(n, args.hosts)}:{port}/feed/{n}.xml"
            for n in range(args.feeds)
        }
        sources.write_text("".join(f'[[sources]]\nname = "{n}"\nurl = "{u}"\n\n' for n, u in urls.items()))
        import psutil

        serving = psutil.Process(server.pid)
        for run in runs:
            db = work / f"{'local' if run == 'again' else run}.duckdb"
            if run != "again":
                db.unlink(missing_ok=True)
            server_cpu = sum(serving.cpu_times()[:2])
            argv = [sys.executable, __file__, "ingest", f"--run={run}", f"--db={db}", f"--sources={sources}",
                    f"--deadline={args.deadline}"]  # fmt: skip
            figures = measure(argv, work / f"{run}.log", env, work, procs)
            figures["server_cpu_s"] = sum(serving.cpu_times()[:2]) - server_cpu
            figures["stored"], figures["digest"] = (0, 0) if run == "again" else _stored(db)
            results[run] = figures
            rounded = {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}
            print(f"{run}: {json.dumps(rounded)}", flush=True)
    finally:
        if server.stdin:
            server.stdin.close()
        procs.stop()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    report(results, args, [p.pid for p in procs.alive()])
    print(f"end: {_uptime()}")


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace, left: list[int]) -> None:
    print(f"\n{args.feeds} feeds x {args.items} items over {args.hosts} loopback hosts; 0.5% trickle past "
          f"the {args.deadline:g} s deadline, 0.5% answer after 3 s, 0.5% HTTP 500, 0.5% reset; "
          f"Dask: {DASK_WORKERS} worker processes, each 4 chunks of 500 at a time on 8 threads")  # fmt: skip
    head = ["run", "wall s", "ingest s", "fetch s", "store s", "CPU s", "RSS MB", "+workers MB",
            "ok", "failed", "stored", "art/s"]  # fmt: skip
    print(" | ".join(head))
    for run, f in results.items():
        cells = [run, f"{f['wall_s']:.1f}", f"{f['ingest_s']:.1f}", f"{f['phases'].get('fetch', 0):.1f}",
                 f"{f['phases'].get('store', 0):.1f}", f"{f['cpu_s']:.1f}", f"{f['own_rss_mb']:.0f}",
                 f"{f['tree_rss_mb']:.0f}", str(f["ok"]), str(f["failed"]), str(f["new_articles"]),
                 f"{f['new_articles'] / f['ingest_s']:.0f}"]  # fmt: skip
        print(" | ".join(cells))
    if "local" in results:
        for run, f in results.items():
            if run not in ("local", "again"):
                print(f"local / {run}: ingest time x{results['local']['ingest_s'] / f['ingest_s']:.2f}")
    same = len({(f["stored"], f["digest"]) for r, f in results.items() if r != "again"}) == 1
    print("same articles stored in every run:", same)
    print("processes left behind:", sorted(left) or "none")


if __name__ == "__main__":
    main()
