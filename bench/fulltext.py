"""Full text behind teasers: how much of the gap between teaser feeds and full-text feeds do the
fetched article pages close?

    .venv/bin/python bench/fulltext.py [--gva-days 40]

For each dated gold set with full text (gedikli; a slice of gva-2013-2015 of the `--gva-days`
busiest consecutive days, since `storyline run` catches up day by day and the whole set spans four
years), served over loopback HTTP as one RSS feed per outlet:

  * teaser: items carry the headline and the text's first sentence only, linking to the article's
    page; full text off;
  * full text: the same feeds with `fulltext = true`: each page (the set's text as paragraphs
    inside page furniture: navigation, cookie banner, share buttons, related links, newsletter box,
    comments, footer; devkit/article_page.py) is fetched and its main text extracted;
  * ceiling: items carry the set's own full text.

Each is stored by `storyline run` (ingest, embed, catch-up, cluster) into a fresh database and
scored by B-cubed F1 against the gold stories. Also: the share of the article's words the stored
page text recovers, the share of stored words that are not the article's (boilerplate leaked, and
of those the page furniture's own vocabulary), and pages per second through the ingest's page
phase (fetch, robots.txt, extraction; 4 threads on 127.0.0.1, no politeness delay).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb

from bench.feeds_from_set import rss_feeds, score, serve_feeds
from devkit.article_page import FURNITURE_WORDS, article_page
from devkit.feed_server import FeedServer
from flows.ingest import ingest_step
from flows.run import embed_and_cluster_step
from pipeline.articles.normalise import first_sentence, parse_record_date
from pipeline.settings import load_settings

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
WAYS = ("teaser", "full text", "opaque pages", "ceiling")
PAGE_WAYS = ("full text", "opaque pages")
# Where each way's feed items link to: semantic pages, or the opaque kind (devkit/article_page.py).
PAGES = {"teaser": "p", "full text": "p", "opaque pages": "o", "ceiling": "p"}
_WORDS = re.compile(r"\w+")
_SENTENCES = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“])")


def load(name: str, days: int | None) -> list[dict]:
    records = [json.loads(line) for line in (SHARED / name / "articles.jsonl").open(encoding="utf-8")]
    records = [
        r for r in records if parse_record_date(r.get("published_at")) and (r.get("text") or "").strip()
    ]
    if days:
        by_day = Counter(parse_record_date(r["published_at"]).date() for r in records)
        start = max(by_day, key=lambda d: sum(by_day.get(d + timedelta(days=k), 0) for k in range(days)))
        end = start + timedelta(days=days)
        records = [r for r in records if start <= parse_record_date(r["published_at"]).date() < end]
    return records


def paragraphs(text: str) -> list[str]:
    """The set's text as page paragraphs: its own line breaks, else about three sentences each."""
    lines = [" ".join(line.split()) for line in text.split("\n") if line.strip()]
    if len(lines) > 1:
        return lines
    sentences = _SENTENCES.split(" ".join(text.split()))
    return [" ".join(sentences[i : i + 3]) for i in range(0, len(sentences), 3)]


def teaser(text: str) -> str:
    return first_sentence(" ".join(text.split()))


def body(text: str, way: str) -> str:
    return text if way == "ceiling" else teaser(text)


def comments(k: int, title: str) -> list[tuple[str, str]]:
    """Reader comments of page ``k``: about its story, so like real ones they differ per page."""
    topic = " ".join(title.split()[:6])
    return [
        (f"reader_{k}", f"Interesting piece on {topic}, but who pays for all this in the end?"),
        (f"sam{k * 7 % 1000}", f"I will believe it when I see it. {topic}? Promises like that never happen."),
        (f"marta.g{k % 13}", f"Thanks for covering {topic}. Would love a follow-up on what happens next."),
    ]


def words(text: str) -> Counter[str]:
    return Counter(w.lower() for w in _WORDS.findall(text))


def text_scores(db: Path, records: list[dict]) -> tuple[float, float, float, int]:
    """Article words recovered, stored words not the article's, of which page furniture; pages used."""
    gold = {r["id"]: words(r["text"]) for r in records}
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT guid, text FROM articles WHERE text_source = 'page'").fetchall()
    hit = total = extra = furniture = stored = 0
    for guid, text in rows:
        got, want = words(text), gold[guid]
        hit += sum((got & want).values())
        total += sum(want.values())
        leaked = got - want
        extra += sum(leaked.values())
        furniture += sum(n for w, n in leaked.items() if w in FURNITURE_WORDS)
        stored += sum(got.values())
    return hit / max(total, 1), extra / max(stored, 1), furniture / max(stored, 1), len(rows)


