"""The fetch step's work as Prefect tasks, for ``fetch.runner = "dask"`` (``flows.prefect_flows``).

A module of its own because Dask workers import the module that defines a task: this one brings in
Prefect and ``pipeline.feeds`` only (about 2.5 s on a cold worker), where ``flows.prefect_flows``
would bring every step and its libraries (7 s more, and 250 MB).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

from pipeline.feeds.gather import FeedOutcome, FetchJob, crashed, fetch_many
from pipeline.settings import FetchSettings


# One chunk of sources fetched, parsed and cleaned on a worker: plain data in and out, no database.
# A retry (a lost worker) fetches the chunk again with the same conditional-GET state, which is
# harmless: nothing of it was written. No timeout: each source is bounded by its own deadline and
# budget, and a Prefect timeout could not stop a thread blocked in a read anyway.
@task(name="fetch-chunk", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def fetch_chunk(jobs: list[FetchJob], fetch: FetchSettings, now: datetime) -> list[FeedOutcome]:
    return fetch_many(jobs, fetch, now)


def fetch_on_task_runner(
    chunks: list[list[FetchJob]], fetch: FetchSettings, now: datetime
) -> Iterator[list[FeedOutcome]]:
    """Every chunk submitted at once to the flow's task runner; outcomes taken as chunks finish. A
    chunk that still fails after its retry is recorded as a failure of each of its sources: the
    other chunks and the run go on."""
    futures = {fetch_chunk.submit(jobs, fetch, now): jobs for jobs in chunks}
    for future in as_completed(list(futures)):
        try:
            yield future.result()
        except Exception as exc:
            yield [crashed(job, exc, now) for job in futures[future]]
