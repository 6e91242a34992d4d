"""Robustness check: every feed file goes through fetch -> parse -> articles without an exception.

    .venv/bin/python bench/feed_robustness.py [ROOT ...]

ROOT defaults to ../shared/feeds (feedparser's test corpus and captured real-world
feeds). Each file is read with fetch_source (as a local path), parsed with
parse_feed and converted with entries_to_articles. Prints one row per corpus
folder: files, feeds with entries, salvaged with a warning, errors by class,
entries, articles, notes, exceptions, invariant violations. Exits 1 if any step
raised or broke an invariant (failures must always be recorded results).

feedparser's test files declare HTTP headers in their leading comment
("Header: Content-type: ..."); those are passed on as the server would.
"""

from __future__ import annotations

import re
import sys
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.articles.normalise import entries_to_articles
from pipeline.feeds.fetch import fetch_source
from pipeline.feeds.parse import parse_feed
from pipeline.records import Article, FetchState, ParsedFeed, Source
from pipeline.settings import FetchSettings

DEFAULT_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "feeds"
SKIP_NAMES = re.compile(r"^(README|LICENSE|COPYING|_inventory)", re.IGNORECASE)
_HEADER = re.compile(rb"^Header:\s*([\w-]+):\s*(.+?)\s*$", re.MULTILINE)
FETCHED_AT = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Tally:
    files: int = 0
    with_entries: int = 0
    warnings: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    entries: int = 0
    articles: int = 0
    notes: int = 0
    exceptions: int = 0
    violations: int = 0
    seconds: float = 0.0

    def add(self, other: Tally) -> None:
        for name in ("files", "with_entries", "warnings", "entries", "articles", "notes", "exceptions"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.violations += other.violations
        self.seconds += other.seconds
        self.errors.update(other.errors)


def declared_headers(body: bytes) -> dict[str, str]:
    return {m.group(1).decode().lower(): m.group(2).decode("latin-1") for m in _HEADER.finditer(body[:3000])}


def check_invariants(feed: ParsedFeed, articles: list[Article]) -> list[str]:
    problems = []
    if feed.error_class and feed.entries:
        problems.append("error_class set but entries returned")
    if not feed.error_class and feed.error:
        problems.append("error message without error_class")
    if len(articles) > len(feed.entries):
        problems.append("more articles than entries")
    for a in articles:
        if not a.title.strip():
            problems.append(f"article {a.article_id} has no title")
        if a.published_at is not None and a.published_at.tzinfo is None:
            problems.append(f"article {a.article_id} has a naive date")
        if not a.article_id.startswith("a_"):
            problems.append(f"article id {a.article_id!r} malformed")
    return problems


def run_file(path: Path, settings: FetchSettings, tally: Tally, failures: list[str]) -> None:
    tally.files += 1
    started = time.perf_counter()
    try:
        fetched = fetch_source(Source(path.name, str(path)), FetchState(), settings, now=FETCHED_AT)
        if fetched.failed or fetched.body is None:
            tally.errors[f"fetch:{fetched.error_class}"] += 1
            return
        headers = declared_headers(fetched.body)
        feed = parse_feed(
            fetched.body, content_type=headers.get("content-type"), url=headers.get("content-location")
        )
        articles, notes = entries_to_articles(feed, Source(path.name, str(path)), FETCHED_AT)
        tally.entries += len(feed.entries)
        tally.articles += len(articles)
        tally.notes += len(notes)
        if feed.error_class:
            tally.errors[feed.error_class] += 1
        elif feed.entries:
            tally.with_entries += 1
        if feed.warning:
            tally.warnings += 1
        problems = check_invariants(feed, articles)
        if problems:
            tally.violations += 1
            failures.append(f"{path}: {'; '.join(problems)}")
    except Exception:
        tally.exceptions += 1
        failures.append(f"{path}: EXCEPTION\n{traceback.format_exc()}")
    finally:
        tally.seconds += time.perf_counter() - started


def group_of(path: Path, root: Path) -> str:
    parts = path.relative_to(root).parts[:-1]
    # feedparser-tests/tests/wellformed/atom -> feedparser-tests/wellformed
    parts = tuple(p for p in parts if p != "tests")
    return "/".join(parts[:2]) or "."


def main(argv: list[str]) -> int:
    roots = [Path(a) for a in argv] or [DEFAULT_ROOT]
    settings = FetchSettings()
    groups: dict[str, Tally] = defaultdict(Tally)
    failures: list[str] = []
    for root in roots:
        if not root.is_dir():
            print(f"{root} is not a folder", file=sys.stderr)
            return 2
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            if SKIP_NAMES.match(path.name):
                continue
            run_file(path, settings, groups[f"{root.name}/{group_of(path, root)}"], failures)

    total = Tally()
    width = max([len(n) for n in groups] + [len("corpus")])
    header = (
        f"{'corpus':<{width}} {'files':>6} {'feeds':>6} {'warn':>5} {'errors':>6} {'entries':>8} "
        f"{'articles':>8} {'notes':>6} {'exc':>4} {'inv':>4} {'ms/file':>8}"
    )
    print(header)
    print("-" * len(header))
    for name in sorted(groups):
        t = groups[name]
        total.add(t)
        print(_row(name, t, width))
    print("-" * len(header))
    print(_row("TOTAL", total, width))
    print()
    print("errors by class: " + (", ".join(f"{k}={v}" for k, v in total.errors.most_common()) or "none"))
    for failure in failures[:30]:
        print(failure, file=sys.stderr)
    if total.exceptions or total.violations:
        print(
            f"FAILED: {total.exceptions} exceptions, {total.violations} invariant violations", file=sys.stderr
        )
        return 1
    return 0


def _row(name: str, t: Tally, width: int) -> str:
    per_file = 1000 * t.seconds / t.files if t.files else 0.0
    return (
        f"{name:<{width}} {t.files:>6} {t.with_entries:>6} {t.warnings:>5} {sum(t.errors.values()):>6} "
        f"{t.entries:>8} {t.articles:>8} {t.notes:>6} {t.exceptions:>4} {t.violations:>4} {per_file:>8.1f}"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
