"""Embed: give every article without a vector for the configured model one.

Incremental: only articles without a vector for the configured model are read, and vectors
are committed chunk by chunk, so an interrupted run keeps its progress. The encoding runs
here (``embed.runner = "local"``) or on a Dask cluster (``"dask"``: a local one started for
the run, or the scheduler at ``embed.dask_address``) through Prefect's Dask task runner (see
``flows.prefect_flows``); either way this process stays the only writer of the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from flows.shared import database, recorded_run
from pipeline.embed.base import embed_input
from pipeline.embed.select import encoder_for
from pipeline.settings import EmbedSettings, Settings
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


def encode_texts(texts: list[str], embed: EmbedSettings) -> tuple[str, np.ndarray]:
    """One chunk's vectors, on whichever worker runs it (the model loads once per worker process)."""
    encoder = encoder_for(embed)
    return encoder.backend, encoder.encode(texts, batch_size=embed.batch_size, max_tokens=embed.max_tokens)


# Encodes chunks elsewhere (e.g. as tasks on a Dask cluster): the texts of every chunk in, each
# chunk's (backend, vectors) out, in order.
ChunkEncoder = Callable[[list[list[str]], EmbedSettings], Iterator[tuple[str, np.ndarray]]]


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
    encode_chunks: ChunkEncoder | None = None,
) -> EmbedReport:
    """Embed what is missing for ``settings.embed.model``; idempotent and incremental.

    ``encode_chunks``: encode the chunks elsewhere (the Dask runner); by default, in this process.
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
        if chunks and encode_chunks is not None:
            report.runner = settings.embed.runner
            encoded = encode_chunks([_texts(c) for c in chunks], settings.embed)
            for chunk, (backend, vectors) in zip(chunks, encoded, strict=True):
                report.backend = backend
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
