"""The steps as Prefect flows and tasks: what the deployments run (`storyline serve`,
`prefect.yaml`), and what commands run when a Prefect server is there to report to.

Each flow wraps the plain step of the same name (``flows.ingest.ingest_step``, …) in a task with
retries and a timeout, so a run shows in Prefect's UI with its state, logs and artifacts. Without a
server the CLI calls the steps directly (``flows.execution``): importing Prefect and starting its
temporary server would cost 8–11 s per command and leave a server process behind on SIGKILL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.backfill import BackfillReport, catch_up_step
from flows.cluster import ClusterReport, cluster_step
from flows.digest import DigestResult, artifact_key, day_before_today, digest_step
from flows.embed import EmbedReport, embed_step, encode_texts
from flows.fetch_dask import fetch_on_task_runner
from flows.ingest import IngestReport, ingest_step
from flows.run import ClusterPass, RunReport
from flows.runtime import send_step_logs_to_runs
from pipeline.settings import ConfigError, EmbedSettings, Settings, load_settings

# The steps' own INFO lines (each source fetched or failed, articles stored, ...) go to the run's
# log in Prefect's UI; the terminal stays at WARNING unless -v.
send_step_logs_to_runs()

# --- ingest -------------------------------------------------------------------------------------


# Retrying the whole ingest is cheap: sources answer a repeat with 304 (conditional GET), and
# articles already stored are skipped. Per-source retries happen inside the step.
@task(name="ingest-sources", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=30)
def ingest_task(settings: Settings, due_only: bool, force: bool) -> IngestReport:
    return ingest_step(settings, due_only=due_only, force=force, progress=False)


@flow(name="ingest-on-dask", retries=1, retry_delay_seconds=30)
def ingest_on_dask_flow(settings: Settings, due_only: bool = False, force: bool = False) -> IngestReport:
    """The ingest step with its fetching done as tasks on the Dask task runner it is given; this
    flow's process decides what is due and writes everything."""
    return ingest_step(
        settings, due_only=due_only, force=force, progress=False, fetch_chunks=fetch_on_task_runner
    )


@flow(name="ingest")
def ingest_flow(
    settings: Settings | None = None, due_only: bool = False, force: bool = False
) -> IngestReport:
    """Fetch the sources (all enabled ones, or only those due), store what is new."""
    settings = settings or load_settings()
    if settings.fetch.runner == "dask":
        on_dask = ingest_on_dask_flow.with_options(task_runner=dask_task_runner(settings, "fetch"))
        report = on_dask(settings, due_only, force)
    else:
        report = ingest_task(settings, due_only, force)  # the step logs each source and a summary
    if not report.sources_total and not report.deferred:
        return report  # nothing was due: no row for the health history
    create_table_artifact(
        key="ingest-summary",
        table=[{
            "sources": report.sources_total, "ok": report.sources_ok, "unchanged": report.sources_unchanged,
            "failed": report.sources_failed, "deferred": len(report.deferred),
            "new articles": report.new_articles, "duplicates": report.duplicates,
        }],
        description=f"Ingest run {report.run_id}: sources fetched and articles stored",
    )  # fmt: skip
    return report


# --- embed --------------------------------------------------------------------------------------


@task(name="embed-pending", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=10)
def embed_task(settings: Settings) -> EmbedReport:
    return embed_step(settings)


@task(name="encode-chunk", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def encode_chunk(texts: list[str], embed: EmbedSettings) -> tuple[str, np.ndarray]:
    return encode_texts(texts, embed)


def _encode_on_task_runner(chunks: list[list[str]], embed: EmbedSettings) -> Iterator[tuple[str, np.ndarray]]:
    """Every chunk submitted at once to the flow's task runner; results taken in order."""
    futures = [encode_chunk.submit(texts, embed) for texts in chunks]
    for future in futures:
        yield future.result()


@flow(name="embed-on-dask")
def embed_on_dask_flow(settings: Settings) -> EmbedReport:
    """The embed step with its chunks encoded as tasks on the Dask task runner it is given."""
    return embed_step(settings, encode_chunks=_encode_on_task_runner)


# Fetch chunks one worker process of a local cluster runs at once. A chunk mostly waits (for servers,
# for a deadline, for a retry's turn), and one at a time each waited for its slowest feed while the
# process idled: 10,000 feeds took twice the local runner's time (bench/fetch_scale.py).
FETCH_CHUNKS_PER_WORKER = 4


def dask_task_runner(settings: Settings, step: str = "embed") -> Any:
    """Prefect's Dask task runner for the embed or fetch step: the cluster at ``embed.dask_address``,
    or a local cluster of ``embed.dask_workers`` processes started for the run, running one embed
    chunk (the model uses every core) or ``FETCH_CHUNKS_PER_WORKER`` fetch chunks at a time. (Typed
    Any: prefect_dask is an optional extra, imported only when asked for.)"""
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:
        raise ConfigError(
            f"{step}.runner = 'dask' needs prefect-dask (pip install 'storyline[scale]')"
        ) from exc
    e = settings.embed
    if e.dask_address:
        return DaskTaskRunner(address=e.dask_address)
    threads = FETCH_CHUNKS_PER_WORKER if step == "fetch" else 1
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": e.dask_workers, "processes": True, "threads_per_worker": threads,
            "env": {"PREFECT_API_URL": _api_url()},
        }
    )  # fmt: skip


