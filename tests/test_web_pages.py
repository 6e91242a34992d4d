"""`storyline web` pages and their JSON API twins, as a reader uses them: the front page by day,
topic and category, a story page (in real headless Chromium), search. The site: tests/web_site.py."""

from __future__ import annotations

import json

import pytest

from devkit.browser import CHROMIUM_MISSING, chromium_path, load_page
from tests.web_site import Site, page_checks, shared_site, storyline

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Site:
    return shared_site(tmp_path_factory, pytestconfig)


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


def test_search_for_hostage_exchange_finds_the_truce_story_first(site: Site) -> None:
    results = site.json("/api/search?q=hostage%20exchange")["results"]
    assert results[0]["story_id"] == site.truce
    done = storyline("search", "hostage exchange", "--db", str(site.db), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["story_id"] == site.truce
    narrowed = site.json("/api/search?q=hostage%20exchange&from=2026-11-22")["results"]
    assert site.truce not in [r["story_id"] for r in narrowed], "the date range applies"


@pytest.mark.browser
@pytest.mark.skipif(chromium_path() is None, reason=CHROMIUM_MISSING)
def test_the_truce_story_page_shows_its_seven_outlets_chart_and_brief(site: Site) -> None:
    page = load_page(f"{site.url}/stories/{site.truce}", evaluate=page_checks())
    outlets = [o for o in page.values["outlets"] if o != "wire copy"]
    assert len(outlets) == 7
    assert page.values["bars"] >= 7, "one bar segment per outlet and day at least"
    text = page.values["text"]
    assert "Mediators press Israel and Hamas toward a phased truce and hostage deal" in text
    assert "Brief" in text and ("(Global Wire)" in text or "(Harbor Times)" in text)
    assert "Coverage" in text and "Articles" in text
