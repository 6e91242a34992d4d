"""What story labelling reads (members, contrast documents) and writes (headline, keywords)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa

from storage.batch import registered, strings
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
    with registered(con, "labelled", {"story_id": strings(story_ids)}):
        table = con.sql(
            f"""
            SELECT s.story_id, s.article_count, s.labelled_count, s.headline, a.article_id, a.title,
                   a.title || '. ' || left(a.text, {DOC_CHARS}) AS doc, a.effective_at,
                   a.duplicate_of IS NOT NULL AS is_duplicate, a.language, e.vector
            FROM stories s
            SEMI JOIN labelled l ON l.story_id = s.story_id
            JOIN story_articles sa ON sa.story_id = s.story_id
            JOIN articles a ON a.article_id = sa.article_id
            JOIN embeddings e ON e.article_id = a.article_id AND e.model = ?
            ORDER BY s.story_id, a.effective_at, a.article_id
            """,
            params=[model],
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
    table = con.sql(
        f"""
        SELECT sa.story_id, a.title || '. ' || left(a.text, {DOC_CHARS}) AS doc, a.language
        FROM stories s JOIN story_articles sa USING (story_id) JOIN articles a USING (article_id)
        WHERE s.status = 'live' AND s.last_seen >= ?
        ORDER BY sa.story_id, a.article_id
        """,
        params=[to_db_time(seen_since)],
    ).to_arrow_table()
    docs: dict[str, list[str]] = {}
    languages: dict[str, list[str | None]] = {}
    for story_id, doc, language in zip(
        table["story_id"].to_pylist(), table["doc"].to_pylist(), table["language"].to_pylist(), strict=True
    ):
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
    """story_id → (headline, headline article id, keywords, article count labelled at), in one
    statement (a first run labels thousands of stories; one UPDATE each costs ~2 ms)."""
    if not labels:
        return
    ids = sorted(labels)
    batch = {
        "story_id": strings(ids),
        "headline": strings(labels[s][0] for s in ids),
        "headline_article": strings(labels[s][1] for s in ids),
        "keywords": pa.array([list(labels[s][2]) for s in ids], pa.list_(pa.string())),
        "labelled_count": pa.array([labels[s][3] for s in ids], pa.int32()),
    }
    with registered(con, "new_labels", batch):
        con.execute(
            """
            UPDATE stories SET headline = l.headline,
                headline_article = coalesce(l.headline_article, stories.headline_article),
                keywords = l.keywords, labelled_count = coalesce(l.labelled_count, stories.labelled_count)
            FROM new_labels l
            WHERE stories.story_id = l.story_id
            """
        ).fetchall()