class PagePhaseTimer(logging.Handler):
    """Reads the page phase's own timing from its log line (flows.fulltext)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seconds = 0.0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("pages:") and isinstance(record.args, tuple):
            self.seconds += float(record.args[-1])


def run_set(name: str, records: list[dict], work: Path) -> dict[str, dict]:
    gold = {r["id"]: r["story"] for r in records}
    days = {parse_record_date(r["published_at"]).date() for r in records}
    print(f"\n{name}: {len(records)} articles over {len(days)} days, {len(set(gold.values()))} gold stories")
    results: dict[str, dict] = {}
    with FeedServer() as srv:
        for k, r in enumerate(records):
            title, parts, when = r["title"] or "", paragraphs(r["text"]), r["published_at"]
            for prefix in ("p", "o"):
                opaque = prefix == "o"
                page = article_page(title, parts, published=when, comments=comments(k, title), opaque=opaque)
                srv.route(f"/{prefix}/{k}.html", page, content_type="text/html; charset=utf-8")
        for way in WAYS:
            feeds = rss_feeds(
                records,
                text=lambda r, way=way: body(r["text"], way),
                link=lambda k, _, way=way: srv.url(f"/{PAGES[way]}/{k}.html"),
            )
            sources = work / f"{name}-{way[0]}.toml"
            serve_feeds(srv, feeds, sources, prefix=f"/{way[0]}", fulltext=True if way in PAGE_WAYS else None)
            settings = load_settings(db=work / f"{name}-{way[0]}.duckdb", sources=sources)
            # Loopback, one host: no politeness pause, several pages at a time.
            settings.fetch.fulltext_delay_s = 0
            settings.fetch.per_host_limit = 8
            settings.fetch.max_workers = 4
            settings.fetch.fulltext_max_pages = 10_000
            timer = PagePhaseTimer()
            page_log = logging.getLogger("storyline.fulltext")
            page_log.setLevel(logging.INFO)
            page_log.addHandler(timer)
            started = time.perf_counter()
            report = ingest_step(settings, progress=False)
            page_log.removeHandler(timer)
            ingest_s = time.perf_counter() - started
            embed_and_cluster_step(settings)
            results[way] = {
                "f1": score(settings.db, gold)[0],
                "ingest_s": ingest_s,
                "pages_s": timer.seconds,
                "total_s": time.perf_counter() - started,
                "pages": report.pages,
                "stored": report.new_articles,
            }
            if way in PAGE_WAYS:
                results[way]["text"] = text_scores(settings.db, records)
            done = results[way]
            print(f"  {way}: B3-F1 {done['f1']:.3f}, {done['total_s']:.0f} s, pages {report.pages}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gva-days", type=int, default=40)
    parser.add_argument("--sets", nargs="+", default=["gedikli", "gva-2013-2015"])
    args = parser.parse_args(argv)
    table = []
    with tempfile.TemporaryDirectory(prefix="storyline-fulltext-") as tmp:
        for name in args.sets:
            records = load(name, args.gva_days if name.startswith("gva") else None)
            table.append((name, len(records), run_set(name, records, Path(tmp))))
    print("\n| set | articles | pages | B3-F1 teaser | full text | ceiling | gap closed "
          "| article words recovered | other words stored (page furniture) | pages/s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, n, res in table:
        teaser_f1, ceiling_f1 = res["teaser"]["f1"], res["ceiling"]["f1"]
        for way in PAGE_WAYS:
            f1 = res[way]["f1"]
            gap = (f1 - teaser_f1) / (ceiling_f1 - teaser_f1) if ceiling_f1 != teaser_f1 else float("nan")
            recovered, leaked, furniture, _ = res[way]["text"]
            fetched = sum(res[way]["pages"].values())
            rate = fetched / max(res[way]["pages_s"], 1e-6)
            kind = "semantic" if way == "full text" else "opaque"
            print(f"| {name} | {n} | {kind} | {teaser_f1:.3f} | {f1:.3f} | {ceiling_f1:.3f} | {gap:.0%} "
                  f"| {recovered:.1%} | {leaked:.1%} ({furniture:.1%}) | {rate:.0f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
