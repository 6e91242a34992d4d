"""Process-wide defaults for running offline and quietly. Import before prefect."""

from __future__ import annotations

import logging
import os
import sys

_DEFAULTS = {
    # Nothing may reach a model hub at run time.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # Telemetry off: without these a cold Prefect start logs a "database is locked" error offline.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    # Temporary servers need no UI; `storyline serve` turns it on for its own server (serve.ui).
    "PREFECT_SERVER_UI_ENABLED": "false",
    # The temporary server takes 10-18 s to start on a small machine; Prefect's default is 20 s.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    # A run's log in Prefect's UI gets INFO: the engine's lines (prefect.flow_runs / task_runs) and,
    # through PREFECT_LOGGING_EXTRA_LOGGERS (below), the steps' own `storyline.*` lines. What the
    # terminal shows is the console handler's level (PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL).
    "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL": "INFO",
    "PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL": "INFO",
    # Step code also logs outside any run (direct commands, serve itself): not an error.
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}
STEP_LOGGER = "storyline"
_CONSOLE_LEVEL = "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"
_chosen = {_CONSOLE_LEVEL: ""}  # values configure_environment chose (a user's own are kept)


def configure_environment(*, quiet: bool = True) -> None:
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    extra = [n.strip() for n in os.environ.get("PREFECT_LOGGING_EXTRA_LOGGERS", "").split(",") if n.strip()]
    if STEP_LOGGER not in extra:
        os.environ["PREFECT_LOGGING_EXTRA_LOGGERS"] = ",".join([*extra, STEP_LOGGER])
    # Inherited by flow-run subprocesses, so `storyline -v serve` shows their INFO lines too. (The
    # package's import configures quietly first; the CLI's -v then replaces what that set.)
    console = "WARNING" if quiet else "INFO"
    if os.environ.get(_CONSOLE_LEVEL) in (None, _chosen[_CONSOLE_LEVEL]):
        os.environ[_CONSOLE_LEVEL] = _chosen[_CONSOLE_LEVEL] = console
    serve_pid = os.environ.get("STORYLINE_SERVE_PID")
    if serve_pid and serve_pid == str(os.getppid()):
        # A flow run started by `storyline serve`: it must not outlive serve, even a SIGKILLed one.
        # (SIGTERM's default action ends it; the next run marks its run row interrupted.)
        from flows.execution import die_with_parent

        die_with_parent()
    if quiet:
        # Model loading draws its own progress bars; ours (embedding, backfill) stay.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def send_step_logs_to_runs() -> None:
    """Where steps run as Prefect flows (called by ``flows.prefect_flows``): their ``storyline.*``
    INFO lines reach the run's log in Prefect (Prefect attached its API handler to that logger,
    PREFECT_LOGGING_EXTRA_LOGGERS), while the terminal keeps the console level. The CLI's own
    stderr handler (logging.basicConfig, which Prefect leaves in place) gets that level too."""
    step_logger = logging.getLogger(STEP_LOGGER)
    if step_logger.getEffectiveLevel() > logging.INFO:
        step_logger.setLevel(logging.INFO)
    level = logging.getLevelName(os.environ.get(_CONSOLE_LEVEL, "WARNING").upper())
    if not isinstance(level, int):
        return
    terminals = (sys.stderr, sys.stdout)
    for handler in logging.getLogger().handlers:
        # Only plain terminal handlers: test harnesses' capture handlers keep theirs.
        kind = type(handler)
        is_console = kind is logging.StreamHandler or kind.__name__ == "PrefectConsoleHandler"
        if is_console and getattr(handler, "stream", None) in terminals and handler.level < level:
            handler.setLevel(level)
