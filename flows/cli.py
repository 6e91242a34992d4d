"""The `storyline` command line.

Exit codes: 0 done (a run whose sources partly failed is still done: failures
are recorded); 1 the step itself failed; 2 bad usage or configuration;
3 the database could not be opened (locked past the wait, not writable, not a
DuckDB file) or a query was refused or stopped at its limit; 130 stopped by a
signal (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from flows.cli_parser import build_parser
from flows.cli_reading import cmd_feed, cmd_search, cmd_web
from flows.cli_reports import print_cluster, print_embed, print_ingest, print_line_problems
from flows.runtime import configure_environment

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DB = 0, 1, 2, 3


def _settings(args: argparse.Namespace) -> Any:
    from pipeline.settings import load_settings

    return load_settings(db=getattr(args, "db", None), sources=getattr(args, "sources", None))


def cmd_run(args: argparse.Namespace) -> int:
    settings = args.settings
    if args.prefect:
        from flows.prefect_flows import run_flow

        report = run_flow(settings, due_only=args.due_only, force=args.force)
    else:
        from flows.run import run_step

        report = run_step(settings, due_only=args.due_only, force=args.force)
    print_ingest(report.ingest)
    print_embed(report.embed)
    print_cluster(report.cluster, report.catch_up)
    return EXIT_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    settings = args.settings
    if args.prefect:
        from flows.prefect_flows import ingest_flow

        report = ingest_flow(settings, due_only=args.due_only, force=args.force)
    else:
        from flows.ingest import ingest_step

        report = ingest_step(settings, due_only=args.due_only, force=args.force)
    print_ingest(report)
    return EXIT_OK


def cmd_embed(args: argparse.Namespace) -> int:
    if args.prefect:
        from flows.prefect_flows import embed_flow

        report = embed_flow(args.settings)
    else:
        from flows.embed import embed_step

        report = embed_step(args.settings)
    via = f", {report.backend}" if report.backend else ""
    print(f"embedded: {report.embedded} articles with {report.model}{via}")
    return EXIT_OK


def cmd_cluster(args: argparse.Namespace) -> int:
    if args.prefect:
        from flows.prefect_flows import embed_and_cluster_flow

        result = embed_and_cluster_flow(args.settings, as_of=args.as_of)
    else:
        from flows.run import embed_and_cluster_step

        result = embed_and_cluster_step(args.settings, as_of=args.as_of)
    print_cluster(result.cluster, result.catch_up)
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from flows.importer import import_step

    report = import_step(args.settings, args.file)
    print(
        f"lines: {report.lines}, imported: {report.imported}, already stored: {report.already_stored}, "
        f"syndicated copies: {report.duplicates}, rejected: {len(report.rejected)}, "
        f"undated: {report.undated.count}, invalid UTF-8: {report.invalid_utf8.count}, "
        f"cut: {report.cut.count}"
    )
    print_line_problems(report)
    return EXIT_OK if report.lines == 0 or len(report.rejected) < report.lines else EXIT_FAILED


def cmd_backfill(args: argparse.Namespace) -> int:
    from flows.backfill import backfill_step, parse_step

    try:
        step = parse_step(args.step)
    except ValueError as exc:
        print(f"storyline: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report = backfill_step(args.settings, args.file, step=step)
    print(
        f"imported {report.imported.imported if report.imported else 0} articles; "
        f"{report.steps} cluster steps; "
        f"{report.stories} stories born, {report.merges} merges, {report.splits} splits"
    )
    if report.imported:
        print_line_problems(report.imported)
    return EXIT_OK


def cmd_stories(args: argparse.Namespace) -> int:
    from flows.output import print_json, print_table
    from flows.shared import database
    from storage.stories import stories_listing

    settings = args.settings
    with database(settings, read_only=True) as con:
        rows = stories_listing(con, args.limit)
    columns = ["story_id", "headline", "article_count", "independent_source_count", "first_seen", "last_seen"]
    if args.json:
        print_json(list(rows[0]) if rows else columns, [list(r.values()) for r in rows])
    else:
        print_table(
            ["story", "headline", "articles", "sources", "first seen", "last seen"],
            [[r[c] for c in columns] for r in rows],
        )
    return EXIT_OK


def cmd_sql(args: argparse.Namespace) -> int:
    from flows.output import TABLE_MAX_ROWS, print_rows
    from storage.query import QueryLimits, stream_readonly

    settings = args.settings
    try:
        # Limits from the [sql] settings section where there is one (timeout_s, memory_limit, max_temp_size).
        limits = QueryLimits.from_settings(
            settings.sql,
            timeout_s=args.timeout,
            timeout_hint="sql timeout; allow longer with --timeout SECONDS or the sql.timeout_s setting",
            memory_hint="settings sql.memory_limit and sql.max_temp_size",
        )
    except ValueError as exc:
        print(f"storyline: {exc}", file=sys.stderr)
        return EXIT_USAGE
    fmt = "csv" if args.csv else "json" if args.json else "table"
    # Rows are printed as they are read; leaving the block (done, Ctrl-C, a closed pipe) ends the query.
    with stream_readonly(settings.db, args.query, lock_wait_s=settings.lock_wait_s, limits=limits) as result:
        print_rows(result.columns, result.rows(), fmt=fmt, table_max_rows=TABLE_MAX_ROWS)
    return EXIT_OK


def cmd_sources(args: argparse.Namespace) -> int:
    if args.action is not None:
        return _sources_opml(args)
    from flows.output import print_json, print_table
    from flows.shared import database
    from storage.sources import source_health

    settings = args.settings
    with database(settings, read_only=True) as con:
        rows = source_health(con)
    columns = ["name", "health", "consecutive_failures", "failing_since", "last_error", "next_fetch_at"]
    if args.json:
        print_json(list(rows[0]) if rows else columns, [list(r.values()) for r in rows])
    else:
        print_table(columns, [[r[c] for c in columns] for r in rows])
    return EXIT_OK


def _sources_opml(args: argparse.Namespace) -> int:
    from flows.sources_command import export_opml, import_opml, print_import

    sources_file = Path(args.settings.sources)
    if args.action == "import":
        if args.file is None:
            print("storyline: usage: storyline sources import FILE.opml", file=sys.stderr)
            return EXIT_USAGE
        print_import(import_opml(args.file, args.into or sources_file))
        return EXIT_OK
    if args.file is not None:
        print(f"storyline: sources export takes no file argument (use --opml {args.file})", file=sys.stderr)
        return EXIT_USAGE
    written, left_out = export_opml(sources_file, args.opml)
    skipped = f"; left out {len(left_out)} local files" if left_out else ""
    # With the OPML on standard output, the count goes to stderr so the output stays one document.
    report = sys.stderr if args.opml is None else sys.stdout
    print(f"exported {written} feeds to {args.opml or 'standard output'}{skipped}", file=report)
    return EXIT_OK


def cmd_digest(args: argparse.Namespace) -> int:
    if args.category is not None:
        # Through the settings, so the Prefect flow and the plain step see it alike.
        args.settings.digest.category = args.category.strip() or None
    if args.prefect:
        from flows.prefect_flows import digest_flow

        result = digest_flow(args.settings, day=args.date, topic=args.topic, out_dir=args.out)
    else:
        from flows.digest import digest_step

        result = digest_step(args.settings, day=args.date, topic=args.topic, out_dir=args.out)
    print(f"digest for {result.day}: {result.stories} stories")
    print(f"  html:     {result.html_path}")
    print(f"  markdown: {result.markdown_path}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from storage.export import export_parquet

    settings = args.settings
    written = export_parquet(settings.db, args.dir, lock_wait_s=settings.lock_wait_s)
    print(f"wrote {len(written)} Parquet files to {args.dir}")
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    from flows.serve import serve

    return serve(args.settings)


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "ingest": cmd_ingest,
    "embed": cmd_embed,
    "cluster": cmd_cluster,
    "import": cmd_import,
    "backfill": cmd_backfill,
    "stories": cmd_stories,
    "sql": cmd_sql,
    "sources": cmd_sources,
    "digest": cmd_digest,
    "export": cmd_export,
    "serve": cmd_serve,
    "web": cmd_web,
    "search": cmd_search,
    "feed": cmd_feed,
}


# Commands that run pipeline steps (and so may run them as Prefect flows).
STEP_COMMANDS = {"run", "ingest", "embed", "cluster", "digest"}


def _prepare(args: argparse.Namespace) -> None:
    """Everything that can be wrong with the configuration surfaces here, before any work starts."""
    from flows.execution import use_prefect
    from pipeline.feeds.sources import load_sources_file

    args.settings = _settings(args)
    if args.command in ("run", "ingest", "serve"):
        load_sources_file(Path(args.settings.sources))
    args.prefect = args.command in STEP_COMMANDS and use_prefect(
        args.settings.embed.runner, args.settings.fetch.runner
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_environment(quiet=not args.verbose)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    from flows.execution import exit_now, stop_on_sigterm
    from pipeline.embed.base import ModelLoadError
    from pipeline.settings import ConfigError
    from storage.db import DatabaseLocked, StorageError

    stop_on_sigterm()
    try:
        _prepare(args)
        code = COMMANDS[args.command](args)
        sys.stdout.flush()
        return code
    except ConfigError as exc:
        print(f"storyline: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (DatabaseLocked, StorageError) as exc:
        print(f"storyline: database error: {exc}", file=sys.stderr)
        return EXIT_DB
    except (ModelLoadError, FileNotFoundError) as exc:
        print(f"storyline: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`storyline stories --json | head`): nothing more to say to anyone.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        recorded = " (the run is recorded as interrupted; nothing half-written)"
        print(f"storyline: interrupted{recorded if args.command in STEP_COMMANDS else ''}", file=sys.stderr)
        exit_now(130)
        return 130
    except Exception as exc:
        if args.verbose:
            raise
        print(f"storyline: {type(exc).__name__}: {exc} (run with -v for details)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
