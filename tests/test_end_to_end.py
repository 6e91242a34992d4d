"""The whole pass as a user runs it: `storyline run` on the bundled sample feeds, served over real
HTTP from 127.0.0.1, through real Prefect flows, the real model and a real DuckDB file."""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devkit.feed_server import FeedServer
from flows.cli import EXIT_OK, main
from tests.builders import count_rows, last_fetches, query, source_health, write_sources

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
OFFLINE = "http://127.0.0.1:9/feed.xml"

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


@dataclass
class Served:
    srv: FeedServer
    sources: Path
    db: Path
    http_sources: set[str]


def _write_http_sources(srv: FeedServer, target: Path) -> set[str]:
    """The demo's sources file, with every bundled feed served by the local server (ETag and
    Last-Modified set, so a second fetch can be answered 304)."""
    entries = tomllib.loads((SAMPLES / "sources.toml").read_text(encoding="utf-8"))["sources"]
    urls, served = {}, set()
    for s in entries:
        url = s["url"]
        if not url.startswith("http"):
            body = (SAMPLES / url).read_bytes()
            path = "/" + Path(url).name
            srv.route(
                path,
                body,
                content_type="application/rss+xml",
                etag='"' + hashlib.sha256(body).hexdigest()[:16] + '"',
                last_modified="Sat, 21 Nov 2026 12:00:00 GMT",
            )
            url = srv.url(path)
            served.add(s["name"])
        urls[s["name"]] = url
    write_sources(target, urls)
    return served


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("e2e")
    with FeedServer() as srv:
        sources = folder / "sources.toml"
        http_sources = _write_http_sources(srv, sources)
        yield Served(srv, sources, folder / "storyline.duckdb", http_sources)


@pytest.fixture(scope="module")
def first_run(served: Served) -> str:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["run", "--sources", str(served.sources), "--db", str(served.db)])
    assert code == EXIT_OK
    return out.getvalue()


def _expected_truce_guids() -> list[str]:
    expected = tomllib.loads((SAMPLES / "expected.toml").read_text(encoding="utf-8"))
    return expected["stories"]["truce"]["guids"]


def test_a_run_prints_sources_new_articles_and_stories(first_run: str) -> None:
    assert "sources: 12 (10 new content, 0 unchanged, 2 failed)" in first_run
    assert "new articles: 61" in first_run
    assert "stories: 7 touched (7 new" in first_run


def test_the_truce_negotiations_come_out_as_one_story_from_at_least_four_outlets(
    served: Served, first_run: str
) -> None:
    guids = _expected_truce_guids()
    rows = query(
        served.db,
        "SELECT DISTINCT sa.story_id FROM articles a JOIN story_articles sa USING (article_id) "
        "WHERE list_contains(?, a.guid)",
        [guids],
    )
    assert len(rows) == 1, "every truce article is in one story"
    (story,) = rows[0]
    (sources, independent, articles), *_ = query(
        served.db,
        "SELECT source_count, independent_source_count, article_count FROM story_summary WHERE story_id = ?",
        [story],
    )
    assert independent >= 4 and sources >= independent
    assert articles == len(guids)


def test_a_broken_feed_keeps_what_parsed_and_failed_sources_are_recorded(
    served: Served, first_run: str
) -> None:
    fetches = last_fetches(served.db)
    offline, observer, herald = (
        fetches[n] for n in ("Offline Gazette", "Valley Observer", "Riverside Herald")
    )
    assert (offline["status"], offline["error_class"]) == ("error", "connect_error")
    assert (observer["status"], observer["error_class"]) == ("error", "not_a_feed")
    assert "HTML page" in observer["error"]
    assert herald["status"] == "ok" and herald["entries"] == 4 and "not well-formed" in herald["warning"]
    health = source_health(served.db)
    assert health["Offline Gazette"]["health"] == health["Valley Observer"]["health"] == "failing"
    assert health["Global Wire"]["health"] == "ok"


