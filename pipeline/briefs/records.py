"""The plain data of story briefs: what a brief is built from, and what it is."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime


@dataclass(frozen=True)
class BriefArticle:
    """One member article of a story, as a brief reads it."""

    article_id: str
    source: str
    title: str
    text: str
    published_at: datetime
    # A syndicated / near-identical copy of another outlet's article: never quoted, never counted.
    is_duplicate: bool = False


@dataclass(frozen=True)
class BriefSentence:
    """A sentence quoted in a brief, attributed to the article (and outlet) it comes from."""

    text: str
    article_id: str
    source: str
    published_at: datetime


@dataclass(frozen=True)
class Brief:
    story_id: str
    # 2–4 central, non-redundant sentences (fewer only when the story has fewer to offer).
    sentences: list[BriefSentence]
    # The story's latest day (in the configured time zone) and what its articles of that day
    # said that earlier coverage had not; empty for a story that began that day.
    new_day: date | None = None
    new_sentences: list[BriefSentence] = field(default_factory=list)
    # Members when the brief was built (wire copies included).
    article_count: int = 0
