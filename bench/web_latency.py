"""Page latency of `storyline web` on a 100,000-article database, idle and while `storyline run`
writes to the same file; counts failed runs and 5xx answers.

    .venv/bin/python bench/web_latency.py build  [--articles 100000]   # once; cached in bench/.cache
    .venv/bin/python bench/web_latency.py measure [--seconds 60] [--runs 3]

build: synthetic stories (heavy-tailed sizes, 60 days up to now, 20 outlets with local feed
files), written through storage's own functions: articles, vectors, memberships, labels,
briefs, a fetch history. measure: starts `storyline web` on a copy, requests a mix of pages
(front page, story pages, search, sources, JSON API, Atom feed) one after another for
``--seconds`` idle, then again while ``--runs`` successive `storyline run`s each ingest 100 new
articles from the outlets' feeds, embed them and cluster the window. Prints p50/p95 per page
and overall, the runs' exit codes and wall times, and the app's copy statistics.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CACHE = REPO / "bench" / ".cache"
OUTLETS = [f"Outlet {chr(65 + i)}" for i in range(20)]
WORDS = [
    "minister", "council", "talks", "deal", "vote", "strike", "storm", "flood", "court", "trial",
    "bank", "rates", "market", "shares", "election", "border", "aid", "ceasefire", "protest", "police",
    "fire", "quake", "rescue", "budget", "tax", "energy", "grid", "power", "oil", "gas", "climate",
    "summit", "union", "league", "final", "match", "coach", "transfer", "chip", "launch", "study",
    "vaccine", "hospital", "school", "rail", "port",
]  # fmt: skip


def _feed(items: list[tuple[str, str, str, datetime]]) -> str:
    from email.utils import format_datetime
    from xml.sax.saxutils import escape

    body = "".join(
        f"<item><guid isPermaLink='false'>{g}</guid><title>{escape(t)}</title>"
        f"<link>https://news.example/{g}</link><pubDate>{format_datetime(w)}</pubDate>"
        f"<description>{escape(x)}</description></item>"
        for g, t, x, w in items
    )
    head = "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>T</title>"
    return f"{head}{body}</channel></rss>"


def _sentence(rng: random.Random, names: list[str]) -> str:
    words = [
        rng.choice(names) if rng.random() < 0.3 else rng.choice(WORDS) for _ in range(rng.randint(9, 16))
    ]
    return words[0].capitalize() + " " + " ".join(words[1:]) + "."


def build(args: argparse.Namespace) -> None:
    from flows.briefing import refresh_briefs
    from pipeline.records import Article, FetchResult, Source
    from pipeline.settings import DEFAULT_MODEL
    from pipeline.stories.assign import MembershipChange
    from storage import articles as article_store
    from storage import embeddings as embedding_store
    from storage import labels as label_store
    from storage import runs
    from storage import sources as source_store
    from storage.db import open_db, transaction
    from storage.stories import apply_story_update

    n = args.articles
    folder = CACHE / f"web-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "feeds").mkdir(parents=True)
    db = folder / "storyline.duckdb"
    rng = random.Random(7)
    nrng = np.random.default_rng(7)
    now = datetime.now(UTC).replace(microsecond=0)
    # Heavy-tailed story sizes (most stories one or two reports, a few hundreds).
    sizes: list[int] = []
    while sum(sizes) < n:
        sizes.append(int(min(400, nrng.zipf(2.0))))
    sizes[-1] -= sum(sizes) - n
    sources = [Source(o, str(folder / "feeds" / f"outlet-{i}.xml")) for i, o in enumerate(OUTLETS)]
    for s in sources:
        Path(s.url).write_text(_feed([]), encoding="utf-8")
    (folder / "sources.toml").write_text(
        "".join(f'[[sources]]\nname = "{s.name}"\nurl = "{s.url}"\n\n' for s in sources), encoding="utf-8"
    )
    articles, vectors, members = [], [], []
    for k, size in enumerate(sizes):
        centre = nrng.normal(size=384)
        centre /= np.linalg.norm(centre)
        names = [f"Name{k}x{j}" for j in range(3)]
        start = now - timedelta(days=60 * rng.random())
        for j in range(size):
            when = min(now, start + timedelta(hours=rng.random() * 72))
            aid = f"a_{k:06d}_{j:04d}"
            text = " ".join(_sentence(rng, names) for _ in range(5))
            articles.append(
                Article(
                    aid,
                    rng.choice(OUTLETS),
                    _sentence(rng, names)[:-1],
                    text,
                    f"https://news.example/{aid}",
                    None,
                    when,
                    when,
                    content_hash=aid,
                )
            )
            v = centre + nrng.normal(scale=0.6 / np.sqrt(384), size=384)
            vectors.append(v / np.linalg.norm(v))
            members.append((aid, f"s_{k:012x}" if size > 1 else None))
    print(f"{len(articles)} articles, {sum(1 for s in sizes if s > 1)} stories of 2+", flush=True)
    with open_db(db) as con:
        with transaction(con):
            source_store.sync_sources(con, sources, now)
            run_id = runs.start_run(con, "build")
        for i in range(0, len(articles), 10_000):
            with transaction(con):
                article_store.insert_articles(con, articles[i : i + 10_000], run_id=run_id)
                ids = [a.article_id for a in articles[i : i + 10_000]]
                embedding_store.store_embeddings(
                    con, DEFAULT_MODEL, ids, np.array(vectors[i : i + 10_000], np.float32)
                )
        print("articles and vectors stored", flush=True)
        stories = sorted({s for _, s in members if s})
        with transaction(con):
            apply_story_update(
                con,
                run_id=run_id,
                now=now,
                new_stories=stories,
                lineage=[],
                retired=[],
                changes=[MembershipChange(a, None, s, "new") for a, s in members if s],
            )
            first = {}
            for a, (aid, s) in zip(articles, members, strict=True):
                if s and s not in first:
                    first[s] = (a.title, aid)
            label_store.save_labels(con, {s: (t, aid, t.split()[:3], None) for s, (t, aid) in first.items()})
        print("stories stored; building briefs ...", flush=True)
        with transaction(con):
            refresh_briefs(con, stories, timezone="UTC", seen_since=now + timedelta(days=1), now=now)
        with transaction(con):
            for h in range(0, 48 * 4):
                at = now - timedelta(minutes=15 * h)
                for s in sources:
                    bad = rng.random() < 0.05
                    result = FetchResult(
                        s.name, s.url, "error" if bad else "not_modified", at, 40, 503 if bad else 304
                    )
                    if bad:
                        result = result.__class__(
                            **{**result.__dict__, "error_class": "http_5xx", "error": "503"}
                        )
                    source_store.record_fetch(
                        con,
                        run_id=run_id,
                        result=result,
                        entries=None,
                        new_articles=0,
                        warning=None,
                        next_fetch_at=at,
                        ttl_minutes=None,
                    )
            runs.finish_run(con, run_id, stats={"articles": n})
            # As if a cluster run had just seen everything: the measured runs then cluster their
            # window only, as live operation does (no catch-up over the whole history).
            cluster = runs.start_run(con, "cluster", as_of=now)
            runs.finish_run(con, cluster, stats={"synthetic": True})
    print(f"built {db} ({db.stat().st_size / 1e6:.0f} MB)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, float]:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            r.read()
            code = r.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except OSError:
        code = -1
    return code, (time.perf_counter() - start) * 1000


def _pages(base: str, story_ids: list[str], rng: random.Random) -> list[tuple[str, str]]:
    return [
        ("front", "/"),
        ("story", f"/stories/{rng.choice(story_ids)}"),
        ("search", f"/search?q={rng.choice(WORDS)}+{rng.choice(WORDS)}"),
        ("sources", "/sources"),
        ("api stories", "/api/stories"),
        ("api story", f"/api/stories/{rng.choice(story_ids)}"),
        ("atom", "/feeds/stories.atom"),
    ]


def _sample(
    base: str, story_ids: list[str], stop: threading.Event, out: dict[str, list[tuple[int, float]]]
) -> None:
    rng = random.Random(3)
    while not stop.is_set():
        for kind, path in _pages(base, story_ids, rng):
            out.setdefault(kind, []).append(_get(base + path))


def _report(title: str, samples: dict[str, list[tuple[int, float]]]) -> None:
    print(f"\n{title}")
    print(f"  {'page':12s} {'n':>5s} {'p50 ms':>8s} {'p95 ms':>8s} {'5xx':>4s} {'failed':>6s}")
    every = []
    for kind, rows in samples.items():
        ms = sorted(m for _, m in rows)
        every += ms
        fivexx = sum(1 for c, _ in rows if 500 <= c < 600)
        failed = sum(1 for c, _ in rows if c < 0)
        p95 = ms[int(0.95 * (len(ms) - 1))]
        print(f"  {kind:12s} {len(ms):5d} {statistics.median(ms):8.1f} {p95:8.1f} {fivexx:4d} {failed:6d}")
    every.sort()
    p95 = every[int(0.95 * (len(every) - 1))]
    print(f"  {'all':12s} {len(every):5d} {statistics.median(every):8.1f} {p95:8.1f}")


def measure(args: argparse.Namespace) -> None:
    from storage.db import open_db
    from storage.web import recently_updated

    src = CACHE / f"web-{args.articles}"
    with tempfile.TemporaryDirectory(prefix="storyline-web-bench-") as tmp:
        folder = Path(tmp)
        shutil.copytree(src, folder, dirs_exist_ok=True)
        db = folder / "storyline.duckdb"
        sources = folder / "sources.toml"
        text = sources.read_text(encoding="utf-8").replace(str(src), str(folder))
        sources.write_text(text, encoding="utf-8")
        with open_db(db, read_only=True) as con:
            story_ids = [r.story_id for r in recently_updated(con, limit=2000)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STORYLINE_", "PREFECT_API"))}
        env["STORYLINE_DIGEST__TIMEZONE"] = "UTC"
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        web = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "web", "--db", str(db), "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            started = time.perf_counter()
            while _get(base + "/api/status")[0] != 200:
                time.sleep(0.2)
            print(
                f"web app up in {time.perf_counter() - started:.1f} s (first copy of the database included)"
            )
            for _ in range(3):  # warm: model loaded, topic tags, caches
                for _kind, path in _pages(base, story_ids, random.Random(1)):
                    _get(base + path)
            idle: dict[str, list[tuple[int, float]]] = {}
            stop = threading.Event()
            sampler = threading.Thread(target=_sample, args=(base, story_ids, stop, idle))
            sampler.start()
            time.sleep(args.seconds)
            stop.set()
            sampler.join()
            _report(f"idle ({args.articles:,} articles)", idle)

            busy: dict[str, list[tuple[int, float]]] = {}
            stop = threading.Event()
            sampler = threading.Thread(target=_sample, args=(base, story_ids, stop, busy))
            sampler.start()
            results = []
            rng = random.Random(11)
            for k in range(args.runs):
                now = datetime.now(UTC)
                for i in range(len(OUTLETS)):
                    names = [f"Fresh{k}x{i}"]
                    items = [
                        (
                            f"new-{k}-{i}-{j}",
                            _sentence(rng, names)[:-1],
                            " ".join(_sentence(rng, names) for _ in range(4)),
                            now - timedelta(minutes=j),
                        )
                        for j in range(5)
                    ]
                    (folder / "feeds" / f"outlet-{i}.xml").write_text(_feed(items), encoding="utf-8")
                t0 = time.perf_counter()
                run = subprocess.run(
                    [sys.executable, "-m", "flows.cli", "run", "--sources", str(sources), "--db", str(db)],
                    env=env,
                    cwd=REPO,
                    capture_output=True,
                    text=True,
                )
                results.append(
                    (run.returncode, time.perf_counter() - t0, run.stdout.strip().splitlines()[-1:])
                )
                if run.returncode:
                    print(run.stderr)
            time.sleep(2)
            stop.set()
            sampler.join()
            _report(f"while {args.runs} `storyline run`s write ({args.articles:,} articles)", busy)
            print("\nruns (exit code, wall s, last line):")
            for code, secs, last in results:
                print(f"  {code}  {secs:6.1f}  {last}")
            status = json.loads(urllib.request.urlopen(base + "/api/status").read())
            print(f"\napp copies of the database: {status['keeper']}")
        finally:
            web.terminate()
            web.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("build")
    p.add_argument("--articles", type=int, default=100_000)
    p = sub.add_parser("measure")
    p.add_argument("--articles", type=int, default=100_000)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    build(args) if args.cmd == "build" else measure(args)


if __name__ == "__main__":
    main()
