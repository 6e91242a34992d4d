"""`storyline serve`: the three schedules on this machine, with a local Prefect server if needed.

Prefect's temporary in-process server cannot schedule ("Cannot schedule flows
on an ephemeral server"), so without PREFECT_API_URL we start `prefect server
start` bound to 127.0.0.1, with its state under a project-local PREFECT_HOME,
and stop it on exit.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from flows.execution import die_with_parent, forget_serve, record_serve, stop_on_sigterm
from pipeline.settings import ConfigError, Settings

log = logging.getLogger("storyline.serve")
SERVER_START_TIMEOUT_S = 90.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_prefect_server(home: Path) -> Iterator[str]:
    """A Prefect API server on 127.0.0.1 for as long as the block runs; yields its API URL."""
    port = _free_port()
    home.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    logfile = (home / "server.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=logfile,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # Never outlive this process, even when it is SIGKILLed.
        preexec_fn=die_with_parent,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"prefect server exited with code {proc.returncode}; see {home / 'server.log'}"
                )
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not become healthy in {SERVER_START_TIMEOUT_S:.0f}s")
            time.sleep(0.5)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        logfile.close()


def _export_settings(settings: Settings) -> None:
    """Flow runs start in subprocesses: hand them the same database and sources as absolute paths."""
    os.environ["STORYLINE_DB"] = str(Path(settings.db).resolve())
    os.environ["STORYLINE_SOURCES"] = str(Path(settings.sources).resolve())
    config = Path(os.environ.get("STORYLINE_CONFIG", "storyline.toml"))
    if config.is_file():
        os.environ["STORYLINE_CONFIG"] = str(config.resolve())


def _daily_cron(daily_at: str) -> str:
    try:
        hour, minute = (int(x) for x in daily_at.split(":"))
    except ValueError as exc:
        raise ConfigError(f"digest.daily_at must be HH:MM, not {daily_at!r}") from exc
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ConfigError(f"digest.daily_at must be HH:MM, not {daily_at!r}")
    return f"{minute} {hour} * * *"


def deployments(settings: Settings) -> list:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron

    from flows.prefect_flows import digest_flow, embed_and_cluster_flow, ingest_flow

    one_at_a_time = ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)
    cron = settings.schedule.digest_cron or _daily_cron(settings.digest.daily_at)

    return [
        ingest_flow.to_deployment(
            name="storyline-ingest", interval=settings.schedule.ingest_every_s,
            parameters={"due_only": True}, concurrency_limit=one_at_a_time,
        ),
        embed_and_cluster_flow.to_deployment(
            name="storyline-embed-and-cluster", interval=settings.schedule.cluster_every_s,
            concurrency_limit=one_at_a_time,
        ),
        digest_flow.to_deployment(
            name="storyline-digest",
            schedule=Cron(cron, timezone=settings.digest.timezone),
            parameters={"previous_day": True}, concurrency_limit=one_at_a_time,
        ),
    ]  # fmt: skip


def serve(settings: Settings) -> int:
    from prefect import serve as prefect_serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    _export_settings(settings)
    stop_on_sigterm()
    deployments(settings)  # configuration errors surface before a server is started
    # Flow runs are child processes: they stop when this process dies (flows.runtime).
    os.environ["STORYLINE_SERVE_PID"] = str(os.getpid())
    try:
        if os.environ.get("PREFECT_API_URL"):
            prefect_serve(*deployments(settings), pause_on_shutdown=False)
            return 0
        home = Path(os.environ.get("PREFECT_HOME", ".prefect")).resolve()
        print(f"starting a local Prefect server (state in {home}) ...", flush=True)
        with local_prefect_server(home) as url:
            os.environ["PREFECT_API_URL"] = url
            record_serve(url)
            print(
                f"Prefect API at {url}; serving ingest, cluster and digest schedules (Ctrl-C stops)",
                flush=True,
            )
            with temporary_settings({PREFECT_API_URL: url}):
                prefect_serve(*deployments(settings), pause_on_shutdown=False)
    except KeyboardInterrupt:
        pass
    finally:
        forget_serve()
    print("storyline serve: stopped", flush=True)
    return 0
