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
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if len(column) == 0:
        return np.zeros((0, dim), dtype=np.float32)
    values = column.flatten().to_numpy(zero_copy_only=False)
    return values.astype(np.float32, copy=False).reshape(len(column), dim)


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
