"""Fetching spread over Dask workers (``fetch.runner = "dask"``).

The sources of one ingest go in chunks to a real local Dask cluster, whose worker processes fetch
feeds over HTTP from a local server, parse and clean them, and send the outcomes back; the flow's
process stays the only database writer. Spec:

- the same articles are stored, and the same fetch outcome recorded per source, as fetching in the
  ingest's own process;
- a broken feed (HTTP 500, a refused connection) is recorded as that feed's failure, retried within
  the run as locally, and the run goes on;
- conditional GET and failure counts carry over to the next run as locally: workers get each
  source's state as plain data;
- a host's sources stay in one chunk, so ``per_host_limit`` holds across workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devkit.feed_server import FeedServer
from pipeline.feeds.gather import FetchJob, chunk_by_host
from pipeline.records import FetchState, Source
from tests.builders import last_fetches, query, query_dicts, quick_fetch, rss, rss_item, write_sources


@pytest.fixture(scope="module")
def dask_cluster(prefect_harness: None) -> Iterator[Any]:
    """Two worker processes, as `dask worker` would run them on two machines, reporting to the test's
    Prefect server as workers must (PREFECT_API_URL). They start importing the fetch code at once (a
    cold worker takes ~2.5 s), while the test fetches locally first."""
    from distributed import Client, LocalCluster
    from prefect.settings import PREFECT_API_URL

    env = {"PREFECT_API_URL": str(PREFECT_API_URL.value())}
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None, env=env
        ) as cluster,
        Client(cluster) as client,
    ):
        workers = client.scheduler_info()["workers"]
        warming = [client.submit(_import_fetch_task, workers=[w], pure=False) for w in workers]
        yield client
        del warming


def _import_fetch_task() -> None:
    import flows.fetch_dask  # noqa: F401


def serve_feeds(srv: FeedServer, feed_file: Path) -> dict[str, str]:
    """name -> URL: feeds on two host names (one server), a broken one, a refused one, a local file."""
    urls = {}
    for i in range(6):
        items = [
            rss_item(f"{i}-{j}", f"Story {j} of outlet {i}", f"Body {j} from outlet {i}.") for j in range(3)
        ]
        srv.route(f"/feed-{i}.xml", rss(*items, title=f"Outlet {i}"), etag=f'"v{i}"')
        host = "127.0.0.1" if i % 2 else "localhost"
        urls[f"outlet-{i}"] = srv.url(f"/feed-{i}.xml").replace("127.0.0.1", host)
    srv.route("/broken.xml", "oops", status=500, content_type="text/plain")
    urls["broken"] = srv.url("/broken.xml")
    urls["refused"] = "http://127.0.0.1:9/feed.xml"
    feed_file.write_text(rss(rss_item("f-1", "Read from a file", "A feed on the local disk.")))
    urls["on-disk"] = str(feed_file)
    return urls


def stored(db: Path) -> list[tuple]:
    return query(db, "SELECT source, article_id, title, text, url, published_at FROM articles ORDER BY 2")


def outcomes(db: Path) -> dict[str, tuple]:
    return {n: (f["status"], f["error_class"], f["new_articles"]) for n, f in last_fetches(db).items()}


def chunks_run_on(client: Any) -> int:
    """How many `fetch-chunk` tasks the cluster's workers finished."""

    def count(dask_scheduler: Any) -> int:
        prefix = dask_scheduler.task_prefixes.get("fetch_chunk")
        return 0 if prefix is None else int(prefix.state_counts["memory"])

    return client.run_on_scheduler(count)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_fetching_on_dask_workers_stores_what_local_fetching_stores(
    tmp_path: Path, make_settings, feed_server: FeedServer, dask_cluster: Any
) -> None:
    from flows.ingest import ingest_step
    from flows.prefect_flows import ingest_flow

    sources = write_sources(tmp_path / "sources.toml", serve_feeds(feed_server, tmp_path / "feed.xml"))
    local = quick_fetch(make_settings(sources=sources, db=tmp_path / "local.duckdb"))
    dask = quick_fetch(make_settings(sources=sources, db=tmp_path / "dask.duckdb"))
    dask.fetch.runner = "dask"
    dask.fetch.chunk = 2  # several chunks for two workers
    dask.embed.dask_address = dask_cluster.scheduler.address

    here = ingest_step(local, progress=False)  # what the command line runs without a Prefect server
    feed_server.clear_log()
    spread = ingest_flow(dask)

    assert (here.runner, spread.runner) == ("local", "dask")
    assert chunks_run_on(dask_cluster) >= 2, "the fetching ran on the workers"
    assert stored(dask.db) == stored(local.db)
    assert len(stored(dask.db)) == 6 * 3 + 1
    assert outcomes(dask.db) == outcomes(local.db)
    assert spread.new_articles == here.new_articles == 19

    # The broken feeds are failures of their own; everything else landed.
    assert set(spread.failures) == {"broken", "refused"}
    assert spread.failures["broken"].startswith("http_5xx")
    assert spread.failures["refused"].startswith("connect_error")
    assert len(feed_server.requests_for("/broken.xml")) == 2, "retried within the run, as locally"

    # Next run: the workers send each feed's validators, and failures count up as locally.
    feed_server.clear_log()
    assert ingest_flow(dask).new_articles == 0
    assert feed_server.requests_for("/feed-3.xml")[-1].headers.get("if-none-match") == '"v3"'
    assert outcomes(dask.db)["outlet-3"][0] == "not_modified"
    failures = query_dicts(dask.db, "SELECT name, consecutive_failures FROM sources WHERE name = 'broken'")
    assert failures == [{"name": "broken", "consecutive_failures": 2}]


def test_a_hosts_sources_stay_in_one_chunk() -> None:
    def job(name: str, url: str) -> FetchJob:
        return FetchJob(Source(name=name, url=url), FetchState())

    jobs = [job(f"big-{i}", f"https://big.example/{i}.xml") for i in range(5)]
    jobs += [job(f"small-{i}", f"https://small-{i}.example/feed.xml") for i in range(6)]
    chunks = chunk_by_host(jobs, 3)

    assert sorted(j.source.name for c in chunks for j in c) == sorted(j.source.name for j in jobs)
    assert sum(any(j.source.name.startswith("big") for j in c) for c in chunks) == 1
    assert len(chunks) == 4 and max(len(c) for c in chunks) == 5, "an outsize host is one chunk of its own"
