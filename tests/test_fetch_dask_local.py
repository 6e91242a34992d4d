"""Fetching on the local Dask cluster the run starts itself (``fetch.runner = "dask"`` with no
``embed.dask_address``). Spec:

- the run stores the same articles, and records the same fetch outcome per source, as fetching in
  the ingest's own process;
- the cluster is the run's own: no process it started (scheduler, nanny, worker) outlives the run.

``tests/test_fetch_dask.py`` covers a cluster given by address; this module has none of its own
running, so the processes below the test process are the run's.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from devkit.feed_server import FeedServer
from tests.builders import quick_fetch, write_sources
from tests.test_fetch_dask import outcomes, serve_feeds, stored


def _ours(proc: Any) -> bool:
    """Not Python's multiprocessing resource tracker: started once per process at the first spawned
    child, it lives as long as the test process whoever spawned first, and holds nothing."""
    try:
        return "multiprocessing.resource_tracker" not in " ".join(proc.cmdline())
    except Exception:
        return True


def _below_us() -> dict[int, Any]:
    import psutil

    return {p.pid: p for p in psutil.Process().children(recursive=True) if _ours(p)}


class Watch:
    """Every process below the test process seen while the block runs, sampled every 0.1 s: one
    whose parent exited is no longer below us, but still counts if it lives on."""

    def __init__(self) -> None:
        self.seen: dict[int, Any] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            for pid, proc in _below_us().items():
                self.seen.setdefault(pid, proc)
            if self._done.wait(0.1):
                return

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def alive(self) -> list[str]:
        import psutil

        alive = []
        for proc in self.seen.values():
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{proc.pid} {' '.join(proc.cmdline())[:200]}")
            except psutil.NoSuchProcess:
                continue
        return alive


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_a_run_fetching_on_its_own_local_cluster_stores_what_local_fetching_stores_and_leaves_nothing(
    tmp_path: Path, make_settings, feed_server: FeedServer
) -> None:
    from flows.ingest import ingest_step
    from flows.prefect_flows import ingest_flow

    sources = write_sources(tmp_path / "sources.toml", serve_feeds(feed_server, tmp_path / "feed.xml"))
    local = quick_fetch(make_settings(sources=sources, db=tmp_path / "local.duckdb"))
    dask = quick_fetch(make_settings(sources=sources, db=tmp_path / "dask.duckdb"))
    dask.fetch.runner = "dask"
    dask.embed.dask_address = None  # the run starts its own cluster
    dask.embed.dask_workers = 1

    here = ingest_step(local, progress=False)
    before = set(_below_us())
    with Watch() as watch:
        spread = ingest_flow(dask)
    started = {pid: p for pid, p in watch.seen.items() if pid not in before}

    assert (here.runner, spread.runner) == ("local", "dask")
    assert stored(dask.db) == stored(local.db)
    assert len(stored(dask.db)) == 6 * 3 + 1
    assert outcomes(dask.db) == outcomes(local.db)
    assert set(spread.failures) == set(here.failures) == {"broken", "refused"}
    assert started, "the run started its cluster's worker process"
    watch.seen = started
    assert watch.alive() == [], "processes the run started are still there after it"
