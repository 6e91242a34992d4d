"""A story's brief: 2–4 sentences quoted from its articles, and what is new on its latest day.

Extractive by design: every sentence is an outlet's own words, attributed to it, so a brief
can be wrong only in what it chooses, never in what it claims. Wire copies (articles marked
as syndicated) are never quoted and never count as an outlet agreeing: a wire story printed
by twenty papers is one source's reporting. The same sentence printed by two outlets is
quoted once, credited to the earliest.

"What is new today": sentences from the articles of the story's latest day (in the given
time zone) that no earlier article of the story already said (no earlier sentence within
``NOVEL_MAX_COSINE``), chosen by the same centrality and MMR. Deterministic: the same
articles give the same brief, whatever their order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, tzinfo

from pipeline.briefs.records import Brief, BriefArticle, BriefSentence
from pipeline.briefs.select import Candidate, centrality, mmr, sentence_matrix, similarities
from pipeline.briefs.sentences import quotable, split_sentences

BRIEF_SENTENCES = 4
BRIEF_CHARS = 700
NEW_SENTENCES = 3
NEW_CHARS = 500
# An earlier sentence this similar already said it.
NOVEL_MAX_COSINE = 0.5

_WORDS = re.compile(r"\w+")


def build_brief(story_id: str, articles: Sequence[BriefArticle], zone: tzinfo = UTC) -> Brief:
    """The brief of one story from all its member articles (wire copies included)."""
    members = sorted(articles, key=lambda a: (_utc(a.published_at), a.article_id))
    if not members:
        return Brief(story_id=story_id, sentences=[])
    quoted = [a for a in members if not a.is_duplicate] or members
    candidates, origin = _candidates(quoted)
    latest = max(_day(a, zone) for a in members)
    earlier_texts = [s for a in members if _day(a, zone) < latest for s in split_sentences(a.text)]
    vectors_all = sentence_matrix([c.text for c in candidates] + earlier_texts)
    vectors = vectors_all[: len(candidates)]
    sims = similarities(vectors)
    scores = centrality(candidates, vectors, sims)
    chosen = mmr(candidates, sims, scores, limit=BRIEF_SENTENCES, max_chars=BRIEF_CHARS)

    def sentence(i: int) -> BriefSentence:
        a = origin[i]
        return BriefSentence(candidates[i].text, a.article_id, a.source, a.published_at)

    new: list[BriefSentence] = []
    if earlier_texts:
        latest_rows = [i for i, a in enumerate(origin) if _day(a, zone) == latest and i not in chosen]
        # Each latest-day sentence's best cosine to any earlier sentence, in one sparse product.
        said = (vectors_all[len(candidates) :] @ vectors[latest_rows].T).toarray()
        best_earlier = said.max(axis=0, initial=0.0)
        novel = [i for i, b in zip(latest_rows, best_earlier.tolist(), strict=True) if b < NOVEL_MAX_COSINE]
        picked = mmr(candidates, sims, scores, limit=NEW_SENTENCES, max_chars=NEW_CHARS, allowed=novel)
        new = [sentence(i) for i in picked]
    return Brief(
        story_id=story_id,
        sentences=[sentence(i) for i in chosen],
        new_day=latest,
        new_sentences=new,
        article_count=len(members),
    )


def _candidates(articles: Sequence[BriefArticle]) -> tuple[list[Candidate], list[BriefArticle]]:
    """Quotable sentences of the given articles, each once (the earliest outlet keeps it)."""
    candidates: list[Candidate] = []
    origin: list[BriefArticle] = []
    seen: set[str] = set()
    for rank, a in enumerate(articles):
        for position, text in enumerate(split_sentences(a.text)):
            key = " ".join(_WORDS.findall(text.casefold()))
            if not quotable(text) or key in seen:
                continue
            seen.add(key)
            candidates.append(Candidate(text, a.source, position, (rank, position)))
            origin.append(a)
    if not candidates:
        # Headlines only (a story of teasers): the best-covered headline is still a summary.
        for rank, a in enumerate(articles):
            key = " ".join(_WORDS.findall(a.title.casefold()))
            if key and key not in seen:
                seen.add(key)
                candidates.append(Candidate(a.title, a.source, 0, (rank, 0)))
                origin.append(a)
    return candidates, origin


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _day(article: BriefArticle, zone: tzinfo) -> date:
    return _utc(article.published_at).astimezone(zone).date()
