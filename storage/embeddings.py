"""Embeddings: one FLOAT[dim] vector per article and model.

The table is created on first use with the dimension of the first model
stored, because DuckDB fixed-size arrays carry their length in the type. A
model of another dimension needs its own database (the error says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import pyarrow as pa

from storage.convert import to_db_time, utcnow
from storage.db import StorageError, scalar


def embedding_dim(con: duckdb.DuckDBPyConnection) -> int | None:
    data_type = scalar(
        con,
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'embeddings' AND column_name = 'vector'",
    )
    if data_type is None:
        return None
    # e.g. FLOAT[384]
    return int(str(data_type).rsplit("[", 1)[1].rstrip("]"))


def ensure_table(con: duckdb.DuckDBPyConnection, dim: int) -> None:
    existing = embedding_dim(con)
    if existing is None:
        con.execute(
            f"""
            CREATE TABLE embeddings (
                article_id  VARCHAR NOT NULL,
                model       VARCHAR NOT NULL,
                vector      FLOAT[{int(dim)}] NOT NULL,
                created_at  TIMESTAMP NOT NULL,
                PRIMARY KEY (article_id, model)
            )
            """
        )
    elif existing != dim:
        raise StorageError(
            f"this database stores {existing}-dimensional embeddings; the configured model gives {dim}. "
            "Use a separate database (--db) for a model of another dimension."
        )


@dataclass(frozen=True)
class PendingArticle:
    article_id: str
    title: str
    text: str


def articles_without_embedding(
    con: duckdb.DuckDBPyConnection, model: str, *, limit: int | None = None
) -> list[PendingArticle]:
    """Articles the configured model has not embedded yet, oldest first."""
    has_table = embedding_dim(con) is not None
    missing = (
        "NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.article_id = a.article_id AND e.model = ?)"
        if has_table
        else "TRUE"
    )
    sql = (
        f"SELECT a.article_id, a.title, a.text FROM articles a WHERE {missing} "
        "ORDER BY a.effective_at, a.article_id"
    )
    if limit:
        sql += f" LIMIT {int(limit)}"
    rows = con.execute(sql, [model] if has_table else []).fetchall()
    return [PendingArticle(*r) for r in rows]


def store_embeddings(
    con: duckdb.DuckDBPyConnection, model: str, article_ids: Sequence[str], vectors: np.ndarray
) -> int:
    """Insert vectors (idempotent: existing (article, model) pairs are kept). Returns rows written."""
    if len(article_ids) == 0:
        return 0
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    ensure_table(con, dim)
    # Arrow fixed-size lists insert ~100x faster than executemany with Python lists.
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    table = pa.table(
        {
            "article_id": pa.array(list(article_ids), type=pa.string()),
            "model": pa.array([model] * n, type=pa.string()),
            "vector": pa.FixedSizeListArray.from_arrays(flat, dim),
            "created_at": pa.array([to_db_time(utcnow())] * n, type=pa.timestamp("us")),
        }
    )
    con.register("embedding_batch", table)
    try:
        written = con.execute(
            f"INSERT INTO embeddings SELECT article_id, model, vector::FLOAT[{dim}], created_at "
            "FROM embedding_batch ON CONFLICT DO NOTHING"
        ).fetchall()
    finally:
        con.unregister("embedding_batch")
    return int(written[0][0]) if written else 0


def vectors_to_numpy(column: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """A FLOAT[dim] column fetched as Arrow → (n, dim) float32 array without Python loops."""
    # Chunk by chunk: combining a 150 MB column into one chunk first costs seconds.
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [c.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim) for c in chunks if len(c)]
    return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros((0, dim), np.float32)


def story_centroids(
    con: duckdb.DuckDBPyConnection, model: str, story_ids: Sequence[str]
) -> dict[str, np.ndarray]:
    """Unit centroids (mean of the members' vectors) of the given stories.

    The ids are joined as a table (a semi-join), and rows are summed per story in NumPy:
    filtering with list_contains or grouping in Python is quadratic (minutes at 100,000 articles)."""
    dim = embedding_dim(con)
    if dim is None or not story_ids:
        return {}
    con.register("wanted_stories", pa.table({"story_id": pa.array(list(story_ids), pa.string())}))
    try:
        table = con.sql(
            """
            SELECT sa.story_id, e.vector FROM story_articles sa
            JOIN wanted_stories w ON w.story_id = sa.story_id
            JOIN embeddings e ON e.article_id = sa.article_id AND e.model = ?
            """,
            params=[model],
        ).to_arrow_table()
    finally:
        con.unregister("wanted_stories")
    if table.num_rows == 0:
        return {}
    ids = np.array(table["story_id"].to_pylist(), dtype=object)
    vectors = vectors_to_numpy(table["vector"], dim).astype(np.float64)
    order = np.argsort(ids, kind="stable")
    ids, vectors = ids[order], vectors[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    sums = np.add.reduceat(vectors, starts, axis=0)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return {str(s): v for s, v in zip(ids[starts], (sums / norms).astype(np.float32), strict=True)}


def created_since(con: duckdb.DuckDBPyConnection, model: str, since: datetime) -> int:
    """Vectors of ``model`` written at or after ``since``."""
    if embedding_dim(con) is None:
        return 0
    return int(
        scalar(
            con,
            "SELECT count(*) FROM embeddings WHERE model = ? AND created_at >= ?",
            [model, to_db_time(since)],
        )
    )


def count_embeddings(con: duckdb.DuckDBPyConnection, model: str) -> int:
    if embedding_dim(con) is None:
        return 0
    return int(scalar(con, "SELECT count(*) FROM embeddings WHERE model = ?", [model]))
