"""`storyline web` as a reader uses it: a real server process on a free loopback port, serving a
real DuckDB built by `storyline run` from the bundled sample feeds (plus two hostile feeds),
checked over HTTP and in real headless Chromium, while another `storyline run` writes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import feedparser
import pytest

from tests.browser import CHROMIUM_MISSING, chromium_path, load_page
from tests.builders import query, rss, rss_item, write_sources

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
ATOM = "{http://www.w3.org/2005/Atom}"

pytestmark = [pytest.mark.slow]

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


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STORYLINE_", "PREFECT_API"))}
    env["STORYLINE_CONFIG"] = str(SAMPLES / "storyline.toml")
    return env


def _storyline(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, env=_env(),
        timeout=timeout, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, *, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
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
        status, body, _ = _get(self.url + path)
        assert status == 200, (path, status, body[:300])
        return json.loads(body)


def _start_server(
    db: Path, port: int, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "web", "--db", str(db), "--port", str(port), *extra],
        env=env or _env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip


def _wait_until_up(url: str, proc: subprocess.Popen[str], *, headers: dict[str, str] | None = None) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise AssertionError(
                f"server exited {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}"
            )
        try:
            if _get(url + "/api/status", headers=headers)[0] in (200, 401):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not come up")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
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
    done = _storyline("run", "--sources", str(sources), "--db", str(db))
    assert done.returncode == 0, done.stderr
    guids = tomllib.loads((SAMPLES / "expected.toml").read_text(encoding="utf-8"))["stories"]["truce"][
        "guids"
    ]
    (truce,), *_ = query(
        db, "SELECT DISTINCT sa.story_id FROM articles a JOIN story_articles sa USING (article_id) "
        "WHERE list_contains(?, a.guid)", [guids],
    )  # fmt: skip
    port = _free_port()
    proc = _start_server(db, port)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, proc)
        yield Site(url, db, sources, folder, truce, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _live_stories(site: Site) -> list[str]:
    return [
        r[0] for r in query(site.db, "SELECT story_id FROM stories WHERE status = 'live' ORDER BY story_id")
    ]


def test_every_api_page_answers_with_its_data(site: Site) -> None:
    front = site.json("/api/stories?date=2026-11-20")
    assert front["stories"][0]["story_id"] == site.truce
    assert front["stories"][0]["brief"]["sentences"], "the top story carries its brief"
    topic = site.json("/api/stories?date=2026-11-20&topic=Gaza%20truce")
    assert [s["story_id"] for s in topic["stories"]] == [site.truce]
    world = site.json("/api/stories?date=2026-11-20&category=World")
    everything = [s["story_id"] for s in front["stories"]]
    assert site.truce in [s["story_id"] for s in world["stories"]]
    assert set(s["story_id"] for s in world["stories"]) <= set(everything)
    assert all({"Global Wire", "Harbor Times"} & set(s["outlets"]) for s in world["stories"])
    assert world["categories"] == ["World"]
    story = site.json(f"/api/stories/{site.truce}")
    assert len(story["outlets"]) == 7 and story["article_count"] == 18
    sources = site.json("/api/sources")
    health = {s["name"]: s for s in sources["sources"]}
    assert health["Offline Gazette"]["health"] == "failing" and health["Offline Gazette"]["fetches"]


def test_bad_requests_are_4xx_pages_not_errors(site: Site) -> None:
    for path, code in [
        ("/stories/s_000000000000", 404),
        ("/stories/' OR 1=1 --", 404),
        ("/?date=2026-13-45", 400),
        ("/?topic=Nope", 400),
        ("/?category=Nope", 400),
        ("/api/search?q=" + "x" * 300, 400),
        ("/digests/yesterday", 400),
        ("/no/such/page", 404),
    ]:
        status, _, headers = _get(site.url + path.replace(" ", "%20").replace("'", "%27"))
        assert status == code, path
        assert "default-src 'none'" in headers["content-security-policy"]


def test_search_for_hostage_exchange_finds_the_truce_story_first(site: Site) -> None:
    results = site.json("/api/search?q=hostage%20exchange")["results"]
    assert results[0]["story_id"] == site.truce
    done = _storyline("search", "hostage exchange", "--db", str(site.db), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["story_id"] == site.truce
    narrowed = site.json("/api/search?q=hostage%20exchange&from=2026-11-22")["results"]
    assert site.truce not in [r["story_id"] for r in narrowed], "the date range applies"


def _checks() -> dict[str, str]:
    return {"executed": EXECUTED, "active": ACTIVE, "script_links": SCRIPT_LINKS,
            "text": "document.body.innerText",
            "outlets": "[...document.querySelectorAll('.legend li')].map(li => li.textContent.trim())",
            "bars": "document.querySelectorAll('.chart svg rect').length"}  # fmt: skip


@pytest.mark.browser
@pytest.mark.skipif(chromium_path() is None, reason=CHROMIUM_MISSING)
def test_pages_load_cleanly_in_chromium_and_no_feed_payload_runs(site: Site) -> None:
    paths = ["/", "/?date=2026-11-19", "/?date=2026-11-20", "/?date=2026-11-21&topic=Gaza+truce",
             "/search?q=kariba+dam", "/search?q=hostage+exchange", "/sources",
             "/digests/2026-11-20"]  # fmt: skip
    paths += [f"/stories/{sid}" for sid in _live_stories(site)]
    seen_payload = False
    for path in paths:
        page = load_page(site.url + path, evaluate=_checks())
        assert page.console_errors == [], path
        assert page.values["executed"] is False and "PWNED" not in page.title, path
        assert page.values["active"] == 0 and page.values["script_links"] == 0, path
        seen_payload |= "onerror=" in page.values["text"] or "<script>" in page.values["text"]
    assert seen_payload, "the hostile feed text is shown somewhere, as inert characters"


@pytest.mark.browser
@pytest.mark.skipif(chromium_path() is None, reason=CHROMIUM_MISSING)
def test_the_truce_story_page_shows_its_seven_outlets_chart_and_brief(site: Site) -> None:
    page = load_page(f"{site.url}/stories/{site.truce}", evaluate=_checks())
    outlets = [o for o in page.values["outlets"] if o != "wire copy"]
    assert len(outlets) == 7
    assert page.values["bars"] >= 7, "one bar segment per outlet and day at least"
    text = page.values["text"]
    assert "Mediators press Israel and Hamas toward a phased truce and hostage deal" in text
    assert "Brief" in text and ("(Global Wire)" in text or "(Harbor Times)" in text)
    assert "Coverage" in text and "Articles" in text


def _check_rfc4287(root: ET.Element) -> list[str]:
    """The elements RFC 4287 requires (4.1.1, 4.1.2), with tag-URI ids; returns the entry ids."""
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated", "author"):
        assert root.find(f"{ATOM}{name}") is not None, name
    ids = []
    for entry in root.findall(f"{ATOM}entry"):
        for name in ("id", "title", "updated"):
            assert len(entry.findall(f"{ATOM}{name}")) == 1, name
        content = entry.find(f"{ATOM}content")
        assert content is not None and content.get("type") == "html"
        ids.append(entry.findtext(f"{ATOM}id") or "")
    assert all(i.startswith("tag:storyline.localhost,2026:story/s_") for i in ids)
    return ids


def test_atom_feeds_validate_and_keep_their_entry_ids(site: Site) -> None:
    status, body, headers = _get(site.url + "/feeds/stories.atom")
    assert status == 200 and headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0 and parsed.version == "atom10"
    ids = _check_rfc4287(ET.fromstring(body))
    assert f"tag:storyline.localhost,2026:story/{site.truce}" in ids
    truce = next(e for e in parsed.entries if e.id.endswith(site.truce))
    assert "Global Wire" in truce.content[0].value and truce.link == f"{site.url}/stories/{site.truce}"
    topic = feedparser.parse(_get(site.url + "/feeds/topics/Gaza%20truce.atom")[1])
    assert topic.bozo == 0 and [e.id for e in topic.entries] == [truce.id]

    out = site.folder / "stories.atom"
    first = _storyline("feed", "--db", str(site.db), "--out", str(out))
    assert first.returncode == 0, first.stderr
    first_ids = _check_rfc4287(ET.fromstring(out.read_bytes()))
    again = _storyline("run", "--sources", str(site.sources), "--db", str(site.db))
    assert again.returncode == 0, again.stderr
    assert _storyline("feed", "--db", str(site.db), "--out", str(out)).returncode == 0
    assert _check_rfc4287(ET.fromstring(out.read_bytes())) == first_ids, "a second run keeps every entry id"
    assert sorted(first_ids) == sorted(ids)


def test_a_retired_story_id_redirects_to_its_live_story(site: Site) -> None:
    # Retire one story into another the way a cluster run's merge does (storage's own write path).
    from datetime import UTC, datetime

    from pipeline.stories.assign import LineageEvent, MembershipChange
    from storage.db import open_db, transaction
    from storage.stories import apply_story_update

    keep, gone = site.truce, next(s for s in _live_stories(site) if s != site.truce)
    moved = [r[0] for r in query(site.db, "SELECT article_id FROM story_articles WHERE story_id = ?", [gone])]
    with open_db(site.db) as con, transaction(con):
        apply_story_update(
            con, run_id=0, now=datetime.now(UTC),
            changes=[MembershipChange(a, gone, keep, "merge") for a in moved],
            new_stories=[], lineage=[LineageEvent("merge", gone, keep)], retired=[gone],
        )  # fmt: skip
    for _ in range(300):  # the app copies the file again once it is quiet
        status, _, headers = _get_no_redirect(f"{site.url}/stories/{gone}")
        if status == 301:
            break
        time.sleep(0.1)
    assert status == 301 and headers["location"] == f"/stories/{keep}"
    story = site.json(f"/api/stories/{keep}")
    assert gone in [m["story_id"] for m in story["lineage"]["merged_from"]]


def _get_no_redirect(url: str) -> tuple[int, bytes, dict[str, str]]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), {k.lower(): v for k, v in exc.headers.items()}


def test_the_app_keeps_answering_while_storyline_run_writes(site: Site) -> None:
    """A run that adds articles (a new outlet) writes while readers hammer the app: the run exits 0,
    no request fails, and the app shows the new story once the run is done."""
    later = rss(
        rss_item("quake-1", "Strong earthquake strikes off Hokkaido", "A magnitude 6.8 earthquake struck off "
                 "Hokkaido on Sunday, prompting a tsunami advisory along the northern coast of Japan."),
        rss_item("quake-2", "Hokkaido quake: tsunami advisory lifted", "Japan lifted a tsunami advisory for "
                 "Hokkaido after a magnitude 6.8 earthquake struck offshore on Sunday, officials said."),
        title="Late Wire",
    )  # fmt: skip
    (site.folder / "late.xml").write_text(later, encoding="utf-8")
    entries = tomllib.loads(site.sources.read_text(encoding="utf-8"))["sources"]
    sources = write_sources(
        site.folder / "sources-2.toml",
        {s["name"]: s["url"] for s in entries} | {"Late Wire": str(site.folder / "late.xml")},
    )
    statuses: list[int] = []
    stop = threading.Event()

    def readers() -> None:
        paths = ["/", f"/stories/{site.truce}", "/search?q=earthquake", "/api/stories", "/sources"]
        while not stop.is_set():
            for path in paths:
                try:
                    statuses.append(_get(site.url + path)[0])
                except OSError:
                    statuses.append(-1)

    threads = [threading.Thread(target=readers) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        run = _storyline("run", "--sources", str(sources), "--db", str(site.db))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert run.returncode == 0, run.stderr
    assert statuses and set(statuses) == {200}, {s: statuses.count(s) for s in set(statuses)}
    for _ in range(300):
        results = site.json("/api/search?q=Hokkaido%20earthquake")["results"]  # type: ignore[index]
        if results and "Hokkaido" in (results[0]["headline"] or ""):
            break
        time.sleep(0.1)
    assert "Hokkaido" in (results[0]["headline"] or "")


def test_listening_beyond_loopback_needs_a_token_or_public(site: Site) -> None:
    refused = _storyline("web", "--db", str(site.db), "--host", "0.0.0.0", "--port", str(_free_port()))
    assert refused.returncode == 2
    assert "refusing to listen on 0.0.0.0" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


def test_with_a_token_every_request_must_carry_it(site: Site) -> None:
    port = _free_port()
    token = "s3cret-token-for-tests-0123"
    proc = _start_server(site.db, port, env=_env() | {"STORYLINE_WEB__TOKEN": token})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, proc)
        assert _get(url + "/api/stories")[0] == 401
        assert _get(url + "/api/stories", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert _get(url + "/api/stories", headers={"Authorization": f"Bearer {token}"})[0] == 200
        assert _get(url + f"/feeds/stories.atom?token={token}")[0] == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 130, "SIGTERM stops it cleanly (as any command: 130)"
