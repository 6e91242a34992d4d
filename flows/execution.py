"""Whether a command runs its steps through Prefect or directly, and the process hygiene both share.

Through Prefect when there is a server to report to: ``PREFECT_API_URL`` is set (a server, or
Prefect Cloud, the user configured), or a ``storyline serve`` of this ``PREFECT_HOME`` is running
(it records its API address in ``PREFECT_HOME/storyline-serve.json`` while it runs). Then each
run shows in Prefect's UI with its state, logs and artifacts. Otherwise the command calls the same
steps directly: no Prefect import, no temporary server (8–11 s per command, and a server process
that outlived a SIGKILLed command). ``embed.runner`` or ``fetch.runner = "dask"`` always goes
through Prefect: its Dask task runner is what spreads the work.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from contextlib import suppress
from pathlib import Path

from storage.files import write_atomically
from storage.runs import process_alive

SERVE_FILE = "storyline-serve.json"


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")).expanduser()


def record_serve(api_url: str) -> Path:
    """Announce this process's server to commands run beside it (removed by ``forget_serve``)."""
    path = prefect_home() / SERVE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps({"pid": os.getpid(), "api_url": api_url}))
    return path


def forget_serve() -> None:
    path = prefect_home() / SERVE_FILE
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def running_serve_api() -> str | None:
    """The API URL of a ``storyline serve`` of this PREFECT_HOME that is still running, if any."""
    try:
        info = json.loads((prefect_home() / SERVE_FILE).read_text(encoding="utf-8"))
        pid, url = int(info["pid"]), str(info["api_url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url if process_alive(pid) else None


def use_prefect(*runners: str) -> bool:
    """Decide, and point Prefect at the server found (call before Prefect is imported).

    ``runners``: the steps' runners (embed.runner, fetch.runner); any "dask" needs Prefect."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    url = running_serve_api()
    if url:
        os.environ["PREFECT_API_URL"] = url
        return True
    return "dask" in runners


def stop_on_sigterm() -> None:
    """SIGTERM (a service manager, `kill`, a cron timeout) stops a command as Ctrl-C does."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def exit_now(code: int) -> None:
    """Leave at once: fetch or encoder threads still blocked in a read hold no database connection
    and must not keep the command alive (the database was left consistent by the unwinding)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def die_with_parent() -> None:
    """Linux: get SIGTERM when the parent process dies, even by SIGKILL (for processes we start,
    such as a local Prefect server, which must never outlive the command that started them)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def processes_below(pid: int) -> dict[int, int]:
    """Every living process below ``pid``, with its process group (Linux /proc; elsewhere none):
    what a command started, to stop it or to check that nothing of it is left."""
    parent: dict[int, tuple[int, int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parent[int(stat.parent.name)] = (int(fields[1]), int(fields[2]))
    below: dict[int, int] = {}
    todo = [pid]
    while todo:
        up = todo.pop()
        for child, (ppid, group) in parent.items():
            if ppid == up and child not in below:
                below[child] = group
                todo.append(child)
    return below


def running(pid: int) -> bool:
    """Whether ``pid`` is a living process (a zombie, dead but not yet reaped, is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
