"""Embed: give every article without a vector for the configured model one.

Incremental: only articles without a vector for the configured model are read, and vectors
are committed chunk by chunk, so an interrupted run keeps its progress. The encoding runs
here (``embed.runner = "local"``) or on a Dask cluster (``"dask"``: a local one started for
the run, or the scheduler at ``embed.dask_address``) through Prefect's Dask task runner; either
way this flow stays the only writer of the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from tqdm import tqdm

from flows.shared import database, recorded_run
from pipeline.embed.base import embed_input
from pipeline.embed.select import encoder_for
from pipeline.settings import EmbedSettings, Settings, load_settings
from storage import embeddings as embedding_store
from storage.db import transaction
from storage.embeddings import PendingArticle


@dataclass
class EmbedReport:
    run_id: int
    model: str
    embedded: int = 0
    pending_before: int = 0
    backend: str | None = None
    runner: str = "local"


def _texts(chunk: Sequence[PendingArticle]) -> list[str]:
    return [embed_input(p.title, p.text) for p in chunk]


@task(name="encode-chunk", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def encode_chunk(texts: list[str], embed: EmbedSettings) -> tuple[str, np.ndarray]:
    """One chunk's vectors, on whichever worker runs it (the model loads once per worker process)."""
    encoder = encoder_for(embed)
    return encoder.backend, encoder.encode(texts, batch_size=embed.batch_size, max_tokens=embed.max_tokens)


def _chunks(pending: list[PendingArticle], size: int) -> Iterator[list[PendingArticle]]:
    for start in range(0, len(pending), size):
        yield pending[start : start + size]


def _store(
    settings: Settings, report: EmbedReport, chunk: Sequence[PendingArticle], vectors: np.ndarray
) -> None:
    with database(settings) as con, transaction(con):
        report.embedded += embedding_store.store_embeddings(
            con, settings.embed.model, [p.article_id for p in chunk], vectors
        )


def embed_step(
    settings: Settings,
    *,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    distributed: bool = False,
) -> EmbedReport:
    """Embed what is missing for ``settings.embed.model``; idempotent and incremental.

    ``distributed``: encode chunks as Prefect tasks on the flow's task runner (inside a flow only).
    """
    model_name = settings.embed.model
    with recorded_run(settings, "embed") as run:
        with database(settings) as con:
            pending = embedding_store.articles_without_embedding(con, model_name)
        report = EmbedReport(run_id=run.run_id, model=model_name, pending_before=len(pending))
        if on_total:
            on_total(len(pending))
        if pending and progress is None:
            # A bar on a terminal only (tqdm disables itself when stderr is not a TTY).
            bar = tqdm(total=len(pending), desc="embedding", unit="article", disable=None, leave=False)
            progress = bar.update
        chunks = list(_chunks(pending, settings.embed.chunk))
        if chunks and distributed:
            report.runner = settings.embed.runner
            futures = [encode_chunk.submit(_texts(c), settings.embed) for c in chunks]
            for chunk, future in zip(chunks, futures, strict=True):
                report.backend, vectors = future.result()
                _store(settings, report, chunk, vectors)
                if progress:
                    progress(len(chunk))
        elif chunks:
            encoder = encoder_for(settings.embed)
            report.backend = encoder.backend
            for chunk in chunks:
                vectors = encoder.encode(
                    _texts(chunk),
                    batch_size=settings.embed.batch_size,
                    max_tokens=settings.embed.max_tokens,
                    progress=progress,
                )
                _store(settings, report, chunk, vectors)
        run.stats = report.__dict__
    return report


@task(name="embed-pending", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=10)
def embed_task(settings: Settings) -> EmbedReport:
    return embed_step(settings)


@flow(name="embed")
def embed_flow(settings: Settings | None = None) -> EmbedReport:
    settings = settings or load_settings()
    if settings.embed.runner == "dask":
        on_dask = embed_on_dask_flow.with_options(
            task_runner=dask_task_runner(settings), timeout_seconds=settings.embed.timeout_s
        )
        report = on_dask(settings)
    else:
        report = embed_task.with_options(timeout_seconds=settings.embed.timeout_s)(settings)
    get_run_logger().info(
        "embed: %d new vectors with %s (%s, %s)", report.embedded, report.model, report.backend, report.runner
    )
    return report


@flow(name="embed-on-dask")
def embed_on_dask_flow(settings: Settings) -> EmbedReport:
    """The embed step with its chunks encoded as tasks on the Dask task runner it is given."""
    return embed_step(settings, distributed=True)


def dask_task_runner(settings: Settings) -> Any:
    """Prefect's Dask task runner for the embed step: the cluster at ``embed.dask_address``, or a
    local cluster of ``embed.dask_workers`` processes started for the run. (Typed Any: prefect_dask
    is an optional extra, imported only when asked for.)"""
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        from pipeline.settings import ConfigError

        raise ConfigError(
            "embed.runner = 'dask' needs prefect-dask (pip install 'storyline[scale]')"
        ) from exc
    e = settings.embed
    if e.dask_address:
        return DaskTaskRunner(address=e.dask_address)
    return DaskTaskRunner(
        cluster_kwargs={"n_workers": e.dask_workers, "processes": True, "threads_per_worker": 1}
    )
