"""What a one-shot command costs beyond its work: ours (steps run directly when no Prefect server
is configured) against the same steps as Prefect flows on Prefect's temporary server, in one run.

    .venv/bin/python bench/cli_overhead.py [--repeat 3]

A database is built once from the bundled sample feeds (`storyline run`), then each command is
timed as a user runs it: a fresh process, wall time until it exits, median of --repeat runs.
`storyline cluster` has nothing new to do (the previous run saw everything), so its time is the
overhead itself. The baseline runs the same flow the command ran before (import Prefect, start the
temporary server, run the flow, stop the server).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

BASELINES = {
    "cluster": "from flows.prefect_flows import embed_and_cluster_flow as f; "
    "from pipeline.settings import load_settings; f(load_settings(db='bench.duckdb'))",
    "digest": "from flows.prefect_flows import digest_flow as f; from datetime import date; "
    "from pipeline.settings import load_settings; "
    "f(load_settings(db='bench.duckdb'), day=date(2026, 11, 20))",
}
COMMANDS = {
    "cluster": ["cluster", "--db", "bench.duckdb"],
    "digest": ["digest", "--db", "bench.duckdb", "--date", "2026-11-20"],
    "sql": ["sql", "--db", "bench.duckdb", "SELECT count(*) FROM articles"],
    "stories": ["stories", "--db", "bench.duckdb", "--limit", "5"],
}


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORYLINE_", "PREFECT_API"))}
    return env | {
        "PYTHONPATH": str(REPO),
        "PREFECT_HOME": str(home / ".prefect"),
        "STORYLINE_CONFIG": str(REPO / "samples" / "storyline.toml"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "ERROR",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    }


def _timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv} exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="storyline-cli-") as tmp:
        work = Path(tmp)
        env = _env(work)
        cli = [sys.executable, "-m", "flows.cli"]
        sources = str(REPO / "samples" / "sources.toml")
        first = _timed([*cli, "run", "--sources", sources, "--db", "bench.duckdb"], work, env)
        print(f"setup: `storyline run` on the sample feeds, {first:.1f} s\n")
        print(f"{'command':10s} {'ours (s)':>9s} {'as Prefect flow (s)':>20s} {'ratio':>7s}")
        for name, command in COMMANDS.items():
            ours = statistics.median(_timed([*cli, *command], work, env) for _ in range(args.repeat))
            if name in BASELINES:
                base = statistics.median(
                    _timed([sys.executable, "-c", BASELINES[name]], work, env) for _ in range(args.repeat)
                )
                print(f"{name:10s} {ours:9.2f} {base:20.2f} {base / ours:6.1f}x")
            else:
                print(f"{name:10s} {ours:9.2f} {'(never ran a flow)':>20s}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
