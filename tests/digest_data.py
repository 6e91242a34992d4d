"""Builders for digest tests: articles, stories and headers on a fixed day."""

from __future__ import annotations

from datetime import UTC, date, datetime

from pipeline.digest.rank import DigestArticle, DigestHeader, DigestStory

DAY = date(2024, 5, 13)
_ids = iter(range(1, 1_000_000))


def at(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def art(
    source: str,
    when: datetime,
    *,
    dup: bool = False,
    title: str | None = None,
    url: str | None = "",
    summary: str | None = None,
) -> DigestArticle:
    n = next(_ids)
    link = f"https://{source.lower().replace(' ', '')}.example/news/{n}" if url == "" else url
    return DigestArticle(
        article_id=f"art-{n}",
        title=title or f"{source} report {n}",
        source=source,
        url=link,
        published_at=when,
        is_duplicate=dup,
        summary=summary,
    )


def story(
    story_id: str,
    articles: list[DigestArticle],
    *,
    headline: str | None = None,
    first_seen: datetime | None = None,
    keywords: list[str] | None = None,
    topics: list[str] | None = None,
) -> DigestStory:
    return DigestStory(
        story_id=story_id,
        headline=headline or f"Headline of {story_id}",
        keywords=keywords or ["alpha", "beta"],
        first_seen=first_seen or min(a.published_at for a in articles),
        articles=articles,
        topics=topics or [],
    )


def header(**changes: object) -> DigestHeader:
    values: dict[str, object] = {
        "day": DAY,
        "sources_total": 12,
        "sources_ok": 11,
        "sources_failed": 1,
        "articles_in": 57,
        "generated_at": at(DAY, 7),
    }
    values.update(changes)
    return DigestHeader(**values)  # type: ignore[arg-type]
