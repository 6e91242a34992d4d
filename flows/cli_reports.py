"""What the step commands print: one summary line per step, problems per source or line."""

from __future__ import annotations

import sys
from typing import Any


def print_ingest(report: Any) -> None:
    print(
        f"sources: {report.sources_total} ({report.sources_ok} new content, "
        f"{report.sources_unchanged} unchanged, {report.sources_failed} failed)"
    )
    for name, why in sorted(report.failures.items()):
        print(f"  failed: {name}: {why}")
    for name, until in sorted(report.deferred.items()):
        print(f"  deferred: {name}: the server asked us to wait until {until:%Y-%m-%d %H:%M} UTC (--force)")
    print(f"new articles: {report.new_articles} ({report.duplicates} syndicated copies)")


def print_cluster(report: Any, catch_up: Any = None) -> None:
    if catch_up is not None and catch_up.steps:
        print(
            f"caught up: {catch_up.steps} daily cluster runs over articles older than the window "
            f"({catch_up.stories} stories born, {catch_up.merges} merges, {catch_up.splits} splits)"
        )
    if report.skipped:
        print("stories: unchanged (no new article since the last cluster run)")
        return
    print(
        f"stories: {report.stories_touched} touched ({report.new_stories} new, {report.merges} merged, "
        f"{report.splits} split); window {report.window_articles} articles, "
        f"{report.unassigned} without a story ({report.unassigned_share:.0%})"
    )


def print_embed(report: Any) -> None:
    via = f" ({report.backend})" if report.backend else ""
    print(f"embedded: {report.embedded}{via}")


def print_line_problems(report: Any) -> None:
    for number, why in list(report.rejected.items())[:10]:
        print(f"  line {number}: {why}", file=sys.stderr)
    for note in report.line_notes():
        print(note, file=sys.stderr)
