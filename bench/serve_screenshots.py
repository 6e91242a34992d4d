"""Screenshots of Prefect's UI during a `storyline serve` on the bundled sample feeds (for README).

    .venv/bin/python bench/serve_screenshots.py [--out docs]

Starts `storyline serve` in a temporary folder holding a copy of samples/ (ingest every 30 s, embed
and cluster every 45 s), waits until an ingest and an embed-and-cluster run have completed, runs
the `storyline-digest` deployment for the samples' busiest day (what the daily schedule does for
yesterday), then drives Debian's headless Chromium (devkit/browser.py) to the UI's flow-runs page,
a run's log and the digest artifact, and writes:

    docs/prefect-ui-flow-runs.png      the Runs page: the three deployments' runs and their states
    docs/prefect-ui-run-logs.png       an ingest run's log: one line per source fetched or failed
    docs/prefect-ui-digest-artifact.png  the daily-digest artifact (with the link to its HTML file)

Nothing leaves the machine: the UI is served by the local Prefect server, Chromium runs offline.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from devkit.browser import Chromium, chromium_path  # noqa: E402

DAY = "2026-11-20"  # the samples' busiest day (Makefile DEMO_DAY)
CONFIG = """db = "s.duckdb"
sources = "sources.toml"
[digest]
out_dir = "digests"
timezone = "UTC"
[schedule]
ingest_every_s = 30
cluster_every_s = 45
[serve]
port = 0
"""


def api_call(api: str, path: str, body: dict[str, Any] | None = None) -> Any:
    for attempt in range(5):  # a busy SQLite-backed server answers 503 now and then
        response = httpx.post(f"{api}/{path}", json=body or {}, timeout=30, trust_env=False)
        if response.status_code != 503:
            break
        time.sleep(1 + attempt)
    response.raise_for_status()
    return response.json()


def completed(api: str, flow_name: str) -> list[dict[str, Any]]:
    return api_call(api, "flow_runs/filter", {
        "flows": {"name": {"any_": [flow_name]}},
        "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
    })  # fmt: skip


def wait(what: str, check: Any, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(2)
    raise RuntimeError(f"timed out waiting for {what}")


def shoot(browser: Chromium, url: str, ready_text: str, png: Path) -> None:
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    browser.call("Page.enable", session=session)
    browser.call("Runtime.enable", session=session)
    browser.call("Page.navigate", {"url": url}, session=session)
    check = f"document.body && document.body.innerText.includes({ready_text!r})"
    try:
        wait(f"{ready_text!r} on {url}", lambda: browser.evaluate(check, session), timeout=60)
    except RuntimeError:
        print(browser.evaluate("document.body.innerText", session)[:3000])
        print([m.text for m in browser.console][:20])
        raise
    time.sleep(2)  # charts and icons settle
    shot = browser.call("Page.captureScreenshot", {"format": "png"}, session=session)
    png.write_bytes(base64.b64decode(shot["data"]))
    browser.call("Target.closeTarget", {"targetId": target})
    print(f"wrote {png}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args()
    if chromium_path() is None:
        sys.exit("chromium is not on PATH")
    out = args.out.resolve()
    with tempfile.TemporaryDirectory(prefix="serve-screens-") as tmp:
        work = Path(tmp)
        shutil.copytree(REPO / "samples" / "feeds", work / "feeds")
        shutil.copy(REPO / "samples" / "sources.toml", work / "sources.toml")
        (work / "storyline.toml").write_text(CONFIG)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "STORYLINE_"))}
        env |= {"PREFECT_HOME": str(work / ".prefect"), "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "serve"],
            cwd=work,
            env=env | {"PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True).start()
        try:
            found = wait("serve", lambda: re.search(r"Prefect API at (\S+/api);", "".join(lines)), 180)
            api = found.group(1)
            ui = api.removesuffix("/api")
            print("".join(lines), end="")
            wait(
                "an ingest and a cluster run", lambda: completed(api, "ingest") and completed(api, "cluster")
            )
            (digest,) = api_call(
                api, "deployments/filter", {"deployments": {"name": {"any_": ["storyline-digest"]}}}
            )
            api_call(api, f"deployments/{digest['id']}/create_flow_run", {"parameters": {"day": DAY}})
            wait("the digest run", lambda: completed(api, "digest"))
            ingest = max(
                completed(api, "ingest"),
                key=lambda r: len(
                    api_call(api, "logs/filter", {"logs": {"flow_run_id": {"any_": [r["id"]]}}})
                ),
            )
            newest_digest = {"artifacts": {"key": {"any_": ["daily-digest"]}}, "sort": "CREATED_DESC"}
            artifacts = wait("the digest artifact", lambda: api_call(api, "artifacts/filter", newest_digest))
            artifact = artifacts[0]
            out.mkdir(parents=True, exist_ok=True)
            with Chromium(timeout_s=60, window_size=(1400, 1600)) as browser:
                shoot(browser, f"{ui}/runs", "storyline-ingest", out / "prefect-ui-flow-runs.png")
                shoot(
                    browser,
                    f"{ui}/runs/flow-run/{ingest['id']}",
                    "Global Wire",
                    out / "prefect-ui-run-logs.png",
                )
                shoot(browser, f"{ui}/artifacts/artifact/{artifact['id']}", "HTML digest",
                      out / "prefect-ui-digest-artifact.png")  # fmt: skip
        finally:
            stop = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            print(f"serve stopped {time.monotonic() - stop:.1f} s after SIGTERM")
        print("".join(lines)[-2000:], end="")


if __name__ == "__main__":
    main()
