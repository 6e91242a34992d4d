"""What a cluster run reads and writes in DuckDB, done as set-based statements over Arrow batches:
the same rows as one statement per story or article gave, checked on a small real database."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from pipeline.stories.records import LineageEvent, MembershipChange
from storage import articles as article_store
from storage import briefs as brief_store
from storage import labels as label_store
from storage import stories as story_store
from storage.db import open_db, transaction
from storage.embeddings import store_embeddings
from tests.builders import NOW, article

MODEL = "test-model"


def _setup(con: duckdb.DuckDBPyConnection, n: int = 12) -> list[str]:
    """``n`` embedded articles an hour apart, ids a00.. (a00 oldest)."""
    ids = [f"a{k:02d}" for k in range(n)]
    articles = [
        article(
            a,
            f"Body of {a}. It says something.",
            title=f"Title {a}",
            at=NOW + timedelta(hours=k),
            content_hash=a,
        )
        for k, a in enumerate(ids)
    ]
    article_store.insert_articles(con, articles, run_id=None)
    rng = np.random.default_rng(0)
    store_embeddings(con, MODEL, ids, rng.normal(size=(n, 8)).astype(np.float32))
    return ids


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def test_a_run_writes_births_moves_lineage_and_stats_and_refuses_a_stale_decision(db_path: Path) -> None:
    with open_db(db_path) as con:
        ids = _setup(con)
        story_store.apply_story_update(
            con,
            run_id=1,
            now=NOW,
            new_stories=["s_a", "s_b", "s_c"],
            lineage=[],
            retired=[],
            changes=[MembershipChange(a, None, f"s_{'abc'[k % 3]}", "new") for k, a in enumerate(ids[:9])],
        )
        later = NOW + timedelta(days=1)
        story_store.apply_story_update(
            con,
            run_id=2,
            now=later,
            new_stories=["s_child"],
            lineage=[LineageEvent("merge", "s_c", "s_a"), LineageEvent("split", "s_child", "s_b")],
            retired=["s_c"],
            changes=[
                MembershipChange("a02", "s_c", "s_a", "merge"),
                MembershipChange("a05", "s_c", "s_a", "merge"),
                MembershipChange("a08", "s_c", "s_a", "merge"),
                MembershipChange("a04", "s_b", "s_child", "split"),
                MembershipChange("a09", None, "s_child", "cluster"),
            ],
        )
        assert _rows(con, "SELECT run_id, kind, story_id, other_id FROM story_lineage ORDER BY rowid") == [
            (2, "merge", "s_c", "s_a"),
            (2, "split", "s_child", "s_b"),
        ]
        stories = {
            r[0]: r[1:]
            for r in _rows(
                con, "SELECT story_id, status, merged_into, parent_id, article_count, first_seen FROM stories"
            )
        }
        hour = timedelta(hours=1)
        naive = NOW.replace(tzinfo=None)
        assert stories == {
            "s_a": ("live", None, None, 6, naive),
            "s_b": ("live", None, None, 2, naive + hour),
            "s_c": ("merged", "s_a", None, 0, naive + 2 * hour),
            "s_child": ("live", None, "s_b", 2, naive + 4 * hour),
        }
        assert _rows(con, "SELECT count(*) FROM membership_changes") == [(14,)]
        assert _rows(con, "SELECT story_id, method FROM story_articles WHERE article_id = 'a09'") == [
            ("s_child", "cluster")
        ]
        # a01 is in s_b, not in s_a: a decision made on an older reading.
        stale = [
            MembershipChange("a01", "s_a", "s_child", "merge"),
            MembershipChange("a11", None, "s_a", "new"),
        ]
        with pytest.raises(story_store.ConcurrentUpdate, match="1 article"), transaction(con):
            story_store.apply_story_update(
                con, run_id=3, now=later, new_stories=[], lineage=[], retired=[], changes=stale
            )
        assert _rows(con, "SELECT count(*) FROM membership_changes") == [(14,)]


def test_members_outside_the_window_and_articles_by_id_are_read_by_join(db_path: Path) -> None:
    with open_db(db_path) as con:
        ids = _setup(con)
        story_store.apply_story_update(
            con,
            run_id=1,
            now=NOW,
            new_stories=["s_a", "s_b"],
            lineage=[],
            retired=[],
            changes=[MembershipChange(a, None, "s_a" if k < 6 else "s_b", "new") for k, a in enumerate(ids)],
        )
        window = ids[4:9]
        assert story_store.members_outside(con, ["s_b", "s_a", "s_gone"], window) == {
            "s_a": ["a00", "a01", "a02", "a03"],
            "s_b": ["a09", "a10", "a11"],
        }
        assert story_store.members_outside(con, [], window) == {}
        picked = story_store.load_articles(con, MODEL, ["a07", "a01", "a07", "a99"])
        assert picked.article_ids == ["a01", "a07"]
        assert picked.story_ids == ["s_a", "s_b"]
        assert picked.vectors.shape == (2, 8)


def test_joining_two_windows_keeps_time_then_id_order_and_each_article_once(db_path: Path) -> None:
    with open_db(db_path) as con:
        ids = _setup(con)
        first = story_store.load_articles(con, MODEL, ids[0:8:2])
        second = story_store.load_articles(con, MODEL, [*ids[1:9:2], ids[2]])
        both = first.plus(second)
        expected = story_store.load_articles(con, MODEL, ids[:8])
        assert both.article_ids == expected.article_ids
        assert both.times == expected.times and both.titles == expected.titles
        assert np.array_equal(both.vectors, expected.vectors)
        assert first.plus(story_store.load_articles(con, MODEL, [])) is first


def test_labels_are_saved_in_one_statement_keeping_what_is_not_given(db_path: Path) -> None:
    with open_db(db_path) as con:
        ids = _setup(con, 4)
        story_store.apply_story_update(
            con,
            run_id=1,
            now=NOW,
            new_stories=["s_a", "s_b"],
            lineage=[],
            retired=[],
            changes=[MembershipChange(a, None, "s_a" if k < 2 else "s_b", "new") for k, a in enumerate(ids)],
        )
        label_store.save_labels(
            con, {"s_a": ("First", "a00", ["x", "y"], 2), "s_b": ("Second", "a03", [], 2)}
        )
        label_store.save_labels(con, {"s_a": ("First — x", None, ["x"], None)})
        assert _rows(
            con,
            "SELECT story_id, headline, headline_article, keywords, labelled_count FROM stories ORDER BY 1",
        ) == [("s_a", "First — x", "a00", ["x"], 2), ("s_b", "Second", "a03", [], 2)]
        inputs = label_store.label_inputs(con, MODEL, ["s_b"])
        assert [(s.story_id, s.article_ids) for s in inputs] == [("s_b", ["a02", "a03"])]
        members = brief_store.brief_articles(con, ["s_b", "s_x"], before=NOW + timedelta(hours=3))
        assert {sid: [a.article_id for a in arts] for sid, arts in members.items()} == {"s_b": ["a02"]}
