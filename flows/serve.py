"""`storyline serve`: the three schedules on this machine, with a local Prefect server if needed.

Prefect's temporary in-process server cannot schedule ("Cannot schedule flows
on an ephemeral server"), so without PREFECT_API_URL we start `prefect server
start` at ``serve.host:serve.port`` (127.0.0.1:4200, Prefect's own default; a
free port if that one is taken), with Prefect's UI unless ``serve.ui = false``,
its state under a project-local PREFECT_HOME, and stop it on exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

from flows.execution import die_with_parent, exit_now, forget_serve, processes_below, record_serve
from pipeline.settings import ConfigError, ServeSettings, Settings

log = logging.getLogger("storyline.serve")
SERVER_START_TIMEOUT_S = 90.0
# What SIGTERM leaves the server to stop before it is killed (serve itself must be gone in 10 s).
SERVER_STOP_TIMEOUT_S = 3.0
# What the last logs and events of a stopping serve get to reach the server.
FLUSH_TIMEOUT_S = 1.5
# What a flow run gets, after SIGTERM, to record itself as stopped before it is killed. (Prefect's
# runner would wait 30 s per run; all of serve must be gone within 10 s of a SIGTERM.)
FLOW_RUN_GRACE_S = 3.0
# If the orderly stop (runs, runner, log flush, server) takes longer than this, everything left is
# killed and serve leaves.
STOP_DEADLINE_S = 8.0
# Process groups of the local servers started here: not flow runs, stopped last.
_server_groups: set[int] = set()


def _bindable(host: str, port: int) -> int | None:
    """``port`` (a free one if 0) if a server could listen on ``host:port`` now, else None."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            s.bind(address)
            return int(s.getsockname()[1])
    except OSError:
        return None


def choose_port(host: str, port: int) -> int:
    """The configured port, or a free one when it is taken (or 0)."""
    if port:
        free = _bindable(host, port)
        if free is not None:
            return free
    free = _bindable(host, 0)
    if free is None:
        raise ConfigError(f"serve.host {host!r}: cannot listen there (not an address of this machine?)")
    return free


def base_url(host: str, port: int) -> str:
    """http://host:port for a browser or client on this machine (a wildcard host means loopback)."""
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


@contextmanager
def local_prefect_server(
    home: Path, *, host: str = "127.0.0.1", port: int = 0, ui: bool = False
) -> Iterator[str]:
    """A Prefect API server (and UI, with ``ui``) at host:port for as long as the block runs;
    yields its API URL. Port 0 takes a free port; pass a port that ``choose_port`` returned."""
    port = port or choose_port(host, 0)
    home.mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": str(ui).lower(),
        # The UI asks the API at these (`--host/--port` alone leave it asking 127.0.0.1:4200).
        "PREFECT_SERVER_API_HOST": host,
        "PREFECT_SERVER_API_PORT": str(port),
        # Offline, nothing to sell: no upgrade prompts or marketing banners in the UI.
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    }
    env.pop("PREFECT_API_URL", None)
    logfile = (home / "server.log").open("ab")
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--ui" if ui else "--no-ui"],
        env=env,
        stdout=logfile,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # Never outlive this process, even when it is SIGKILLed.
        preexec_fn=die_with_parent,
    )
    _server_groups.add(proc.pid)
    url = f"{base_url(host, port)}/api"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"prefect server exited with code {proc.returncode}; see {home / 'server.log'}"
                )
            try:
                if httpx.get(f"{url}/health", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not become healthy in {SERVER_START_TIMEOUT_S:.0f}s")
            time.sleep(0.5)
        yield url
    finally:
        _stop_group(proc)
        _server_groups.discard(proc.pid)
        logfile.close()


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever of it is left after a while."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=SERVER_STOP_TIMEOUT_S)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _export_settings(settings: Settings) -> None:
    """Flow runs start in subprocesses: hand them the same database and sources as absolute paths."""
    os.environ["STORYLINE_DB"] = str(Path(settings.db).resolve())
    os.environ["STORYLINE_SOURCES"] = str(Path(settings.sources).resolve())
    config = Path(os.environ.get("STORYLINE_CONFIG", "storyline.toml"))
    if config.is_file():
        os.environ["STORYLINE_CONFIG"] = str(config.resolve())


def _daily_cron(daily_at: str) -> str:
    """``digest.daily_at`` (H:MM, checked by the settings) as a daily cron expression."""
    hour, minute = (int(x) for x in daily_at.split(":"))
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


def _flow_run_processes() -> set[int]:
    return {p for p, group in processes_below(os.getpid()).items() if group not in _server_groups}


def _kill_flow_runs_left(pids: set[int]) -> None:
    for pid in pids & _flow_run_processes():  # still ours: not a reused process id
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)


_stopping = threading.Event()