def test_a_second_run_on_unchanged_feeds_adds_nothing_and_takes_the_304_path(
    served: Served, first_run: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = count_rows(served.db, "articles")
    served.srv.clear_log()
    assert main(["run", "--sources", str(served.sources), "--db", str(served.db)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "new articles: 0" in out
    assert "stories: unchanged (no new article since the last cluster run)" in out
    assert count_rows(served.db, "articles") == before
    second = query(
        served.db,
        "SELECT source, status, http_status FROM fetches WHERE run_id = (SELECT max(run_id) FROM fetches)",
    )
    http = {name: (status, code) for name, status, code in second if name in served.http_sources}
    # A source that served no feed keeps no validators: it is fetched in full until it does.
    assert http.pop("Valley Observer") == ("error", 200)
    assert set(http.values()) == {("not_modified", 304)}, http
    conditional = [r for r in served.srv.requests if "if-none-match" in r.headers]
    assert len(conditional) == len(http)
    assert count_rows(served.db, "story_articles") == count_rows(served.db, "membership_changes"), (
        "nothing moved between stories"
    )


def test_stories_and_sql_commands_read_the_database(
    served: Served, first_run: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stories", "--db", str(served.db), "--json", "--limit", "3"]) == EXIT_OK
    stories = json.loads(capsys.readouterr().out)
    assert len(stories) == 3 and stories[0]["independent_source_count"] >= 4
    sql = "SELECT story_id, article_count FROM story_summary ORDER BY article_count DESC LIMIT 1"
    assert main(["sql", sql, "--db", str(served.db), "--csv"]) == EXIT_OK
    header, row = capsys.readouterr().out.strip().splitlines()
    assert header == "story_id,article_count" and row.split(",")[1] == "18"


def test_user_sql_cannot_write_or_read_files(
    served: Served, first_run: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for sql in (
        "DELETE FROM articles",
        "CREATE TABLE x (i INT)",
        f"COPY articles TO '{served.db.parent / 'leak.csv'}'",
        "SELECT * FROM read_csv('/etc/passwd')",
    ):
        assert main(["sql", sql, "--db", str(served.db)]) == 3, sql
    assert not (served.db.parent / "leak.csv").exists()
    assert "query failed" in capsys.readouterr().err
    assert count_rows(served.db, "articles") == 61


def _digest(served: Served, day: str, out: Path) -> Path:
    assert main(["digest", "--db", str(served.db), "--date", day, "--out", str(out)]) == EXIT_OK
    return out / f"digest-{day}.html"


def test_the_digest_flow_writes_html_and_markdown_and_publishes_a_prefect_artifact(
    served: Served, first_run: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a Prefect server configured, `storyline digest` runs as a flow and publishes the digest."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.settings import PREFECT_API_URL

    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))
    html_path = _digest(served, "2026-11-20", tmp_path)
    markdown = (tmp_path / "digest-2026-11-20.md").read_text(encoding="utf-8")
    assert markdown.startswith("# Storyline digest — Friday 20 November 2026")
    assert "Mediators press Israel and Hamas toward a phased truce" in markdown
    assert html_path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

    async def latest() -> list:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["daily-digest"]))
            )

    artifacts = asyncio.run(latest())
    assert artifacts and any(a.type == "markdown" and a.data == markdown for a in artifacts)


@pytest.mark.browser
def test_the_sample_digests_open_cleanly_in_a_browser_and_no_feed_payload_runs(
    served: Served, first_run: str, tmp_path: Path
) -> None:
    from devkit.browser import CHROMIUM_MISSING, chromium_path, load_page

    if chromium_path() is None:
        pytest.skip(CHROMIUM_MISSING)
    checks = {
        "executed": "document.title.includes('alert') || typeof window.__pwned !== 'undefined'",
        "active": "document.querySelectorAll('script, img, svg, iframe, object, embed, form, math').length",
        "protocols": "[...document.querySelectorAll('a[href]')].map(a => a.protocol)",
        "rels": "[...document.querySelectorAll('a[href]')].map(a => a.rel)",
        "text": "document.body.innerText",
    }
    pages = {day: load_page(_digest(served, day, tmp_path), evaluate=checks) for day in
             ("2026-11-19", "2026-11-20", "2026-11-21")}  # fmt: skip
    for day, page in pages.items():
        assert page.console_errors == [], day
        assert page.values["executed"] is False and page.values["active"] == 0, day
        assert set(page.values["protocols"]) == {"https:"}, day
        assert set(page.values["rels"]) == {"noopener noreferrer"}, day
    friday = pages["2026-11-20"].values["text"]
    assert "Mediators press Israel and Hamas toward a phased truce and hostage deal" in friday
    covered = next(line for line in friday.splitlines() if line.startswith("Covered by:"))
    assert len(covered.split(",")) >= 4
    # The feed items that carry payloads are there, as inert text.
    assert "Halcyon H9: first benchmarks" in pages["2026-11-19"].values["text"]
    assert "Chile quake: live map of aftershocks" in friday
    assert "<img src=x onerror=alert(1)>" in pages["2026-11-21"].values["text"]
