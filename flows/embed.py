"""Embed: give every article without a vector for the configured model one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from tqdm import tqdm

from pipeline.embed import Encoder, embed_input, load_encoder
from pipeline.settings import Settings, load_settings
from storage import embeddings as embedding_store
from storage import runs
from storage.db import open_db, transaction

# Vectors are committed every CHUNK articles, so an interrupted run keeps its progress.
CHUNK = 1024


@dataclass
class EmbedReport:
    run_id: int
    model: str
    embedded: int = 0
    pending_before: int = 0
    backend: str | None = None


def encoder_for(settings: Settings) -> Encoder:
    """The configured model on the configured device and backend (loaded once per process)."""
    e = settings.embed
    return load_encoder(e.model, e.device, e.backend, str(e.onnx_cache) if e.onnx_cache else None, e.threads)


def embed_pending(
    settings: Settings,
    *,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> EmbedReport:
    """Embed what is missing for ``settings.embed.model``; idempotent and incremental."""
    model_name = settings.embed.model
    with open_db(settings.db, lock_wait_s=settings.lock_wait_s) as con:
        pending = embedding_store.articles_without_embedding(con, model_name)
        run_id = runs.start_run(con, "embed")
    with runs.failure_recorded(settings.db, run_id, lock_wait_s=settings.lock_wait_s):
        report = EmbedReport(run_id=run_id, model=model_name, pending_before=len(pending))
        if on_total:
            on_total(len(pending))
        if pending and progress is None:
            # A bar on a terminal only (tqdm disables itself when stderr is not a TTY).
            bar = tqdm(total=len(pending), desc="embedding", unit="article", disable=None, leave=False)
            progress = bar.update
        if pending:
            encoder = encoder_for(settings)
            report.backend = encoder.backend
            for start in range(0, len(pending), CHUNK):
                chunk = pending[start : start + CHUNK]
                vectors = encoder.encode(
                    [embed_input(p.title, p.text) for p in chunk],
                    batch_size=settings.embed.batch_size,
                    max_tokens=settings.embed.max_tokens,
                    progress=progress,
                )
                with open_db(settings.db, lock_wait_s=settings.lock_wait_s) as con, transaction(con):
                    report.embedded += embedding_store.store_embeddings(
                        con, model_name, [p.article_id for p in chunk], vectors
                    )
        with open_db(settings.db, lock_wait_s=settings.lock_wait_s) as con:
            runs.finish_run(con, run_id, stats=report.__dict__)
    return report


@task(name="embed-pending", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=10)
def embed_task(settings: Settings) -> EmbedReport:
    return embed_pending(settings)


@flow(name="embed")
def embed_flow(settings: Settings | None = None) -> EmbedReport:
    settings = settings or load_settings()
    report = embed_task.with_options(timeout_seconds=settings.embed.timeout_s)(settings)
    get_run_logger().info("embed: %d new vectors with %s", report.embedded, report.model)
    return report
