"""How long `storyline serve` takes to start serving, with Prefect's UI on and off.

    .venv/bin/python bench/serve_startup.py [--repeat 3]

Each start is a fresh `storyline serve` process (local Prefect server on a free port, schedules far
in the future so no flow run competes for the CPU) timed from process start to:

  * "serving": the line serve prints once the server is healthy and the deployments are served;
  * "UI 200": the UI's root page answers 200 with HTML (UI on only);
  * "stopped": after SIGTERM, until serve and every process it started are gone.

Three situations: `cold` (a fresh PREFECT_HOME: the server creates its database; and, with the UI, a
fresh PREFECT_UI_STATIC_DIRECTORY, so the UI files are unpacked as on a first start), `warm` (the same
PREFECT_HOME and UI files again). Medians of --repeat runs; on and off alternate so load drifts hit
both alike.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flows.execution import processes_below, running  # noqa: E402

CONFIG = """db = "s.duckdb"
sources = "sources.toml"
[schedule]
ingest_every_s = 86400
cluster_every_s = 86400
digest_cron = "0 0 1 1 *"
[serve]
port = 0
ui = {ui}
"""


def one_start(workdir: Path, home: Path, static: Path, *, ui: bool) -> dict[str, float]:
    (workdir / "storyline.toml").write_text(CONFIG.format(ui=str(ui).lower()))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "STORYLINE_"))}
    env |= {"PREFECT_HOME": str(home), "PREFECT_UI_STATIC_DIRECTORY": str(static)}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve"],
        cwd=workdir,
        env=env | {"PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    times: dict[str, float] = {}
    lines: list[str] = []
    serving = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "serving ingest" in line and not serving.is_set():
                times["serving"] = time.monotonic() - started
                serving.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        if not serving.wait(180):
            raise RuntimeError("serve did not start:\n" + "".join(lines))
        api = next(x for x in lines if "Prefect API at" in x).split("Prefect API at ")[1].split(";")[0]
        if ui:
            while time.monotonic() - started < 180:
                page = httpx.get(api.removesuffix("/api") + "/", timeout=5, trust_env=False)
                if page.status_code == 200 and "<html" in page.text.lower():
                    times["ui_200"] = time.monotonic() - started
                    break
                time.sleep(0.1)
        children = set(processes_below(proc.pid))
    finally:
        stop = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        while any(running(p) for p in children) and time.monotonic() - stop < 60:
            time.sleep(0.05)
        times["stopped"] = time.monotonic() - stop
        reader.join(5)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict[tuple[str, bool], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="serve-startup-") as tmp:
        root = Path(tmp)
        (root / "feed.xml").write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
                                       "</channel></rss>")  # fmt: skip
        for ui in (True, False):
            work = root / f"work-{ui}"
            work.mkdir()
            (work / "sources.toml").write_text(f'[[sources]]\nname = "T"\nurl = "{root / "feed.xml"}"\n')
        for i in range(args.repeat):
            for ui in (True, False):
                work = root / f"work-{ui}"
                cold_home, static = root / f"home-{ui}-{i}", root / f"static-{ui}-{i}"
                results.setdefault(("cold", ui), []).append(one_start(work, cold_home, static, ui=ui))
                results.setdefault(("warm", ui), []).append(one_start(work, cold_home, static, ui=ui))
    print(f"storyline serve start-up, median of {args.repeat} (s), {os.cpu_count()} CPUs")
    print(f"{'start':6} {'UI':4} {'serving':>8} {'UI 200':>8} {'stopped':>8}   all 'serving' times")
    for (kind, ui), runs in sorted(results.items(), key=lambda kv: (kv[0][0], not kv[0][1])):

        def med(key: str, runs: list[dict[str, float]] = runs) -> str:
            values = [r[key] for r in runs if key in r]
            return f"{statistics.median(values):8.1f}" if values else f"{'-':>8}"

        every = ", ".join(f"{r['serving']:.1f}" for r in runs)
        state = "on" if ui else "off"
        print(f"{kind:6} {state:4} {med('serving')} {med('ui_200')} {med('stopped')}   {every}")


if __name__ == "__main__":
    main()
