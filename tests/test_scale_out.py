"""The embed step on a Dask cluster (a local one here) through Prefect's Dask task runner: the
same vectors as embedding in-process, and the flow stays the only database writer."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from tests.builders import article, query

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

TEXTS = [
    "Floods force thousands from their homes in Valencia after torrential rain.",
    "Bank of Canada raises its benchmark interest rate to 5% as inflation stays high.",
    "Nordwind Software agrees to buy DataLoom for $2.1 billion in cash.",
    "Riverside chess club celebrates 50 years with a weekend tournament.",
    "Storm makes landfall on the coast; thousands without power.",
    "Council approves protected bike lanes on Elm Street after a long debate.",
]


def _vectors(db) -> dict[str, np.ndarray]:
    rows = query(db, "SELECT article_id, vector FROM embeddings ORDER BY article_id")
    return {a: np.asarray(v, dtype=np.float32) for a, v in rows}


def test_embedding_on_a_local_dask_cluster_matches_embedding_in_process(tmp_path, make_settings) -> None:
    from flows.prefect_flows import embed_flow
    from storage import articles as article_store
    from storage.db import open_db

    now = datetime(2026, 11, 20, tzinfo=UTC)
    arts = [
        article(f"a_{i}", t, source="s", title=t.split(" ")[0], at=now, content_hash=str(i))
        for i, t in enumerate(TEXTS)
    ]
    local = make_settings(db=tmp_path / "local.duckdb")
    dask = make_settings(db=tmp_path / "dask.duckdb")
    dask.embed.runner = "dask"
    dask.embed.dask_workers = 2
    dask.embed.threads = 1
    dask.embed.chunk = 2  # three tasks for two workers
    for settings in (local, dask):
        with open_db(settings.db) as con:
            article_store.insert_articles(con, arts, run_id=None)
    assert embed_flow(local).embedded == len(TEXTS)
    report = embed_flow(dask)
    assert (report.embedded, report.runner) == (len(TEXTS), "dask")
    a, b = _vectors(local.db), _vectors(dask.db)
    assert a.keys() == b.keys()
    cosines = [float(a[k] @ b[k]) for k in a]
    assert min(cosines) > 0.999
    assert embed_flow(dask).embedded == 0, "nothing is embedded twice"
