"""End to end on real text: a stream built from the shared sets through `storyline backfill --step 1h`.

    nice .venv/bin/python bench/stream.py --workdir /tmp/stream                 # every real text, 10 days
    nice .venv/bin/python bench/stream.py --articles 3000 --days 2 --workdir /tmp/stream-quick
    nice .venv/bin/python bench/stream.py --articles 50000 --repost --workdir /tmp/stream-50k

The archive (JSON Lines, the `storyline import` format) is written to ``--workdir`` (a temporary
folder, removed afterwards, when none is given; never inside the repository: the shared sets'
text must not land in it). `storyline backfill ARCHIVE --db WORKDIR/stream.duckdb --step 1h` then
runs as a subprocess of its own, with default settings (a `storyline.toml` in the work folder names
only the database; STORYLINE_* and PREFECT_* variables of the caller are not passed on). Reported:
the wall time of the whole command, its peak RSS (``wait4``'s ``ru_maxrss`` of the backfill
process), and, from its `runs` table, the import and embed runs and the time per cluster run (mean,
median, p90, max), split by the path a run took: skipped (nothing new), exact (window and context
up to ``cluster.exact_max``), sparse with the neighbour graph built afresh or updated from the last
run's. A cluster run's "step" time is from its start to the next run's start: the recorded run plus
what follows its commit (saving the window graph) and the loop's own work.

How the stream is built, and why so:

* Articles: the five shared sets hold about 15,000 texts (gaza-headlines 11,505, gva-2013-2015
  1,947, ecbplus 982, uci-headlines 499, gedikli 100). Each real text is used once. ``--articles N``
  below that takes a seeded random sample of the whole stream (each set's share kept); the default
  is every real text. More than exist needs ``--repost``, which adds copies of real articles as
  re-posts by another outlet: a new id, a new URL (``?repost=K``), the source named
  ``SOURCE [repost K]``, the time shifted by K × days / passes (wrapped within the timeline, so a
  text recurs every few days). Such a copy is not a new story: it has its original's text and so
  its vector, yet it is still embedded and clustered, and it joins its original's story, so every
  repeated article has a twin and stories are bigger than real news gives. Syndication marks only
  some of them (`articles.duplicate_of`: copies of full texts at most 4 days apart; in a check,
  52 of 301 re-posts of gedikli and uci-headlines, the headline-only ones not at all), which
  changes source counts, not the clustering work. The default therefore stays real-only;
  re-posts are said so in the output.
* The importer keeps one article per source and text, and per URL: 3,000 lines of the real
  stream gave 2,971 articles (the Gaza set repeats some headlines and URLs); the figures count
  what was stored.
* Times: each set is laid on one timeline of ``--days`` days from ``--start`` (default 2025-01-01,
  in the past, so no date counts as future). A set spanning longer than the timeline is compressed
  linearly onto it (Gaza: eight months into ten days, its ups and downs kept); a shorter one
  (uci-headlines, one afternoon) keeps its own spacing at a seeded offset. Dates without a time
  get a seeded time within their day first; undated articles (ecbplus) a seeded time anywhere on the
  timeline. Ids are prefixed with the set's name.
* Scale: what a cluster run costs follows what its window (``cluster.window_days``, 4) holds and
  what arrived since the last run, not the total stored. 15,000 articles over 10 days is
  1,100-2,000 a day and, once four days have passed, windows of about 4,500-7,500 around
  ``cluster.exact_max`` (5,000), so both the exact and the sparse path run. ``--days 3`` gives
  the issue's arrival rate (50,000 over 10 days: 5,000 a day) with windows of up to 15,000 from
  real texts only.

Everything this script starts is ended before it returns (the backfill runs in a process group of
its own, which gets SIGTERM, then SIGKILL, if the script stops early).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.stream_report import read_runs, report
from pipeline.articles.normalise import record_date

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
SETS = ("gaza-headlines", "gva-2013-2015", "ecbplus", "uci-headlines", "gedikli")
DAY = 86400.0


def load_stream(shared: Path, sets: list[str], days: float, start: datetime, seed: int) -> list[dict]:
    """Every article of the sets, each set re-timed onto the timeline (see the module docstring)."""
    rng = random.Random(seed)
    length = days * DAY
    out = []
    for name in sets:
        records = [json.loads(line) for line in (shared / name / "articles.jsonl").open(encoding="utf-8")]
        times: list[float | None] = []
        for r in records:
            when = record_date(r.get("published_at"))[0]
            if when is None:
                times.append(None)
                continue
            jitter = rng.uniform(0, DAY) if len(str(r["published_at"]).strip()) == 10 else 0.0
            times.append(when.timestamp() + jitter)
        dated = [t for t in times if t is not None]
        first, span = (min(dated), max(dated) - min(dated)) if dated else (0.0, 0.0)
        scale = min(1.0, length / span) if span else 1.0
        offset = rng.uniform(0, max(0.0, length - span * scale))
        for r, t in zip(records, times, strict=True):
            at = rng.uniform(0, length) if t is None else offset + (t - first) * scale
            out.append(r | {"id": f"{name}:{r['id']}", "set": name, "at": min(at, length - 1.0)})
    return out


def reposts(stream: list[dict], extra: int, days: float, seed: int) -> list[dict]:
    """``extra`` re-posts of real articles by other outlets (see the module docstring)."""
    rng = random.Random(seed + 1)
    passes = 1 + -(-extra // len(stream))
    length = days * DAY
    out = []
    for k in range(1, passes):
        order = rng.sample(stream, len(stream))
        for r in order[: extra - len(out)]:
            source = r.get("source")
            title = r.get("title")
            if title and source and title.endswith(f" - {source}"):
                title = title[: -len(f" - {source}")]  # as the importer strips it from the original
            url = r.get("url")
            out.append(
                r
                | {
                    "id": f"{r['id']}#repost{k}",
                    "source": f"{source or 'import'} [repost {k}]",
                    "url": f"{url}{'&' if '?' in url else '?'}repost={k}" if url else None,
                    "title": title,
                    "at": (r["at"] + k * length / passes) % length,
                    "repost": k,
                }
            )
    return out


def write_archive(path: Path, stream: list[dict], start: datetime) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for r in sorted(stream, key=lambda r: r["at"]):
            at = start + timedelta(seconds=r["at"])
            record = {k: r.get(k) for k in ("id", "source", "url", "title", "text")}
            record["published_at"] = at.isoformat().replace("+00:00", "Z")
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def run_backfill(work: Path, archive: Path, step: str, timeout: float | None) -> dict:
    """`storyline backfill` in a process (group) of its own: exit code, wall seconds, peak RSS."""
    db = work / "stream.duckdb"
    for old in work.glob("stream.duckdb*"):
        old.unlink()
    (work / "storyline.toml").write_text('db = "stream.duckdb"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "STORYLINE_"))}
    env |= {"PREFECT_HOME": str(work / ".prefect"), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "flows.cli", "backfill", str(archive), "--db", str(db), "--step", step]
    print(f"$ storyline {' '.join(command[3:])}   (in {work})", flush=True)
    out, err = (work / "backfill.out").open("w"), (work / "backfill.err").open("w")
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=work, env=env, stdout=out, stderr=err, start_new_session=True)
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if timeout is not None and time.perf_counter() - started > timeout:
                raise TimeoutError(f"backfill still running after {timeout:g} s")
            time.sleep(0.5)
    finally:
        if proc.returncode is None:
            _end(proc)
        out.close()
        err.close()
    return {
        "exit": proc.returncode,
        "wall_s": time.perf_counter() - started,
        "peak_rss_gb": usage.ru_maxrss * 1024 / 1e9,  # ru_maxrss is in KiB on Linux
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "stdout": (work / "backfill.out").read_text(),
        "stderr": (work / "backfill.err").read_text(),
    }


def _end(proc: subprocess.Popen) -> None:
    """SIGTERM to the backfill's process group (it stops within seconds), SIGKILL if it does not."""
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=None, help="default: every real text of the sets")
    parser.add_argument("--days", type=float, default=10.0, help="length of the timeline (default 10)")
    parser.add_argument("--repost", action="store_true", help="allow --articles above the real texts")
    parser.add_argument("--step", default="1h", help="backfill --step (default 1h)")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="kept afterwards; default: a temporary one"
    )
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--start", default="2025-01-01", help="the timeline's first day (UTC)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=None, help="stop the backfill after this many s")
    args = parser.parse_args(argv)
    start = datetime.fromisoformat(args.start).replace(tzinfo=UTC)
    if args.workdir is not None and args.workdir.resolve().is_relative_to(ROOT):
        parser.error(
            f"--workdir {args.workdir} is inside the repository; the shared text must stay out of it"
        )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that `finally` ends the backfill

    stream = load_stream(args.shared, args.sets.split(","), args.days, start, args.seed)
    real = len(stream)
    wanted = args.articles or real
    if wanted > real and not args.repost:
        parser.error(
            f"--articles {wanted:,} is more than the {real:,} real texts; add --repost to allow copies"
        )
    if wanted < real:
        stream = random.Random(args.seed).sample(stream, wanted)
    copies = reposts(stream, wanted - real, args.days, args.seed) if wanted > real else []
    stream += copies
    load = os.getloadavg()
    print(
        f"stream: {len(stream):,} articles over {args.days:g} days from {start:%Y-%m-%d} "
        f"({len(stream) / args.days:,.0f} a day), step {args.step}; "
        + ", ".join(
            f"{s} {sum(1 for r in stream if r['set'] == s and 'repost' not in r):,}"
            for s in args.sets.split(",")
        )
    )
    if copies:
        print(
            f"  of which {len(copies):,} are RE-POSTS of real articles (the same text under another "
            f"source, id and URL; {real:,} real texts exist)"
        )
    print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)")

    tmp = None if args.workdir else tempfile.mkdtemp(prefix="storyline-stream-")
    work = (args.workdir or Path(tmp)).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        archive = work / "stream.jsonl"
        write_archive(archive, stream, start)
        print(f"archive: {archive} ({archive.stat().st_size / 1e6:.1f} MB)")
        try:
            result = run_backfill(work, archive, args.step, args.timeout)
        except TimeoutError as exc:
            print(f"stopped: {exc}")
            return 1
        result["ended_at"] = datetime.now(UTC).replace(tzinfo=None)
        print(result["stdout"].strip())
        if result["stderr"].strip():
            print("stderr:\n  " + "\n  ".join(result["stderr"].strip().splitlines()[-20:]))
        if result["exit"] != 0:
            print(f"backfill exited {result['exit']}")
            return 1
        runs, store = read_runs(work / "stream.duckdb")
        summary = report(runs, result, exact_max=_exact_max())
        load = os.getloadavg()
        print(
            f"\nstored {store['articles']:,} articles ({store['copies']:,} marked syndicated copies), "
            f"{store['embedded']:,} embedded, {store['stories']:,} stories, {store['alone']:,} articles "
            f"without a story; peak RSS {result['peak_rss_gb']:.2f} GB, CPU {result['cpu_s']:.0f} s, "
            f"wall {result['wall_s']:.1f} s"
        )
        print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        summary |= {k: result[k] for k in ("exit", "wall_s", "peak_rss_gb", "cpu_s")} | store
        summary |= {
            "articles_written": len(stream),
            "reposts": len(copies),
            "days": args.days,
            "step": args.step,
        }
        (work / "stream-summary.json").write_text(json.dumps(summary, indent=1, default=str))
        if not tmp:
            print(f"per-run figures: {work / 'stream-summary.json'}")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _exact_max() -> int:
    from pipeline.settings import ClusterSettings

    return ClusterSettings().exact_max


if __name__ == "__main__":
    raise SystemExit(main())
