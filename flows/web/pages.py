"""The data of each page, as plain dicts: the HTML templates render them, the JSON API returns them.

Nothing here escapes or formats for HTML (Jinja2 autoescapes every value in the templates);
links from feeds pass ``safe_url`` (absolute http(s) only) before they reach a page.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flows.digest import compose_digest
from flows.reading import ReadView
from pipeline.briefs.records import Brief
from pipeline.digest.rank import RankedStory, local_time
from pipeline.digest.wording import safe_url, stats_line, status_line
from pipeline.publish.charts import coverage_chart, day_range, sparkline
from storage import briefs as brief_store
from storage import web as web_store
from storage.stories import resolve_story

CHART_DAYS = 21


def _brief(brief: Brief | None, *, new_on: date | None = None) -> dict[str, Any]:
    if brief is None:
        return {"sentences": [], "new_day": None, "new_sentences": []}
    new = brief.new_sentences if new_on is None or brief.new_day == new_on else []
    return {
        "sentences": [
            {"text": s.text, "source": s.source, "article_id": s.article_id} for s in brief.sentences
        ],
        "new_day": brief.new_day if new else None,
        "new_sentences": [{"text": s.text, "source": s.source, "article_id": s.article_id} for s in new],
    }


def _ranked(rank: int, item: RankedStory) -> dict[str, Any]:
    story = item.story
    return {
        "rank": rank,
        "story_id": story.story_id,
        "headline": story.headline,
        "keywords": story.keywords,
        "topics": story.topics,
        "status": item.status,
        "status_line": status_line(item),
        "started": item.started,
        "stats_line": stats_line(item),
        "score": item.score,
        "article_count": item.article_count,
        "independent_source_count": item.independent_source_count,
        "articles_today": item.new_today,
        "outlets": item.outlets,
        "timeline": [
            {"day": d.day, "articles": d.articles, "independent": d.independent} for d in item.timeline
        ],
        "sparkline": sparkline([d.articles for d in item.timeline]),
        "brief": _brief(story.brief, new_on=item.day if item.status == "developing" else date.min),
    }


def front_page(
    view: ReadView, *, day: date | None, topic: str | None, category: str | None = None
) -> dict[str, Any]:
    """The day's top stories, ranked as the digest ranks them (of one source category, if asked)."""
    view.check_topic(topic)
    view.check_category(category)
    zone = ZoneInfo(view.settings.digest.timezone)
    if day is None:
        # The latest day with story coverage (today's first articles may not have a story yet).
        latest = web_store.latest_story_article(view.con)
        day = local_time(latest, zone).date() if latest else None
    header, ranked = compose_digest(
        view.con, view.settings, zone, day=day, topic=topic, tag=view.tag, category=category
    )
    first, last = web_store.news_days(view.con)
    return {
        "day": header.day,
        "previous_day": header.day - timedelta(days=1),
        "next_day": header.day + timedelta(days=1),
        "first_day": local_time(first, zone).date() if first else None,
        "last_day": local_time(last, zone).date() if last else None,
        "topic": topic,
        "topics": [t.name for t in view.settings.digest.topics],
        "category": category,
        "categories": view.categories(),
        "timezone": view.settings.digest.timezone,
        "sources": {"total": header.sources_total, "ok": header.sources_ok, "failed": header.sources_failed},
        "articles_in": header.articles_in,
        "stories": [_ranked(i, item) for i, item in enumerate(ranked, start=1)],
    }


def resolve(view: ReadView, story_id: str) -> str | None:
    """The live story that holds a (possibly retired) story id now; None if unknown."""
    return resolve_story(view.con, story_id)


def story_page(view: ReadView, story_id: str) -> dict[str, Any] | None:
    row = web_store.story_row(view.con, story_id)
    if row is None:
        return None
    zone = ZoneInfo(view.settings.digest.timezone)
    articles = web_store.articles_of(view.con, [story_id])[story_id]
    brief = brief_store.load_briefs(view.con, [story_id]).get(story_id)
    outlets = list(dict.fromkeys(a.source for a in articles))  # in order of first coverage
    days = [local_time(a.published_at, zone).date() for a in articles]
    chart = None
    if articles:
        span = day_range(min(days), max(days), CHART_DAYS)
        shown = [(d, a.source, a.is_duplicate) for d, a in zip(days, articles, strict=True) if d >= span[0]]
        chart = coverage_chart(shown, span, outlets)
    lineage = web_store.lineage_of(view.con, story_id)
    return {
        "story_id": row.story_id,
        "status": row.status,
        "headline": row.headline or row.story_id,
        "keywords": row.keywords,
        "topics": view.topic_tags().get(story_id, []),
        "first_seen": row.first_seen,
        "last_seen": row.last_seen,
        "updated": row.updated,
        "article_count": len(articles),
        "independent_article_count": sum(1 for a in articles if not a.is_duplicate),
        "outlets": outlets,
        "independent_outlets": sorted({a.source for a in articles if not a.is_duplicate}),
        "brief": _brief(brief),
        "chart": chart,
        "articles": [
            {
                "article_id": a.article_id,
                "title": a.title,
                "source": a.source,
                "published_at": a.published_at,
                "local_time": local_time(a.published_at, zone),
                "url": safe_url(a.url),
                "wire_copy": a.is_duplicate,
                "lead": a.lead,
            }
            for a in reversed(articles)
        ],
        "lineage": {
            "merged_from": [{"story_id": s, "headline": h} for s, h in lineage.merged_from],
            "split_from": (
                {"story_id": lineage.split_from[0], "headline": lineage.split_from[1]}
                if lineage.split_from
                else None
            ),
            "split_off": [{"story_id": s, "headline": h} for s, h in lineage.split_off],
        },
        "related": [
            {"story_id": r.story_id, "headline": r.headline, "cosine": round(c, 3), "last_seen": r.last_seen}
            for r, c in view.related(story_id)
        ],
    }


def search_page(view: ReadView, query: str, *, since: date | None, until: date | None) -> dict[str, Any]:
    hits = view.search(query, since=since, until=until, limit=view.settings.web.page_stories) if query else []
    return {
        "query": query,
        "since": since,
        "until": until,
        "results": [
            {
                "story_id": row.story_id,
                "headline": row.headline,
                "keywords": row.keywords,
                "score": hit.score,
                "cosine": hit.cosine,
                "word_share": hit.word_share,
                "article_count": row.article_count,
                "first_seen": row.first_seen,
                "last_seen": row.last_seen,
            }
            for hit, row in hits
        ],
    }


def sources_page(view: ReadView, *, history: int = 12) -> dict[str, Any]:
    return {"sources": web_store.sources_with_history(view.con, history)}
