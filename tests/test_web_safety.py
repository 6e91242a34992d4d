"""`storyline web` safety and access: bad input is a 4xx page, hostile feed text never runs in real
headless Chromium, listening beyond loopback needs a token (or --public) and a token is enforced.
The site: tests/web_site.py."""

from __future__ import annotations

import pytest

from devkit.browser import CHROMIUM_MISSING, chromium_path, load_page
from tests.web_site import (
    Site,
    cli_env,
    free_port,
    get,
    live_stories,
    page_checks,
    shared_site,
    start_server,
    storyline,
    wait_until_up,
)

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Site:
    return shared_site(tmp_path_factory, pytestconfig)


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
        status, _, headers = get(site.url + path.replace(" ", "%20").replace("'", "%27"))
        assert status == code, path
        assert "default-src 'none'" in headers["content-security-policy"]


@pytest.mark.browser
@pytest.mark.skipif(chromium_path() is None, reason=CHROMIUM_MISSING)
def test_pages_load_cleanly_in_chromium_and_no_feed_payload_runs(site: Site) -> None:
    paths = ["/", "/?date=2026-11-19", "/?date=2026-11-20", "/?date=2026-11-21&topic=Gaza+truce",
             "/search?q=kariba+dam", "/search?q=hostage+exchange", "/sources",
             "/digests/2026-11-20"]  # fmt: skip
    paths += [f"/stories/{sid}" for sid in live_stories(site)]
    seen_payload = False
    for path in paths:
        page = load_page(site.url + path, evaluate=page_checks())
        assert page.console_errors == [], path
        assert page.values["executed"] is False and "PWNED" not in page.title, path
        assert page.values["active"] == 0 and page.values["script_links"] == 0, path
        seen_payload |= "onerror=" in page.values["text"] or "<script>" in page.values["text"]
    assert seen_payload, "the hostile feed text is shown somewhere, as inert characters"


def test_listening_beyond_loopback_needs_a_token_or_public(site: Site) -> None:
    refused = storyline("web", "--db", str(site.db), "--host", "0.0.0.0", "--port", str(free_port()))
    assert refused.returncode == 2
    assert "refusing to listen on 0.0.0.0" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


def test_with_a_token_every_request_must_carry_it(site: Site) -> None:
    port = free_port()
    token = "s3cret-token-for-tests-0123"
    proc = start_server(site.db, port, env=cli_env() | {"STORYLINE_WEB__TOKEN": token})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, proc)
        assert get(url + "/api/stories")[0] == 401
        assert get(url + "/api/stories", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert get(url + "/api/stories", headers={"Authorization": f"Bearer {token}"})[0] == 200
        assert get(url + f"/feeds/stories.atom?token={token}")[0] == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 130, "SIGTERM stops it cleanly (as any command: 130)"
