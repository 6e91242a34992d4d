"""The DuckDB file: schema migrations, idempotent writes, all-or-nothing steps, lock waits."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.records import Article
from storage import articles as article_store
from storage import embeddings as embedding_store
from storage.db import DatabaseLocked, StorageError, connect, open_db, scalar, transaction
from tests import builders


def article(n: int, **changes: Any) -> Article:
    """Article n from the Wire, with its own headline, body, URL and content hash."""
    url = f"https://x.example/{n}"
    numbered = builders.article(
        f"a_{n:020d}", f"Body {n}", title=f"Headline {n}", url=url, canonical_url=url, content_hash=f"h{n}"
    )
    return replace(numbered, **changes)


def test_a_new_file_gets_the_whole_schema_and_reopening_migrates_nothing(db_path: Path) -> None:
    with open_db(db_path) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"sources", "fetches", "articles", "stories", "story_articles", "runs", "story_summary",
            "source_health", "story_lineage", "membership_changes"} <= tables  # fmt: skip
    with open_db(db_path) as con:
        from storage.db import migrate

        assert migrate(con) == []
        assert scalar(con, "SELECT count(*) FROM schema_migrations") >= 1


def test_inserting_the_same_articles_twice_stores_them_once(db_path: Path) -> None:
    batch = [article(1), article(2)]
    with open_db(db_path) as con:
        assert len(article_store.insert_articles(con, batch, run_id=None)) == 2
        assert article_store.insert_articles(con, batch, run_id=None) == []
        # The same page under another id (another feed's GUID) is the same article.
        assert (
            article_store.insert_articles(con, [article(3, canonical_url="https://x.example/1")], run_id=None)
            == []
        )
        # Within one batch, the first of two copies is kept.
        assert article_store.insert_articles(con, [article(4), article(4, title="Changed")], run_id=None) == [
            article(4).article_id
        ]
        assert article_store.count_articles(con) == 3


def test_a_failure_inside_a_step_leaves_the_last_committed_state(db_path: Path) -> None:
    with open_db(db_path) as con:
        article_store.insert_articles(con, [article(1)], run_id=None)
        with pytest.raises(RuntimeError), transaction(con):
            article_store.insert_articles(con, [article(2), article(3)], run_id=None)
            raise RuntimeError("crash half way")
        assert article_store.count_articles(con) == 1
        # The connection is usable afterwards.
        article_store.insert_articles(con, [article(2)], run_id=None)
        assert article_store.count_articles(con) == 2


def test_embeddings_are_stored_once_per_article_and_model_and_read_back_exactly(db_path: Path) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(3, 8)).astype(np.float32)
    with open_db(db_path) as con:
        article_store.insert_articles(con, [article(i) for i in range(3)], run_id=None)
        ids = [article(i).article_id for i in range(3)]
        assert [p.article_id for p in embedding_store.articles_without_embedding(con, "m")] == ids
        assert embedding_store.store_embeddings(con, "m", ids, vecs) == 3
        assert embedding_store.store_embeddings(con, "m", ids, vecs) == 0
        assert embedding_store.articles_without_embedding(con, "m") == []
        assert len(embedding_store.articles_without_embedding(con, "other-model")) == 3
        table = con.sql("SELECT vector FROM embeddings ORDER BY article_id").to_arrow_table()
        assert np.array_equal(embedding_store.vectors_to_numpy(table["vector"], 8), vecs)
        with pytest.raises(StorageError, match="8-dimensional"):
            embedding_store.store_embeddings(con, "wide", ids[:1], np.zeros((1, 16), dtype=np.float32))


def test_a_writer_waits_for_a_reader_in_another_process_and_then_proceeds(db_path: Path) -> None:
    connect(db_path).close()
    reader = builders.process_holding(db_path, read_only=True, seconds=1.5)
    try:
        started = time.monotonic()
        with open_db(db_path, lock_wait_s=30) as con:
            article_store.insert_articles(con, [article(1)], run_id=None)
        assert time.monotonic() - started > 0.5, "it had to wait for the reader"
    finally:
        reader.wait(timeout=30)


def test_a_lock_held_past_the_wait_is_a_clear_error(db_path: Path) -> None:
    connect(db_path).close()
    reader = builders.process_holding(db_path, read_only=True, seconds=5)
    try:
        with pytest.raises(DatabaseLocked, match="locked by another process"):
            connect(db_path, lock_wait_s=0.5)
    finally:
        reader.kill()
        reader.wait()
