"""A first `storyline run` over feeds that hold weeks of items: does it give stories as a backfill would?

    .venv/bin/python bench/first_run.py [../shared/data/gedikli]

A dated labelled set is served over loopback HTTP as one RSS feed per outlet (every item in its feed
at once, as a feed holding weeks of items is on a first run), then stored three ways into fresh
databases, each scored by B-cubed F1 against the gold stories:

  * before: ingest, embed and one cluster run at the clock (what `storyline run` did before the
    catch-up: only the last `window_days` of news, plus context neighbours, are clustered);
  * ours: `storyline run` (`flows.run.run_step`): the same, with articles older than the window
    caught up day by day first;
  * backfill: the same items replayed day by day (`storyline backfill --step 1d`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.feeds_from_set import rss_feeds, score, serve_feeds
from devkit.feed_server import FeedServer
from flows.backfill import replay_step
from flows.cluster import cluster_step
from flows.embed import embed_step
from flows.ingest import ingest_step
from flows.run import run_step
from pipeline.articles.normalise import parse_record_date
from pipeline.settings import load_settings

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", nargs="?", type=Path, default=SHARED / "gedikli")
    args = parser.parse_args(argv)
    path = args.set / "articles.jsonl" if args.set.is_dir() else args.set
    records = [json.loads(line) for line in path.open(encoding="utf-8")]
    records = [r for r in records if parse_record_date(r.get("published_at"))]
    gold = {r["id"]: r["story"] for r in records}
    days = {parse_record_date(r["published_at"]).date() for r in records}
    stories = len(set(gold.values()))
    print(f"{path.parent.name}: {len(records)} dated articles over {len(days)} days, {stories} gold stories")
    results = {}
    with FeedServer() as srv, tempfile.TemporaryDirectory(prefix="storyline-first-run-") as tmp:
        work = Path(tmp)
        serve_feeds(srv, rss_feeds(records), work / "sources.toml")
        for way in ("before", "ours", "backfill"):
            settings = load_settings(db=work / f"{way}.duckdb", sources=work / "sources.toml")
            started = time.perf_counter()
            if way == "ours":
                run_step(settings)
            else:
                ingest_step(settings, progress=False)
                embed_step(settings)
                if way == "before":
                    cluster_step(settings)
                else:
                    replay_step(settings, step=timedelta(days=1), progress=False)
            results[way] = (*score(settings.db, gold), time.perf_counter() - started)
    print(f"\n{'how':10s} {'B3-F1':>6s} {'without a story':>16s} {'stored':>7s} {'seconds':>8s}")
    for way, (f1, alone, stored, seconds) in results.items():
        print(f"{way:10s} {f1:6.3f} {alone:16d} {stored:7d} {seconds:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
