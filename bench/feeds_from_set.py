"""A dated labelled set as feeds: one RSS feed per outlet, served over loopback HTTP and listed in a
sources file; and a stored run scored against the set's gold stories.

Shared by bench/first_run.py and bench/fulltext.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import duckdb

from bench.metrics import bcubed
from devkit.feed_server import FeedServer
from pipeline.articles.normalise import parse_record_date
from pipeline.feeds.sources_merge import sources_toml
from pipeline.records import Source


def rss_feeds(
    records: list[dict],
    *,
    text: Callable[[dict], str] = lambda r: r["text"] or "",
    link: Callable[[int, dict], str] | None = None,
) -> dict[str, str]:
    """One RSS document per outlet (a record's ``source``), every item of the outlet in it.

    ``text``: an item's description from its record (the set's text by default); ``link``: an
    item's link from its position in ``records`` and its record (no link by default).
    """
    by_outlet: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    for k, r in enumerate(records):
        by_outlet[r["source"] or "unknown"].append((k, r))
    out = {}
    for outlet, items in by_outlet.items():
        xml = "".join(
            f'<item><guid isPermaLink="false">{escape(r["id"])}</guid>'
            f"<title>{escape(r['title'] or '')}</title>"
            + (f"<link>{escape(link(k, r))}</link>" if link else "")
            + f"<pubDate>{format_datetime(parse_record_date(r['published_at']))}</pubDate>"
            f"<description>{escape(text(r))}</description></item>"
            for k, r in items
        )
        channel = f"<channel><title>{escape(outlet)}</title>{xml}</channel>"
        out[outlet] = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0">{channel}</rss>'
    return out


def serve_feeds(
    srv: FeedServer, feeds: dict[str, str], sources: Path, *, prefix: str = "", fulltext: bool | None = None
) -> None:
    """Serve each outlet's feed at ``{prefix}/feed-{k}.xml`` and write a sources file listing them,
    outlets in name order (``fulltext``: each source's own `fulltext` setting)."""
    listed = []
    for k, (outlet, xml) in enumerate(sorted(feeds.items())):
        srv.route(f"{prefix}/feed-{k}.xml", xml)
        listed.append(Source(name=outlet, url=srv.url(f"{prefix}/feed-{k}.xml"), fulltext=fulltext))
    sources.write_text(sources_toml(listed), encoding="utf-8")


def score(db: Path, gold: dict[str, str]) -> tuple[float, int, int]:
    """B-cubed F1 of the stored stories against the gold ones (by guid, the set's id), articles
    without a story, articles stored."""
    sql = "SELECT a.guid, s.story_id FROM articles a LEFT JOIN story_articles s USING (article_id)"
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(sql).fetchall()
    codes: dict[str, int] = {}
    pred = [codes.setdefault(s, len(codes)) if s else -1 for _, s in rows]
    f1 = bcubed([gold[g] for g, _ in rows], pred)[2]
    return f1, sum(1 for p in pred if p < 0), len(rows)
