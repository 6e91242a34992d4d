"""The daily digest: which stories mattered on a day, and in what order.

Flows fill the dataclasses below from storage; everything in ``pipeline.digest`` is pure.
This module ranks the stories; ``wording`` words them, ``markdown_page`` and ``html_page``
render them.

Which stories appear: those with at least one article published on the day
(in the digest's time zone). A story first seen that day is **new**; one seen
on an earlier day is **developing**, with the day it started.

Ranking. For each story on the day:

    S_t  distinct outlets with an independent (non-syndicated) article that day
    N_t  independent articles that day
    S    distinct independent outlets over the story's life up to the day
    P    independent articles per earlier day of the story (0 for a new story)

    score = 3·S_t + 2·ln(1 + N_t) + ln(1 + S) + ln(1 + N_t / (1 + P))

Why: separate newsrooms choosing to cover something that day is the best
signal that it matters, so S_t dominates. Article volume counts, but
logarithmically, so one outlet posting ten updates cannot outrank broad
coverage. Overall breadth S gives weight to big stories without letting
yesterday's news bury today's. The last term rewards growth: coverage above
the story's usual daily rate (a new story counts as all growth). Syndicated
copies carry no weight: a wire story in twenty papers is one source's
reporting. Equal scores are ordered by story id so the output is stable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

from pipeline.briefs.records import Brief

Status = Literal["new", "developing"]


# Days of per-day bars shown at most; older coverage is summed into the stats only.
TIMELINE_DAYS = 14
# Earlier articles listed per developing story; the rest is counted.
EARLIER_LIMIT = 15


@dataclass(frozen=True)
class DigestArticle:
    article_id: str
    title: str
    source: str
    url: str | None
    published_at: datetime
    # True for a syndicated / near-identical copy of another outlet's article.
    is_duplicate: bool = False
    summary: str | None = None
    # ISO 639-1 code, configured for its source or detected; None when unknown.
    language: str | None = None
    # The category of the source it came through.
    category: str | None = None


@dataclass
class DigestStory:
    story_id: str
    headline: str
    keywords: list[str]
    first_seen: datetime
    # Every article of the story up to the end of the digest day.
    articles: list[DigestArticle]
    topics: list[str] = field(default_factory=list)
    # The stored brief (pipeline.briefs), when the story has one.
    brief: Brief | None = None


@dataclass(frozen=True)
class DigestHeader:
    day: date
    sources_total: int
    sources_ok: int
    sources_failed: int
    # Articles that came in on the day, over all sources.
    articles_in: int
    generated_at: datetime
    topic: str | None = None
    timezone: str = "UTC"
    category: str | None = None
    # The language most of the digest's articles are in; others are marked with theirs.
    language: str | None = None


@dataclass(frozen=True)
class DayCount:
    day: date
    articles: int
    independent: int


@dataclass
class RankedStory:
    story: DigestStory
    # The digest day these figures are for.
    day: date
    status: Status
    started: date
    score: float
    # Articles published on the digest day, copies included / excluded.
    new_today: int
    new_independent_today: int
    sources_today: int
    # Up to the end of the digest day.
    article_count: int
    independent_count: int
    # Every outlet that carried the story, in order of first coverage.
    outlets: list[str]
    independent_source_count: int
    timeline: list[DayCount]
    articles_today: list[DigestArticle]
    # Earlier articles, newest first.
    earlier_articles: list[DigestArticle]

    @property
    def syndicated_count(self) -> int:
        return self.article_count - self.independent_count


def rank_stories(
    stories: list[DigestStory],
    day: date,
    tz: tzinfo | str = UTC,
    *,
    topic: str | None = None,
    category: str | None = None,
    limit: int | None = None,
) -> list[RankedStory]:
    """Stories with coverage on ``day`` (in ``tz``), most important first.

    ``topic`` keeps only stories tagged with that watch topic; ``category`` only
    stories with an article from a source of that category (or a folder inside
    it); ``limit`` keeps the top stories. Articles published after the day are
    ignored, so a digest for a past day shows that day as it was.
    """
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    ranked: list[RankedStory] = []
    for story in stories:
        if topic is not None and topic not in story.topics:
            continue
        if category is not None and not any(in_category(a.category, category) for a in story.articles):
            continue
        item = _day_stats(story, day, zone)
        if item is not None:
            ranked.append(item)
    ranked.sort(key=lambda r: (-r.score, r.story.story_id))
    return ranked[:limit] if limit is not None else ranked


def _day_stats(story: DigestStory, day: date, zone: tzinfo) -> RankedStory | None:
    def local_day(a: DigestArticle) -> date:
        return local_time(a.published_at, zone).date()

    articles = sorted(
        (a for a in story.articles if local_day(a) <= day),
        key=lambda a: (as_utc(a.published_at), a.source, a.article_id),
    )
    today = [a for a in articles if local_day(a) == day]
    if not today:
        return None
    earlier = [a for a in articles if local_day(a) < day]

    independent = [a for a in articles if not a.is_duplicate]
    independent_today = [a for a in today if not a.is_duplicate]
    started = min([local_time(story.first_seen, zone).date(), local_day(articles[0])])
    status: Status = "new" if started >= day else "developing"

    outlets: list[str] = []
    for a in articles:
        if a.source not in outlets:
            outlets.append(a.source)

    s_today = len({a.source for a in independent_today})
    n_today = len(independent_today)
    s_all = len({a.source for a in independent})
    earlier_days = (day - started).days
    per_day_before = (len(independent) - n_today) / earlier_days if earlier_days > 0 else 0.0
    score = (
        3.0 * s_today
        + 2.0 * math.log1p(n_today)
        + math.log1p(s_all)
        + math.log1p(n_today / (1.0 + per_day_before))
    )

    first_bar = max(started, day - timedelta(days=TIMELINE_DAYS - 1))
    timeline = []
    for offset in range((day - first_bar).days + 1):
        d = first_bar + timedelta(days=offset)
        on_day = [a for a in articles if local_day(a) == d]
        timeline.append(DayCount(d, len(on_day), sum(1 for a in on_day if not a.is_duplicate)))

    return RankedStory(
        story=story,
        day=day,
        status=status,
        started=started,
        score=round(score, 9),
        new_today=len(today),
        new_independent_today=n_today,
        sources_today=s_today,
        article_count=len(articles),
        independent_count=len(independent),
        outlets=outlets,
        independent_source_count=s_all,
        timeline=timeline,
        articles_today=today,
        earlier_articles=list(reversed(earlier)),
    )


def in_category(category: str | None, wanted: str) -> bool:
    """Whether a source's category is ``wanted`` or a folder inside it ("News/World" is in "News"),
    compared ignoring case."""
    if category is None:
        return False
    have, want = category.casefold(), wanted.strip().strip("/").casefold()
    return have == want or have.startswith(want + "/")


def main_language(ranked: list[RankedStory]) -> str | None:
    """The language most articles of the digest are in (ties: alphabetical); None if none is known."""
    counts: dict[str, int] = {}
    for item in ranked:
        for a in (*item.articles_today, *item.earlier_articles):
            if a.language:
                counts[a.language] = counts.get(a.language, 0) + 1
    return min(counts, key=lambda lang: (-counts[lang], lang)) if counts else None


# ---------------------------------------------------------------- safety and wording, for both renderers


def local_time(value: datetime, zone: tzinfo) -> datetime:
    return as_utc(value).astimezone(zone)


def as_utc(value: datetime) -> datetime:
    # Naive times are taken as UTC, the project's storage convention.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
