"""`storyline web` as the database changes under it: Atom feeds keep their entry ids across runs, a
retired story id redirects to its live story, and the app keeps answering while `storyline run`
writes. Runs after test_web_pages/test_web_safety (name order): these tests change the shared
site's database (tests/web_site.py)."""

from __future__ import annotations

import threading
import time
import tomllib
import xml.etree.ElementTree as ET

import feedparser
import pytest

from tests.builders import query, rss, rss_item, write_sources
from tests.web_site import Site, get, get_no_redirect, live_stories, shared_site, storyline

pytestmark = [pytest.mark.slow]

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Site:
    return shared_site(tmp_path_factory, pytestconfig)


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
    status, body, headers = get(site.url + "/feeds/stories.atom")
    assert status == 200 and headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(body)
    assert parsed.bozo == 0 and parsed.version == "atom10"
    ids = _check_rfc4287(ET.fromstring(body))
    assert f"tag:storyline.localhost,2026:story/{site.truce}" in ids
    truce = next(e for e in parsed.entries if e.id.endswith(site.truce))
    assert "Global Wire" in truce.content[0].value and truce.link == f"{site.url}/stories/{site.truce}"
    topic = feedparser.parse(get(site.url + "/feeds/topics/Gaza%20truce.atom")[1])
    assert topic.bozo == 0 and [e.id for e in topic.entries] == [truce.id]

    out = site.folder / "stories.atom"
    first = storyline("feed", "--db", str(site.db), "--out", str(out))
    assert first.returncode == 0, first.stderr
    first_ids = _check_rfc4287(ET.fromstring(out.read_bytes()))
    again = storyline("run", "--sources", str(site.sources), "--db", str(site.db))
    assert again.returncode == 0, again.stderr
    assert storyline("feed", "--db", str(site.db), "--out", str(out)).returncode == 0
    assert _check_rfc4287(ET.fromstring(out.read_bytes())) == first_ids, "a second run keeps every entry id"
    assert sorted(first_ids) == sorted(ids)


def test_a_retired_story_id_redirects_to_its_live_story(site: Site) -> None:
    # Retire one story into another the way a cluster run's merge does (storage's own write path).
    from datetime import UTC, datetime

    from pipeline.stories.assign import LineageEvent, MembershipChange
    from storage.db import open_db, transaction
    from storage.stories import apply_story_update

    keep, gone = site.truce, next(s for s in live_stories(site) if s != site.truce)
    moved = [r[0] for r in query(site.db, "SELECT article_id FROM story_articles WHERE story_id = ?", [gone])]
    with open_db(site.db) as con, transaction(con):
        apply_story_update(
            con, run_id=0, now=datetime.now(UTC),
            changes=[MembershipChange(a, gone, keep, "merge") for a in moved],
            new_stories=[], lineage=[LineageEvent("merge", gone, keep)], retired=[gone],
        )  # fmt: skip
    for _ in range(300):  # the app copies the file again once it is quiet
        status, _, headers = get_no_redirect(f"{site.url}/stories/{gone}")
        if status == 301:
            break
        time.sleep(0.1)
    assert status == 301 and headers["location"] == f"/stories/{keep}"
    story = site.json(f"/api/stories/{keep}")
    assert gone in [m["story_id"] for m in story["lineage"]["merged_from"]]


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
                    statuses.append(get(site.url + path)[0])
                except OSError:
                    statuses.append(-1)

    threads = [threading.Thread(target=readers) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        run = storyline("run", "--sources", str(sources), "--db", str(site.db))
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