def _stop_flow_runs() -> bool:
    """Once: SIGTERM to every flow run now, SIGKILL to those left after FLOW_RUN_GRACE_S (Prefect's
    runner would give each 30 s, one after another). False if a stop had already begun."""
    if _stopping.is_set():
        return False
    _stopping.set()
    runs = _flow_run_processes()
    for pid in runs:
        with suppress(OSError):
            os.kill(pid, signal.SIGTERM)
    for delay, action, args in (
        (FLOW_RUN_GRACE_S, _kill_flow_runs_left, (runs,)),
        (STOP_DEADLINE_S, _stop_now, ()),
    ):
        timer = threading.Timer(delay, action, args=args)
        timer.daemon = True
        timer.start()
    return True


def _stop_now() -> None:
    """The deadline of a stop: kill every process serve started, then leave."""
    for pid in processes_below(os.getpid()):
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    forget_serve()
    print(f"storyline serve: stopped (what was left after {STOP_DEADLINE_S:.0f} s was killed)", flush=True)
    exit_now(0)


def _stop_on_signal() -> None:
    """SIGTERM or Ctrl-C before the runner takes SIGTERM over (``_Runner``): stop as Ctrl-C does.
    Later signals change nothing: the stop is already under way, and bounded."""

    def stop(signum: int, frame: object) -> None:
        if _stop_flow_runs():
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def serve(settings: Settings) -> int:
    _export_settings(settings)
    _stop_on_signal()
    # Flow runs are child processes: they stop when this process dies (flows.runtime).
    os.environ["STORYLINE_SERVE_PID"] = str(os.getpid())
    try:
        if os.environ.get("PREFECT_API_URL"):
            _serve_against(os.environ["PREFECT_API_URL"], settings, ui=True)
        else:
            _serve_with_local_server(settings)
    except (KeyboardInterrupt, SystemExit):  # SystemExit: Prefect's SIGTERM handler, early on
        pass
    finally:
        forget_serve()
    print("storyline serve: stopped", flush=True)
    # Nothing of ours is left to finish (flow runs and the server are gone, the database is not
    # open here): leave now rather than in Prefect's exit hooks, which wait on its server.
    exit_now(0)
    return 0


def _serve_with_local_server(settings: Settings) -> None:
    cfg: ServeSettings = settings.serve
    home = Path(os.environ.get("PREFECT_HOME", ".prefect")).resolve()
    port = choose_port(cfg.host, cfg.port)
    taken = f"port {cfg.port} is taken; " if cfg.port and port != cfg.port else ""
    address = base_url(cfg.host, port)
    if cfg.ui:
        print(f"storyline serve: {taken}Prefect UI at {address} (starting a local Prefect server; "
              f"state in {home})", flush=True)  # fmt: skip
    else:
        print(f"storyline serve: {taken}starting a local Prefect server at {address} without its UI "
              f"(serve.ui = false; state in {home})", flush=True)  # fmt: skip
    # Importing Prefect and the flows takes seconds: done while the server starts.
    threading.Thread(target=_preload_flows, name="preload-flows", daemon=True).start()
    with local_prefect_server(home, host=cfg.host, port=port, ui=cfg.ui) as url:
        os.environ["PREFECT_API_URL"] = url
        record_serve(url)
        _serve_against(url, settings, ui=cfg.ui)


def _preload_flows() -> None:
    with suppress(Exception):  # the import proper (in _serve_against) reports what failed
        import flows.prefect_flows  # noqa: F401


def _serve_against(api_url: str, settings: Settings, *, ui: bool) -> None:
    """What ``prefect.serve`` does, with our own one-line banner once the deployments exist (Prefect's
    would repeat the UI's address, wrongly with the UI off)."""
    from prefect.exceptions import TerminationSignal
    from prefect.runner import Runner
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    class _Runner(Runner):
        def handle_sigterm(self, *args: Any, **kwargs: Any) -> None:
            # Prefect's graceful stop (runs marked as stopped, polling ended), with a deadline.
            if _stop_flow_runs():
                super().handle_sigterm(*args, **kwargs)

    with temporary_settings({PREFECT_API_URL: api_url}):
        runner = _Runner(pause_on_shutdown=False)
        for deployment in deployments(settings):
            runner.add_deployment(deployment)  # registered with the server here
        ui_at = f"; Prefect UI at {PREFECT_UI_URL.value()}" if ui and PREFECT_UI_URL.value() else ""
        print(
            f"Prefect API at {api_url}{ui_at}; serving ingest, cluster and digest schedules (Ctrl-C stops)",
            flush=True,
        )
        try:
            with suppress(TerminationSignal):
                asyncio.run(runner.start())
        finally:
            _kill_flow_runs_left(_flow_run_processes())  # one started while the runner stopped
            _flush_to_prefect(FLUSH_TIMEOUT_S)


def _flush_to_prefect(timeout_s: float) -> None:
    """Hand the server what Prefect's log and event workers still hold, while it is up, and stop
    them. Left to interpreter exit, they would wait on a server that is gone (for minutes)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with suppress(Exception):
            worker.drain_all(timeout=timeout_s)
