"""Refresh the headline and keywords of stories whose membership changed materially."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import duckdb

from pipeline.stories.labels import (
    clashing,
    ctfidf_keywords,
    needs_relabel,
    representative_index,
    unique_headlines,
)
from storage import labels as label_store


def relabel_stories(con: duckdb.DuckDBPyConnection, model: str, story_ids: Sequence[str]) -> int:
    """Label what needs it among ``story_ids``, keeping live headlines unique; returns how many."""
    todo = [
        s
        for s in label_store.label_inputs(con, model, story_ids)
        if s.headline is None or needs_relabel(s.labelled_count or 0, s.article_count)
    ]
    if not todo:
        return 0
    oldest = min(min(s.published) for s in todo)
    docs, languages = label_store.contrast_docs(con, oldest - timedelta(days=7))
    docs.update({s.story_id: s.docs for s in todo})
    languages.update({s.story_id: s.languages or [] for s in todo})
    chosen = {}
    for s in todo:
        i = representative_index(s.vectors, s.published, s.is_duplicate)
        chosen[s.story_id] = (s.titles[i], s.article_ids[i])
    current = label_store.live_labels(con)
    candidates = {sid: label.headline for sid, label in current.items()}
    candidates.update({sid: title for sid, (title, _) in chosen.items()})
    # Keywords are scored for the stories relabelled and those whose headline clashes (told apart by
    # a keyword); every other story still counts as a class to stand out against.
    # Each article's own stop words: a German article's "der" and "und" are no keywords.
    keywords = ctfidf_keywords(docs, languages=languages, only=set(chosen) | clashing(candidates))
    first_seen = {sid: label.first_seen for sid, label in current.items()}
    first_seen.update({s.story_id: min(s.published) for s in todo})
    all_keywords = {sid: label.keywords for sid, label in current.items()} | keywords
    unique = unique_headlines(candidates, keywords=all_keywords, first_seen=first_seen)
    updates: dict[str, tuple[str, str | None, list[str], int | None]] = {}
    for s in todo:
        updates[s.story_id] = (
            unique[s.story_id],
            chosen[s.story_id][1],
            keywords.get(s.story_id, []),
            s.article_count,
        )
    for sid, label in current.items():
        if sid not in updates and unique.get(sid, label.headline) != label.headline:
            updates[sid] = (unique[sid], None, label.keywords, None)
    label_store.save_labels(con, updates)
    return len(todo)
