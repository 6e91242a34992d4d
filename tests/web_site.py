"""The site `storyline web` tests read: a real server process on a free loopback port, serving a
real DuckDB built by `storyline run` from the bundled sample feeds (plus two hostile feeds).

Built once per test session (``shared_site``; a fixture imported into several modules would be
built once per module) and shared by tests/test_web_pages.py, test_web_safety.py and
test_web_updates.py. Those run in name order: pages and safety only read, updates (a second run,
a merge, a run while readers read) change the database last.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.builders import query, rss, rss_item, write_sources

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

# Every payload, if it ever ran, would set this mark; the script builds it from pieces so the
# inert text of a payload never contains it.
SET_MARK = "document.title='PW'+'NED';document.documentElement.setAttribute('data-'+'pwned','1')"
EXECUTED = "document.title.includes('PWNED') || document.documentElement.hasAttribute('data-pwned')"
ACTIVE = "document.querySelectorAll('script, iframe, object, embed, img, math, foreignObject').length"
SCRIPT_LINKS = (
    "[...document.querySelectorAll('a[href]')].filter(a => !['http:', 'https:'].includes(a.protocol)).length"
)
HOSTILE_SOURCE = 'Dam Watch <img src=x onerror="' + SET_MARK + '">'
DAM = (
    "The Kariba dam spillway gates were opened on Tuesday after record rainfall raised the lake "
    "to its highest level in forty years, and engineers said the wall was holding."
)


def _hostile_feeds(folder: Path) -> dict[str, str]:
    """Two outlets reporting one event, with script, svg/javascript: and onerror payloads in titles,
    texts and links (escaped in the XML, so the stored text literally contains the markup)."""
    esc = {"<": "&lt;", ">": "&gt;", '"': "&quot;", "&": "&amp;"}

    def x(text: str) -> str:
        return "".join(esc.get(c, c) for c in text)

    first = rss(
        rss_item(
            "dam-1",
            x(f"<script>{SET_MARK}</script>Kariba dam gates opened as lake hits record level"),
            x(f'<svg onload="{SET_MARK}"><a xlink:href="javascript:{SET_MARK}">map</a></svg>') + " " + DAM,
            link=x(f"javascript:{SET_MARK}"),
        ),
        title="Dam Watch",
    )
    second = rss(
        rss_item(
            "dam-2",
            x(f'<img src=x onerror="{SET_MARK}">Kariba dam spillway opened after record rain'),
            "Engineers opened the Kariba dam spillway gates on Tuesday as record rainfall pushed the lake "
            "to its highest level in forty years; they said the dam wall was holding.",
            link="https://riverpost.example/kariba",
        ),
        title="River Post",
    )
    (folder / "dam-watch.xml").write_text(first, encoding="utf-8")
    (folder / "river-post.xml").write_text(second, encoding="utf-8")
    return {HOSTILE_SOURCE: str(folder / "dam-watch.xml"), "River Post": str(folder / "river-post.xml")}


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORYLINE_", "PREFECT_API"))}
    env["STORYLINE_CONFIG"] = str(SAMPLES / "storyline.toml")
    return env


def storyline(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=cli_env(),
        timeout=timeout, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, *, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


@dataclass
class Site:
    url: str
    db: Path
    sources: Path
    folder: Path
    truce: str
    proc: subprocess.Popen[str]

    def json(self, path: str) -> object:
        status, body, _ = get(self.url + path)
        assert status == 200, (path, status, body[:300])
        return json.loads(body)


def start_server(
    db: Path, port: int, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "web", "--db", str(db), "--port", str(port), *extra],
        env=env or cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip


def wait_until_up(url: str, proc: subprocess.Popen[str], *, headers: dict[str, str] | None = None) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise AssertionError(
                f"server exited {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}"
            )
        try:
            if get(url + "/api/status", headers=headers)[0] in (200, 401):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not come up")


def _build_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    folder = tmp_path_factory.mktemp("web")
    entries = tomllib.loads((SAMPLES / "sources.toml").read_text(encoding="utf-8"))["sources"]
    urls = {s["name"]: s["url"] if s["url"].startswith("http") else str(SAMPLES / s["url"]) for s in entries}
    urls |= _hostile_feeds(folder)
    sources = write_sources(folder / "sources.toml", urls)
    # Two outlets filed under a category, as an OPML import would file them.
    text = sources.read_text(encoding="utf-8")
    for outlet in ("Global Wire", "Harbor Times"):
        text = text.replace(f'name = "{outlet}"\n', f'name = "{outlet}"\ncategory = "World"\n')
    sources.write_text(text, encoding="utf-8")
    db = folder / "storyline.duckdb"
    done = storyline("run", "--sources", str(sources), "--db", str(db))
    assert done.returncode == 0, done.stderr
    guids = tomllib.loads((SAMPLES / "expected.toml").read_text(encoding="utf-8"))["stories"]["truce"][
        "guids"
    ]
    (truce,), *_ = query(
        db, "SELECT DISTINCT sa.story_id FROM articles a JOIN story_articles sa USING (article_id) "
        "WHERE list_contains(?, a.guid)", [guids],
    )  # fmt: skip
    port = free_port()
    proc = start_server(db, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc)
    except BaseException:
        _stop(proc)
        raise
    return Site(url, db, sources, folder, truce, proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


_SITE: list[Site] = []


def shared_site(tmp_path_factory: pytest.TempPathFactory, config: pytest.Config) -> Site:
    """The site, built on first use and stopped when the test session ends."""
    if not _SITE:
        _SITE.append(_build_site(tmp_path_factory))
        config.add_cleanup(lambda: _stop(_SITE.pop().proc))
    return _SITE[0]


def live_stories(site: Site) -> list[str]:
    return [
        r[0] for r in query(site.db, "SELECT story_id FROM stories WHERE status = 'live' ORDER BY story_id")
    ]


def page_checks() -> dict[str, str]:
    return {"executed": EXECUTED, "active": ACTIVE, "script_links": SCRIPT_LINKS,
            "text": "document.body.innerText",
            "outlets": "[...document.querySelectorAll('.legend li')].map(li => li.textContent.trim())",
            "bars": "document.querySelectorAll('.chart svg rect').length"}  # fmt: skip


def get_no_redirect(url: str) -> tuple[int, bytes, dict[str, str]]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), {k.lower(): v for k, v in exc.headers.items()}
