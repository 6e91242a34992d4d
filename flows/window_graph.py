"""The cluster step's kept window graph: updated when the last run left one, saved after each run.

Windows above ``cluster.exact_max`` take the sparse path. With ``cluster.incremental`` on, the
graph a run computed is saved beside the database (storage/window_graph.py) once the run's
results have committed, and the next run updates it with the articles that arrived and left
instead of rebuilding it, which is what makes an hourly run's cost follow what is new. The
saved graph counts only if it was written by the last cluster run that did its work, with the
same model and clustering parameters; anything else (no file, a run killed between its commit
and the save, a changed setting) means a full build, which is always correct.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pipeline.settings import Settings
from pipeline.stories.cluster import ClusterParams
from pipeline.stories.incremental import Clustered, WindowGraph, cluster_with_graph
from storage import runs
from storage.window_graph import graph_path, load_graph, save_graph

if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection

    from storage.stories import WindowData


def uses_graph(settings: Settings, window_size: int) -> bool:
    """Whether this window is clustered through a kept graph (large windows, incremental on)."""
    return settings.cluster.incremental and window_size > settings.cluster.exact_max


def previous_graph(con: DuckDBPyConnection, settings: Settings) -> tuple[list[str], WindowGraph] | None:
    """The kept graph if the last cluster run that did its work wrote it with these settings."""
    path = graph_path(settings.db)
    stored = load_graph(path) if path is not None else None
    if stored is None or stored.key != _key(settings):
        return None
    if stored.run_id != runs.last_deciding(con, "cluster"):
        return None
    return stored.article_ids, stored.graph


def clustered(
    settings: Settings,
    window: WindowData,
    times: np.ndarray,
    texts: list[str],
    previous: tuple[list[str], WindowGraph] | None,
    *,
    context: set[str],
) -> Clustered:
    """The window's labels through the kept graph (``context``: the context articles' ids)."""
    params = ClusterParams.from_settings(settings.cluster)
    return cluster_with_graph(
        previous,
        window.article_ids,
        window.vectors,
        texts,
        times,
        params,
        rebuild_share=settings.cluster.rebuild_share,
        context=context,
    )


def keep_graph(settings: Settings, run_id: int, result: Clustered) -> None:
    """Save the run's graph for the next run (after the run's results have committed)."""
    path = graph_path(settings.db)
    if path is not None:
        save_graph(path, run_id, _key(settings), result.graph_ids, result.graph)


def _key(settings: Settings) -> str:
    return f"{settings.embed.model}|{ClusterParams.from_settings(settings.cluster)!r}"
