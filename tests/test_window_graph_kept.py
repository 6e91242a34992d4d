"""Large windows keep their neighbour graph between cluster runs.

What a user relies on: the next hourly run updates the graph instead of rebuilding it and
decides what a full run would; a graph that is missing, unreadable or left behind by an
earlier run is never used (the run builds afresh and still decides the same); and a process
killed while saving leaves the previous graph whole.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from flows.cli import EXIT_OK, main
from pipeline.stories import incremental
from pipeline.stories.params import ClusterParams
from storage.window_graph import graph_path, load_graph, save_graph
from tests.builders import (
    FLOOD_REPORTS,
    RATE_RISE_REPORTS,
    archive_record,
    query,
    story_vectors,
    write_archive,
)

pytestmark = pytest.mark.slow

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def _archive(path: Path, reports: list[str], start: int, hours: float) -> Path:
    records = [
        archive_record(
            f"r{start + k}",
            text.split(".")[0],
            text,
            source=f"Outlet{(start + k) % 4}",
            published_at=T0 + timedelta(hours=hours + k),
        )
        for k, text in enumerate(reports)
    ]
    return write_archive(path, records)


def _stories(db: Path) -> set[frozenset[str]]:
    sql = "SELECT a.external_id, sa.story_id FROM articles a JOIN story_articles sa USING (article_id)"
    by_story: dict[str, set[str]] = {}
    for article, story in query(db, sql):
        by_story.setdefault(story, set()).add(article)
    return {frozenset(members) for members in by_story.values()}


def _last_graph_step(db: Path) -> str | None:
    stats = query(db, "SELECT stats FROM runs WHERE kind = 'cluster' ORDER BY run_id DESC LIMIT 1")[0][0]
    return json.loads(stats).get("graph")


def _cluster(db: Path, hours: float) -> str | None:
    assert main(["cluster", "--db", str(db), "--as-of", (T0 + timedelta(hours=hours)).isoformat()]) == EXIT_OK
    return _last_graph_step(db)


@pytest.fixture
def first_day(tmp_path: Path, make_settings, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A database clustered once through the sparse path (exact_max below the window), and the
    archive of the articles that arrive next."""
    make_settings()  # clears STORYLINE_* from the environment
    monkeypatch.setenv("STORYLINE_CLUSTER__EXACT_MAX", "3")
    db = tmp_path / "a.duckdb"
    day0 = _archive(tmp_path / "day0.jsonl", FLOOD_REPORTS[:3] + RATE_RISE_REPORTS[:2], 0, 0)
    assert main(["import", str(day0), "--db", str(db)]) == EXIT_OK
    assert _cluster(db, 12) == "built"
    assert graph_path(db).is_file()
    more = _archive(tmp_path / "day1.jsonl", FLOOD_REPORTS[3:] + RATE_RISE_REPORTS[2:], 10, 13)
    return db, more


def _fresh_copy(db: Path, name: str) -> Path:
    """The database as it is, without its kept graph."""
    copy = db.with_name(name)
    shutil.copy(db, copy)
    return copy


def test_the_next_run_updates_the_kept_graph_and_decides_as_a_full_run_would(first_day) -> None:
    db, more = first_day
    full = _fresh_copy(db, "full.duckdb")
    for target in (db, full):
        assert main(["import", str(more), "--db", str(target)]) == EXIT_OK
    assert _cluster(db, 24) == "updated"
    assert _cluster(full, 24) == "built"
    assert _stories(db) == _stories(full)
    assert len(_stories(db)) == 2


def test_an_unreadable_or_outdated_graph_is_never_used(first_day) -> None:
    db, more = first_day
    path = graph_path(db)
    from_first_run = path.read_bytes()
    full = _fresh_copy(db, "full.duckdb")
    for target in (db, full):
        assert main(["import", str(more), "--db", str(target)]) == EXIT_OK
    path.write_bytes(b"not a graph")
    assert _cluster(db, 24) == "built"
    assert _cluster(full, 24) == "built"
    assert _stories(db) == _stories(full)
    # A graph from an earlier run (restored from a backup, or left by a run killed after its
    # commit) describes another window: the next run builds afresh.
    path.write_bytes(from_first_run)
    assert main(["import", str(more), "--db", str(db)]) == EXIT_OK  # nothing new: same articles
    assert _cluster(db, 30) in ("built", None)
    assert _stories(db) == _stories(full)


_SAVE_FOREVER = """
import sys
import numpy as np
from pipeline.stories import incremental
from pipeline.stories.params import ClusterParams
from storage.window_graph import save_graph
from tests.builders import story_vectors
vecs, texts, times, _ = story_vectors(400, seed=3)
graph = incremental.build(vecs, texts, times, ClusterParams(exact_max=1))
ids = [f"a{k}" for k in range(len(vecs))]
print("ready", flush=True)
while True:
    save_graph(__import__("pathlib").Path(sys.argv[1]), 2, "key", ids, graph)
"""


def test_a_process_killed_while_saving_leaves_the_previous_graph_whole(tmp_path: Path) -> None:
    vecs, texts, times, _ = story_vectors(400, seed=3)
    graph = incremental.build(vecs, texts, times, ClusterParams(exact_max=1))
    ids = [f"a{k}" for k in range(len(vecs))]
    path = tmp_path / "db.duckdb.window-graph.npz"
    save_graph(path, 1, "key", ids, graph)
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-c", _SAVE_FOREVER, str(path)], cwd=root, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    stored = load_graph(path)
    assert stored is not None and stored.run_id in (1, 2)
    assert stored.article_ids == ids
    np.testing.assert_array_equal(stored.graph.labels, graph.labels)


def test_a_stored_graph_keeps_which_articles_were_context(tmp_path: Path) -> None:
    # So that the next run does not count context articles leaving as change to the window.
    vecs, texts, times, _ = story_vectors(60, seed=4)
    ids = [f"a{k}" for k in range(len(vecs))]
    result = incremental.cluster_with_graph(
        None, ids, vecs, texts, times, ClusterParams(exact_max=1), rebuild_share=0.25, context=set(ids[:7])
    )
    path = tmp_path / "db.duckdb.window-graph.npz"
    save_graph(path, 1, "key", result.graph_ids, result.graph)
    stored = load_graph(path)
    assert stored is not None and stored.graph.context is not None
    assert [a for a, c in zip(stored.article_ids, stored.graph.context, strict=True) if c] == ids[:7]
