"""Digest: the day's stories as HTML and Markdown files, published as a Prefect artifact."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from flows.briefing import briefs_as_of
from flows.shared import database, recorded_run
from pipeline.digest.html_page import render_html
from pipeline.digest.markdown_page import render_markdown
from pipeline.digest.rank import (
    DigestArticle,
    DigestHeader,
    DigestStory,
    RankedStory,
    in_category,
    main_language,
    rank_stories,
)
from pipeline.digest.wording import digest_basename
from pipeline.embed.select import encoder_for
from pipeline.settings import ConfigError, Settings
from pipeline.stories.topics import match_topics, topic_text
from storage import digest as digest_store
from storage import embeddings as embedding_store
from storage import sources as source_store
from storage.convert import utcnow
from storage.db import StorageError
from storage.files import write_atomically

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection


@dataclass
class DigestResult:
    day: date
    stories: int
    html_path: Path
    markdown_path: Path
    markdown: str


def _day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=zone)
    return start, start + timedelta(days=1)


def build_stories(rows: list[digest_store.DigestRow]) -> list[DigestStory]:
    stories: dict[str, DigestStory] = {}
    for r in rows:
        story = stories.get(r.story_id)
        if story is None:
            story = stories[r.story_id] = DigestStory(
                story_id=r.story_id, headline=r.headline or r.title, keywords=r.keywords,
                first_seen=r.first_seen, articles=[],
            )  # fmt: skip
        story.articles.append(
            DigestArticle(
                article_id=r.article_id,
                title=r.title,
                source=r.source,
                url=r.url,
                published_at=r.effective_at,
                is_duplicate=r.is_duplicate,
                summary=r.summary,
                language=r.language,
                category=r.category,
            )
        )
    return list(stories.values())


def tag_topics(con: object, settings: Settings, stories: list[DigestStory]) -> None:
    topics = settings.digest.topics
    if not topics or not stories:
        return
    # The articles' own encoder, so topic and story vectors are comparable.
    vectors = encoder_for(settings.embed).encode(
        [topic_text(t.name, t.description) for t in topics], max_tokens=256
    )
    centroids = embedding_store.story_centroids(con, settings.embed.model, [s.story_id for s in stories])  # type: ignore[arg-type]
    tags = match_topics(
        centroids,
        {t.name: vectors[i] for i, t in enumerate(topics)},
        {t.name: t.threshold for t in topics},
    )
    for s in stories:
        s.topics = tags.get(s.story_id, [])


def check_category(category: str, known: list[str]) -> None:
    """A category no source has (nor a folder inside it) is a mistake, not an empty digest."""
    if not any(in_category(k, category) for k in known):
        names = ", ".join(known) or "none: give sources a `category` in the sources file"
        raise ConfigError(f"unknown source category {category!r} (known: {names})")


def day_before_today(settings: Settings) -> date:
    """The complete day before today in the digest's timezone (what the daily schedule reports)."""
    return utcnow().astimezone(ZoneInfo(settings.digest.timezone)).date() - timedelta(days=1)


def artifact_key(result: DigestResult, topic: str | None) -> str:
    """The key the digest is published under as a Prefect artifact (lower case and dashes)."""
    key = "daily-digest" if not topic else digest_basename(result.day, topic).replace(f"-{result.day}", "")
    return key.lower()


def digest_step(
    settings: Settings, *, day: date | None = None, topic: str | None = None, out_dir: Path | None = None
) -> DigestResult:
    """Render the digest of ``day`` (default: the latest day with news) to files."""
    zone = ZoneInfo(settings.digest.timezone)
    if topic and topic not in {t.name for t in settings.digest.topics}:
        known = ", ".join(t.name for t in settings.digest.topics) or "none configured"
        raise ConfigError(f"unknown watch topic {topic!r} (known: {known})")
    if not Path(settings.db).exists():
        raise StorageError(
            f"database {settings.db} does not exist yet (run `storyline run` or `import` first)"
        )
    if settings.digest.category is not None:
        with database(settings, read_only=True) as con:
            check_category(settings.digest.category, source_store.categories(con))
    with recorded_run(settings, "digest") as run:
        result = _render(settings, zone, day=day, topic=topic, out_dir=out_dir)
        run.stats = {"day": result.day.isoformat(), "topic": topic, "stories": result.stories}
        run.stats["category"] = settings.digest.category
        run.stats["html"] = str(result.html_path)
    return result


def compose_digest(
    con: DuckDBPyConnection,
    settings: Settings,
    zone: ZoneInfo,
    *,
    day: date | None,
    topic: str | None,
    tag: Callable[[DuckDBPyConnection, Settings, list[DigestStory]], None] | None = None,
    category: str | None = None,
) -> tuple[DigestHeader, list[RankedStory]]:
    """The digest's header and ranked stories, read on ``con`` (files and the web app alike);
    ``category`` (the web app's filter) replaces ``digest.category`` when given."""
    if day is None:
        latest = digest_store.latest_day_start(con, utcnow())
        day = (latest or utcnow()).astimezone(zone).date()
    start, end = _day_bounds(day, zone)
    category = category or settings.digest.category
    stories = build_stories(digest_store.stories_of_day(con, start, end))
    briefs = briefs_as_of(con, [s.story_id for s in stories], end=end, timezone=settings.digest.timezone)
    for s in stories:
        s.brief = briefs.get(s.story_id)
    figures = digest_store.day_figures(con, start, end)
    (tag or tag_topics)(con, settings, stories)
    limit = settings.digest.top_stories
    ranked = rank_stories(stories, day, zone, topic=topic, category=category, limit=limit)
    header = DigestHeader(
        day=day, sources_total=figures.sources_total, sources_ok=figures.sources_ok,
        sources_failed=figures.sources_failed, articles_in=figures.articles_in, generated_at=utcnow(),
        topic=topic, timezone=settings.digest.timezone, category=category, language=main_language(ranked),
    )  # fmt: skip
    return header, ranked


def _render(
    settings: Settings, zone: ZoneInfo, *, day: date | None, topic: str | None, out_dir: Path | None
) -> DigestResult:
    with database(settings, read_only=True) as con:
        header, ranked = compose_digest(con, settings, zone, day=day, topic=topic)
    day, category = header.day, header.category
    out = Path(out_dir or settings.digest.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = digest_basename(day, topic, category)
    markdown = render_markdown(header, ranked)
    html_path, md_path = out / f"{stem}.html", out / f"{stem}.md"
    # A reader never sees half a digest.
    for path, text in ((html_path, render_html(header, ranked)), (md_path, markdown)):
        write_atomically(path, text)
    return DigestResult(
        day=day, stories=len(ranked), html_path=html_path, markdown_path=md_path, markdown=markdown
    )
