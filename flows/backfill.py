"""Backfill: an archive replayed in time order so it ends as live operation would have."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tqdm import tqdm

from flows.cluster import ClusterReport, cluster_step
from flows.embed import embed_step
from flows.importer import ImportReport, import_step
from flows.shared import database
from pipeline.settings import Settings
from storage import runs
from storage.articles import article_time_range, latest_published_at, oldest_arrived_after
from storage.convert import utcnow

_STEP = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_step(text: str) -> timedelta:
    match = _STEP.match(text.lower())
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"invalid --step {text!r}: use a number and a unit m/h/d/w, e.g. 6h or 1d")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def step_boundaries(first: datetime, last: datetime, step: timedelta) -> list[datetime]:
    """Clock times at which a cluster run happens: every step from the first article's day,
    then once at the last article, so the final state covers everything."""
    start = datetime(first.year, first.month, first.day, tzinfo=UTC) if step >= timedelta(days=1) else first
    times = []
    t = start + step
    while t < last:
        times.append(t)
        t += step
    times.append(last)
    return times


@dataclass
class BackfillReport:
    imported: ImportReport | None = None
    steps: int = 0
    stories: int = 0
    merges: int = 0
    splits: int = 0


def replay_step(settings: Settings, *, step: timedelta, progress: bool = True) -> BackfillReport:
    """Cluster the stored articles step by step, the clock at each boundary, as live runs would."""
    with database(settings) as con:
        first, last = article_time_range(con)
    report = BackfillReport()
    if first is None or last is None:
        return report
    boundaries = step_boundaries(first, last, step)
    for as_of in tqdm(boundaries, desc="backfill", unit="step", disable=None if progress else True):
        _add(report, cluster_step(settings, as_of=as_of))
    return report


def catch_up_step(
    settings: Settings, *, as_of: datetime | None = None, progress: bool = True
) -> BackfillReport:
    """Give stories, as a backfill would, to articles older than the window that arrived since the
    last cluster run (a first run over feeds holding weeks of items; a source added with its
    archive): one cluster run per day from the oldest of them, each with the clock at that day's
    end, up to the window the run at the clock covers. Otherwise nothing happens."""
    now = as_of or utcnow()
    with database(settings) as con:
        last = runs.last_ok(con, "cluster")
        oldest = oldest_arrived_after(con, last[0] if last else None)
        end = latest_published_at(con, not_after=now) or now
    report = BackfillReport()
    window_start = end - timedelta(days=settings.cluster.window_days)
    if oldest is None or oldest >= window_start:
        return report
    catch_up = [t for t in step_boundaries(oldest, end, timedelta(days=1)) if t < end]
    for as_of_t in tqdm(catch_up, desc="catching up", unit="day", disable=None if progress else True):
        _add(report, cluster_step(settings, as_of=as_of_t))
    return report


def _add(report: BackfillReport, result: ClusterReport) -> None:
    report.steps += 1
    report.stories += result.new_stories
    report.merges += result.merges
    report.splits += result.splits


def backfill_step(
    settings: Settings, path: Path, *, step: timedelta, imported_at: datetime | None = None
) -> BackfillReport:
    """Import an archive, embed it, then replay clustering over it (see ``replay_step``)."""
    imported = import_step(settings, path, imported_at=imported_at or utcnow())
    embed_step(settings)
    report = replay_step(settings, step=step)
    report.imported = imported
    return report