def _api_url() -> str:
    """The API this flow reports to, for the worker processes of a local cluster. Without it each
    worker found no server and started a temporary one of its own: ~10 s and ~200 MB per worker,
    workers running several tasks at once raced to start theirs and failed ("Server process did not
    start"), and a server was left behind when Dask killed its worker (bench/fetch_scale.py)."""
    from prefect.client.orchestration import get_client

    return str(get_client(sync_client=True).api_url)


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


# --- cluster ------------------------------------------------------------------------------------


@task(name="catch-up", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def catch_up_task(settings: Settings, as_of: datetime | None = None) -> BackfillReport:
    return catch_up_step(settings, as_of=as_of, progress=False)


@task(name="cluster-window", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def cluster_task(settings: Settings, as_of: datetime | None = None) -> ClusterReport:
    return cluster_step(settings, as_of=as_of)


@flow(name="cluster")
def cluster_flow(settings: Settings | None = None, as_of: datetime | None = None) -> ClusterReport:
    settings = settings or load_settings()
    report = cluster_task.with_options(timeout_seconds=settings.cluster.timeout_s)(settings, as_of)
    if report.skipped:
        get_run_logger().info("cluster: nothing new since the last cluster run, nothing decided")
        return report
    get_run_logger().info(
        "cluster: %d window articles, %d stories touched, %d new, %d merged, %d split, %.0f%% unassigned",
        report.window_articles, report.stories_touched, report.new_stories, report.merges, report.splits,
        100 * report.unassigned_share,
    )  # fmt: skip
    create_table_artifact(key="cluster-summary", table=cluster_summary(report), description=(
        f"Cluster run {report.run_id} at {report.as_of:%Y-%m-%d %H:%M} UTC: the pipeline's health"
    ))  # fmt: skip
    return report


def cluster_summary(report: ClusterReport) -> list[dict[str, Any]]:
    """One cluster run's counts as the one row of its table artifact (``cluster-summary``)."""
    return [{
        "window articles": report.window_articles, "stories touched": report.stories_touched,
        "stories new": report.new_stories, "merged": report.merges, "split": report.splits,
        "share without a story": f"{100 * report.unassigned_share:.0f}%",
    }]  # fmt: skip


@flow(name="embed-and-cluster")
def embed_and_cluster_flow(settings: Settings | None = None, as_of: datetime | None = None) -> ClusterPass:
    """The hourly step: vectors for what came in (a story needs them), then stories."""
    settings = settings or load_settings()
    embed = embed_flow(settings)
    catch_up = catch_up_task.with_options(timeout_seconds=settings.cluster.timeout_s)(settings, as_of)
    return ClusterPass(embed=embed, catch_up=catch_up, cluster=cluster_flow(settings, as_of=as_of))


@flow(name="storyline-run")
def run_flow(settings: Settings | None = None, due_only: bool = False, force: bool = False) -> RunReport:
    settings = settings or load_settings()
    ingest = ingest_flow(settings, due_only=due_only, force=force)
    rest = embed_and_cluster_flow(settings)
    return RunReport(ingest=ingest, embed=rest.embed, catch_up=rest.catch_up, cluster=rest.cluster)


# --- digest -------------------------------------------------------------------------------------


@task(name="write-digest", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=30)
def digest_task(
    settings: Settings, day: date | None, topic: str | None, out_dir: Path | None
) -> DigestResult:
    return digest_step(settings, day=day, topic=topic, out_dir=out_dir)


@flow(name="digest")
def digest_flow(
    settings: Settings | None = None,
    day: date | None = None,
    topic: str | None = None,
    out_dir: Path | None = None,
    previous_day: bool = False,
) -> DigestResult:
    """Digest of ``day``; by default the latest day with news, or with ``previous_day`` (the
    daily schedule) the complete day before today in the digest's timezone."""
    settings = settings or load_settings()
    if previous_day and day is None:
        day = day_before_today(settings)
    result = digest_task.with_options(timeout_seconds=settings.digest.timeout_s)(
        settings, day, topic, out_dir
    )
    get_run_logger().info("digest: %d stories for %s in %s", result.stories, result.day, result.html_path)
    create_markdown_artifact(
        key=artifact_key(result, topic),
        markdown=result.markdown,
        description=digest_artifact_description(result),
    )
    return result


def digest_artifact_description(result: DigestResult) -> str:
    """The digest artifact's description (Markdown, shown above it in the UI): a link to the HTML
    file written beside the Markdown (file://: browsers open it from the address bar, not from a
    click on an http:// page), and its path."""
    html = Path(result.html_path).resolve()
    return f"Storyline digest for {result.day}. HTML digest: [{html.name}]({html.as_uri()}) — `{html}`"
