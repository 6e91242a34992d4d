"""The `storyline` command line's grammar: commands, options, and the checks on their values."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path

from flows.cli_reading_parser import add_reading_commands

# Dates a news archive can hold; far outside them date arithmetic overflows (year 1, year 9999).
FIRST_YEAR, LAST_YEAR = 1900, 2999


def _in_range(value: str, year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise argparse.ArgumentTypeError(f"{value!r} is out of range (years {FIRST_YEAR}–{LAST_YEAR})")


def _parse_when(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date or datetime: {value!r}") from exc
    _in_range(value, parsed.year)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_day(value: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from exc
    _in_range(value, day.year)
    return day


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from exc
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {number}")
    return number


def _common(p: argparse.ArgumentParser, *, sources: bool = False) -> None:
    p.add_argument("--db", help="DuckDB file (default: storyline.duckdb, or $STORYLINE_DB)")
    if sources:
        p.add_argument("--sources", help="sources TOML file (default: sources.toml, or $STORYLINE_SOURCES)")


def _fetch_options(p: argparse.ArgumentParser) -> None:
    _common(p, sources=True)
    p.add_argument(
        "--due-only", action="store_true", help="fetch only sources whose next fetch time has come"
    )
    p.add_argument(
        "--force", action="store_true", help="fetch sources whose server asked us to wait (Retry-After) too"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storyline",
        description=(
            "Fetch news feeds, cluster articles into stories that keep their IDs, query them with SQL."
        ),
        epilog="Exit codes: 0 done, 1 step failed, 2 bad usage or configuration, 3 database unavailable.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show step and Prefect logs, and tracebacks of errors"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="one full pass: ingest, embed, cluster; prints a summary")
    _fetch_options(p)
    p = sub.add_parser("ingest", help="fetch sources and store new articles")
    _fetch_options(p)
    p = sub.add_parser("embed", help="embed articles that have no vector for the configured model")
    _common(p)
    p = sub.add_parser(
        "cluster",
        help="cluster the active window and update stories (embeds articles that lack a vector first)",
    )
    _common(p)
    p.add_argument("--as-of", type=_parse_when, help="run with the clock set to this moment (ISO datetime)")

    p = sub.add_parser("import", help="load articles from a JSON Lines file without fetching")
    p.add_argument("file", type=Path, help="JSON Lines: id, source, url, published_at, title, text per line")
    _common(p)
    p = sub.add_parser("backfill", help="import an archive and replay clustering step by step, as live")
    p.add_argument("file", type=Path)
    p.add_argument("--step", default="1d", help="clock step between cluster runs, e.g. 6h, 1d (default 1d)")
    _common(p)

    p = sub.add_parser("stories", help="list current stories, most recent and largest first")
    _common(p)
    p.add_argument("--limit", type=_positive_int, default=20, help="how many stories (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p = sub.add_parser("sql", help="run a read-only SQL query and print the result")
    p.add_argument("query", help='e.g. "SELECT * FROM story_summary LIMIT 5"')
    _common(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true")
    fmt.add_argument("--json", action="store_true")
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="stop the query after this long (default: the sql.timeout_s setting, 30 s); "
        "writers wait for readers, so keep it short",
    )
    p = sub.add_parser(
        "sources",
        help="health of every source (failing since when, why, next attempt); import/export OPML",
        description="Without an action: the health of every source. `import FILE.opml` adds an OPML "
        "file's feeds to the sources file; `export` writes the sources file as OPML.",
    )
    p.add_argument("action", nargs="?", choices=["import", "export"], help="import or export OPML")
    p.add_argument("file", nargs="?", type=Path, help="the OPML file to import")
    _common(p, sources=True)
    p.add_argument("--json", action="store_true")
    p.add_argument("--into", type=Path, help="import: the sources file to add to (default: --sources)")
    p.add_argument("--opml", type=Path, help="export: write OPML to this file (default: standard output)")

    p = sub.add_parser("digest", help="write the daily digest (HTML + Markdown)")
    _common(p)
    p.add_argument("--date", type=_parse_day, help="day to report (default: today, in the digest timezone)")
    p.add_argument("--topic", help="only stories of this watch topic")
    p.add_argument("--category", help="only stories with an article from a source of this category")
    p.add_argument("--out", type=Path, help="output folder (default: digests/)")
    p = sub.add_parser("export", help="write every table and view as Parquet for long analysis")
    p.add_argument("dir", type=Path)
    _common(p)
    p = sub.add_parser("serve", help="run the ingest, cluster and digest schedules until stopped")
    _common(p, sources=True)
    add_reading_commands(sub, _common, _parse_day)
    return parser
