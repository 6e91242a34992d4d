"""One full pass (ingest, embed, cluster) and the hourly step (embed, cluster), as plain steps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flows.backfill import BackfillReport, catch_up_step
from flows.cluster import ClusterReport, cluster_step
from flows.embed import EmbedReport, embed_step
from flows.ingest import IngestReport, ingest_step
from pipeline.settings import Settings


@dataclass
class ClusterPass:
    embed: EmbedReport
    catch_up: BackfillReport
    cluster: ClusterReport


@dataclass
class RunReport:
    ingest: IngestReport
    embed: EmbedReport
    catch_up: BackfillReport
    cluster: ClusterReport


def embed_and_cluster_step(settings: Settings, *, as_of: datetime | None = None) -> ClusterPass:
    """Vectors for what came in (a story needs them), days older than the window caught up, then
    the cluster run at the clock."""
    embed = embed_step(settings)
    catch_up = catch_up_step(settings, as_of=as_of)
    return ClusterPass(embed=embed, catch_up=catch_up, cluster=cluster_step(settings, as_of=as_of))


def run_step(settings: Settings, *, due_only: bool = False, force: bool = False) -> RunReport:
    ingest = ingest_step(settings, due_only=due_only, force=force)
    rest = embed_and_cluster_step(settings)
    return RunReport(ingest=ingest, embed=rest.embed, catch_up=rest.catch_up, cluster=rest.cluster)
