"""Process-wide defaults for running offline and quietly. Import before prefect."""

from __future__ import annotations

import os

_DEFAULTS = {
    # Nothing may reach a model hub at run time.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # Telemetry off: without these a cold Prefect start logs a "database is locked" error offline.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_UI_ENABLED": "false",
    # The temporary server takes 10-18 s to start on a small machine; Prefect's default is 20 s.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}


def configure_environment(*, quiet: bool = True) -> None:
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
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
        os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
