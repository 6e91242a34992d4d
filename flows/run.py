"""One full pass: ingest, embed, cluster."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from prefect import Flow, flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows.cluster import ClusterReport, cluster_flow
from flows.embed import EmbedReport, embed_flow
from flows.ingest import IngestReport, ingest_flow
from pipeline.settings import Settings, load_settings


@dataclass
class RunReport:
    ingest: IngestReport
    embed: EmbedReport
    cluster: ClusterReport


def ingest_flow_for(settings: Settings) -> Flow:
    """The ingest flow with its fetch pool capped at the configured worker count."""
    return ingest_flow.with_options(
        task_runner=ThreadPoolTaskRunner(max_workers=max(1, settings.fetch.max_workers))
    )


@flow(name="storyline-run")
def run_flow(settings: Settings | None = None, due_only: bool = False) -> RunReport:
    settings = settings or load_settings()
    ingest = ingest_flow_for(settings)(settings, due_only=due_only)
    embed = embed_flow(settings)
    cluster = cluster_flow(settings)
    return RunReport(ingest=ingest, embed=embed, cluster=cluster)


@flow(name="embed-and-cluster")
def embed_and_cluster_flow(settings: Settings | None = None, as_of: datetime | None = None) -> ClusterReport:
    """The hourly step: vectors for what came in (a story needs them), then stories."""
    settings = settings or load_settings()
    embed_flow(settings)
    return cluster_flow(settings, as_of=as_of)
