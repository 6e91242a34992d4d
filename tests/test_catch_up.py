"""A first run over feeds that hold weeks of items gives the old items stories as a backfill would.

The window covers the last `cluster.window_days` of news; articles older than that which arrive
in one run (a first run, a source added with its archive) are clustered day by day from the
oldest of them, each day with the clock at its end, before the run at the clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from devkit.feed_server import FeedServer
from flows.backfill import replay_step
from flows.embed import embed_step
from flows.ingest import ingest_step
from flows.run import run_step
from tests.builders import FLOOD_REPORTS, RATE_RISE_REPORTS, query, rss, rss_item, write_sources

pytestmark = pytest.mark.slow

NEWEST = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
# Three weeks before the newest news: far outside a four-day window.
OLD = NEWEST - timedelta(days=21)


def _feeds(srv: FeedServer, tmp_path: Path) -> Path:
    urls = {}
    for k, (flood, rates) in enumerate(zip(FLOOD_REPORTS, RATE_RISE_REPORTS, strict=True)):
        items = []
        for label, text, when in (("flood", flood, OLD), ("rates", rates, NEWEST)):
            title, body = text.split(". ", 1)
            date = format_datetime(when + timedelta(hours=k))
            items.append(rss_item(f"{label}-{k}", title, body, date=date))
        srv.route(f"/outlet-{k}.xml", rss(*items, title=f"Outlet {k}"))
        urls[f"Outlet {k}"] = srv.url(f"/outlet-{k}.xml")
    return write_sources(tmp_path / "sources.toml", urls)


def _stories(db: Path) -> dict[str, str | None]:
    rows = query(
        db,
        "SELECT a.guid, s.story_id FROM articles a LEFT JOIN story_articles s USING (article_id)",
    )
    return {guid: story for guid, story in rows}


def _partition(stories: dict[str, str | None]) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for article, story in stories.items():
        groups.setdefault(story or f"alone:{article}", set()).add(article)
    return {frozenset(g) for g in groups.values()}


def test_old_items_of_a_first_run_get_stories_as_a_backfill_gives_them(
    tmp_path: Path, make_settings, feed_server: FeedServer
) -> None:
    sources = _feeds(feed_server, tmp_path)
    live = make_settings(sources=sources, db=tmp_path / "live.duckdb")
    report = run_step(live)
    assert report.catch_up.steps > 0, "articles three weeks older than the window were not caught up"
    stories = _stories(live.db)
    floods = {stories[f"flood-{k}"] for k in range(3)}
    rates = {stories[f"rates-{k}"] for k in range(3)}
    assert len(floods) == 1 and None not in floods, "the old story has no story ID"
    assert len(rates) == 1 and None not in rates and floods != rates

    # The same items stored, then replayed day by day as `storyline backfill` does.
    archive = make_settings(sources=sources, db=tmp_path / "backfill.duckdb")
    ingest_step(archive, progress=False)
    embed_step(archive)
    replay_step(archive, step=timedelta(days=1), progress=False)
    assert _partition(stories) == _partition(_stories(archive.db))

    # Nothing new: the next run catches up nothing.
    assert run_step(live).catch_up.steps == 0
