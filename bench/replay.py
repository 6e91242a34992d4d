"""Replay a labelled set through the real importer, storage and cluster step, as `storyline
backfill` does: one cluster run per step boundary with the clock at that moment.

The set's cached embeddings (bench/.cache) are written into the database first, so the
replay runs no model; everything else is the production code path.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench.datasets import Dataset
from flows.backfill import replay_step
from flows.importer import import_step
from pipeline.settings import DEFAULT_MODEL, load_settings
from storage import embeddings as embedding_store
from storage.db import open_db

# A fixed import clock, so undated articles get the same time on every replay.
IMPORTED_AT = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass
class Replay:
    labels: np.ndarray  # story per dataset row as an int, -1 for none
    story_ids: list[str | None]  # story per dataset row
    steps: int
    moved: int  # articles whose story changed after their first assignment
    merges: int
    splits: int
    silent: int  # story changes with no membership_changes row behind them (must be 0)


def _stored_ids(con, ds: Dataset) -> list[str | None]:
    """The stored article of each dataset row (a row the importer folded into another is mapped
    to the article that holds it: same source and text, or same canonical URL)."""
    from pipeline.articles.normalise import article_from_record

    rows = con.execute(
        "SELECT external_id, article_id, source, content_hash, canonical_url FROM articles"
    ).fetchall()
    by_external = {r[0]: r[1] for r in rows}
    by_text = {(r[2], r[3]): r[1] for r in rows}
    by_url = {r[4]: r[1] for r in rows if r[4]}
    out: list[str | None] = []
    for i, external in enumerate(ds.ids):
        if external in by_external:
            out.append(by_external[external])
            continue
        try:
            a = article_from_record(_record(ds, i), imported_at=IMPORTED_AT)
        except ValueError:
            out.append(None)
            continue
        out.append(by_text.get((a.source, a.content_hash)) or by_url.get(a.canonical_url or ""))
    return out


def _record(ds: Dataset, i: int) -> dict:
    t = ds.times[i]
    published = datetime.fromtimestamp(t, tz=UTC).isoformat() if np.isfinite(t) else None
    return {"id": ds.ids[i], "source": ds.sources[i], "url": ds.urls[i], "published_at": published,
            "title": ds.titles[i], "text": ds.bodies[i]}  # fmt: skip


def replay_set(ds: Dataset, vectors: np.ndarray, *, step: timedelta = timedelta(days=1)) -> Replay:
    with tempfile.TemporaryDirectory(prefix="storyline-replay-") as tmp:
        db = Path(tmp) / "replay.duckdb"
        archive = Path(tmp) / "articles.jsonl"
        archive.write_text(
            "".join(json.dumps(_record(ds, i)) + "\n" for i in range(len(ds))), encoding="utf-8"
        )
        settings = load_settings(db=db)
        import_step(settings, archive, imported_at=IMPORTED_AT)
        with open_db(db) as con:
            stored = _stored_ids(con, ds)
            first_row: dict[str, int] = {}
            for i, a in enumerate(stored):
                if a is not None:
                    first_row.setdefault(a, i)
            ids = sorted(first_row)
            embedding_store.store_embeddings(con, DEFAULT_MODEL, ids, vectors[[first_row[a] for a in ids]])
        result = replay_step(settings, step=step, progress=False)
        with open_db(db, read_only=True) as con:
            story_of = dict(con.execute("SELECT article_id, story_id FROM story_articles").fetchall())
            moved = con.execute(
                "SELECT count(DISTINCT article_id) FROM membership_changes WHERE from_story IS NOT NULL"
            ).fetchall()[0][0]
            # The last recorded change of every article must be where it is now, and every later
            # change must be a merge or a split: otherwise an article changed story silently.
            silent = con.execute(
                """
                WITH last AS (
                    SELECT article_id, arg_max(to_story, rowid) AS to_story FROM membership_changes GROUP BY 1
                )
                SELECT (SELECT count(*) FROM story_articles sa LEFT JOIN last l USING (article_id)
                        WHERE l.to_story IS DISTINCT FROM sa.story_id)
                     + (SELECT count(*) FROM membership_changes
                        WHERE from_story IS NOT NULL AND reason NOT IN ('merge', 'split'))
                """
            ).fetchall()[0][0]
    story_ids = [story_of.get(a) if a else None for a in stored]
    codes: dict[str, int] = {}
    labels = np.array([codes.setdefault(s, len(codes)) if s else -1 for s in story_ids])
    return Replay(labels, story_ids, result.steps, int(moved), result.merges, result.splits, int(silent))
