"""What story labelling reads (members, contrast documents) and writes (headline, keywords)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np

from storage.convert import OLDEST, from_db_time, to_db_time
from storage.embeddings import embedding_dim, vectors_to_numpy

# Enough body text for keywords; whole articles would only add cost.
DOC_CHARS = 600


@dataclass
class LabelInput:
    story_id: str
    article_count: int
    labelled_count: int | None
    headline: str | None
    article_ids: list[str]
    titles: list[str]
    docs: list[str]
    published: list[datetime]
    is_duplicate: list[bool]
    vectors: np.ndarray
    # Each article's language (ISO 639-1), for its stop words; None when unknown.
    languages: list[str | None] | None = None


def label_inputs(con: duckdb.DuckDBPyConnection, model: str, story_ids: Sequence[str]) -> list[LabelInput]:
    dim = embedding_dim(con)
    if not story_ids or dim is None:
        return []
    table = con.sql(
        f"""
        SELECT s.story_id, s.article_count, s.labelled_count, s.headline, a.article_id, a.title,
               a.title || '. ' || left(a.text, {DOC_CHARS}) AS doc, a.effective_at,
               a.duplicate_of IS NOT NULL AS is_duplicate, a.language, e.vector
        FROM stories s
        JOIN story_articles sa ON sa.story_id = s.story_id
        JOIN articles a ON a.article_id = sa.article_id
        JOIN embeddings e ON e.article_id = a.article_id AND e.model = ?
        WHERE list_contains(?, s.story_id)
        ORDER BY s.story_id, a.effective_at, a.article_id
        """,
        params=[model, list(story_ids)],
    ).to_arrow_table()
    cols = {name: table[name].to_pylist() for name in table.column_names if name != "vector"}
    vectors = vectors_to_numpy(table["vector"], dim)
    out: list[LabelInput] = []
    start = 0
    ids = cols["story_id"]
    for i in range(1, len(ids) + 1):
        if i < len(ids) and ids[i] == ids[start]:
            continue
        out.append(
            LabelInput(
                story_id=ids[start],
                article_count=int(cols["article_count"][start]),
                labelled_count=cols["labelled_count"][start],
                headline=cols["headline"][start],
                article_ids=cols["article_id"][start:i],
                titles=cols["title"][start:i],
                docs=cols["doc"][start:i],
                published=[from_db_time(t) or OLDEST for t in cols["effective_at"][start:i]],
                is_duplicate=cols["is_duplicate"][start:i],
                vectors=vectors[start:i],
                languages=cols["language"][start:i],
            )
        )
        start = i
    return out


def contrast_docs(
    con: duckdb.DuckDBPyConnection, seen_since: datetime
) -> tuple[dict[str, list[str]], dict[str, list[str | None]]]:
    """Documents of the live stories seen since a time (the 'rest' that keywords stand out
    against), and each document's language in the same order."""
    rows = con.execute(
        f"""
        SELECT sa.story_id, a.title || '. ' || left(a.text, {DOC_CHARS}), a.language
        FROM stories s JOIN story_articles sa USING (story_id) JOIN articles a USING (article_id)
        WHERE s.status = 'live' AND s.last_seen >= ?
        ORDER BY sa.story_id, a.article_id
        """,
        [to_db_time(seen_since)],
    ).fetchall()
    docs: dict[str, list[str]] = {}
    languages: dict[str, list[str | None]] = {}
    for story_id, doc, language in rows:
        docs.setdefault(story_id, []).append(doc)
        languages.setdefault(story_id, []).append(language)
    return docs, languages


@dataclass(frozen=True)
class CurrentLabel:
    headline: str
    keywords: list[str]
    first_seen: datetime


def live_labels(con: duckdb.DuckDBPyConnection) -> dict[str, CurrentLabel]:
    rows = con.execute(
        "SELECT story_id, headline, keywords, first_seen FROM stories "
        "WHERE status = 'live' AND headline IS NOT NULL"
    ).fetchall()
    return {r[0]: CurrentLabel(r[1], list(r[2] or []), from_db_time(r[3]) or OLDEST) for r in rows}


def save_labels(
    con: duckdb.DuckDBPyConnection,
    labels: Mapping[str, tuple[str, str | None, list[str], int | None]],
) -> None:
    """story_id → (headline, headline article id, keywords, article count labelled at)."""
    for story_id, (headline, article_id, keywords, count) in sorted(labels.items()):
        con.execute(
            """
            UPDATE stories SET headline = ?, headline_article = coalesce(?, headline_article),
                keywords = ?, labelled_count = coalesce(?, labelled_count)
            WHERE story_id = ?
            """,
            [headline, article_id, keywords, count, story_id],
        )
