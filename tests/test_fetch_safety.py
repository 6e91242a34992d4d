"""Fetching must not be steered into internal services or special files.

Redirects: a hop from a public address to a loopback, private or link-local one
is refused; sources configured on such addresses (these tests' own 127.0.0.1
server) keep working. Nothing here reaches the internet: where a test needs a
"public" server, a resolver passed to fetch_source gives the local server's
host name a public address, while the connection itself still goes to 127.0.0.1.

Local sources must be regular files: no devices, pipes, sockets, /proc or /sys.
"""

from __future__ import annotations

import os
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devkit.feed_server import FeedServer
from pipeline.feeds.fetch import (
    Resolver,
    fetch_source,
    is_public_address,
    is_transient,
    redirect_allowed,
    redirect_refusal,
    resolve_host,
)
from pipeline.records import FetchResult, FetchState, Source
from pipeline.settings import FetchSettings

FEED = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Gazette</title>'
    b"<item><title>Bridge approved</title><guid>1</guid></item></channel></rss>"
)
SETTINGS = FetchSettings(connect_timeout_s=3, read_timeout_s=3, deadline_s=6.0, max_bytes=64 * 1024)
NOW = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
PUBLIC = "93.184.216.34"  # a global address; never connected to


@pytest.fixture
def srv() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def fetch(url: str, **kwargs: object) -> FetchResult:
    return fetch_source(Source("Gazette", url), FetchState(), SETTINGS, now=NOW, **kwargs)  # type: ignore[arg-type]


def fake_dns(table: dict[str, list[str]]) -> Resolver:
    """A resolver: names in ``table`` get those addresses, everything else the system's."""

    def resolve(host: str, port: int) -> list[str]:
        return table[host] if host in table else resolve_host(host, port)

    return resolve


# --- the decision -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.255.255.1", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("64:ff9b::5db8:d822", True),  # NAT64 of 93.184.216.34
        ("not an address", False),
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert is_public_address(address) is public


@pytest.mark.parametrize(
    "target",
    [
        "http://10.255.255.1/feed.xml",
        "http://127.0.0.1:8080/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/feed.xml",
        "http://[::ffff:127.0.0.1]/feed.xml",
        "http://0.0.0.0/feed.xml",
        "http://localhost/feed.xml",  # resolved by the system: loopback
        "http://2130706433/feed.xml",  # 127.0.0.1 written as one number; the resolver reads it so
        "http://internal.example/feed.xml",  # a name with one internal address among public ones
    ],
)
def test_public_to_internal_is_refused(target: str) -> None:
    dns = fake_dns({"news.example": [PUBLIC], "internal.example": [PUBLIC, "10.0.0.7"]})
    assert not redirect_allowed("https://news.example/rss", target, resolve=dns)
    reason = redirect_refusal("https://news.example/rss", target, resolve=dns)
    assert reason and "not a public address" in reason


def test_allowed_redirects() -> None:
    dns = fake_dns(
        {"news.example": [PUBLIC], "cdn.example": ["2606:4700::1111"], "lan.example": ["10.1.1.1"]}
    )
    # public to public
    assert redirect_allowed("https://news.example/rss", "https://cdn.example/rss", resolve=dns)
    # a source configured on a loopback or private address is trusted, and so are its redirects
    assert redirect_allowed("http://127.0.0.1:8000/a.xml", "http://127.0.0.1:8000/b.xml", resolve=dns)
    assert redirect_allowed("http://127.0.0.1:8000/a.xml", "http://10.255.255.1/feed.xml", resolve=dns)
    assert redirect_allowed("http://lan.example/a.xml", "http://localhost/b.xml", resolve=dns)
    # going public is fine; coming back is the next hop's question
    assert redirect_allowed("http://lan.example/a.xml", "https://news.example/rss", resolve=dns)
    # a target that does not resolve cannot be reached at all: connecting fails later
    assert redirect_allowed("https://news.example/rss", "https://nowhere.invalid/rss", resolve=dns)


# --- the whole fetch, over real HTTP on 127.0.0.1 ----------------------------------------------------


def test_loopback_source_still_follows_loopback_redirects(srv: FeedServer) -> None:
    srv.route("/new.xml", FEED)
    srv.redirect("/old.xml", "/new.xml", status=301)
    srv.redirect("/abs.xml", srv.url("/new.xml").replace("127.0.0.1", "localhost"), status=302)
    res = fetch(srv.url("/old.xml"))
    assert res.status == "ok" and res.permanent_redirect and res.final_url == srv.url("/new.xml")
    res = fetch(srv.url("/abs.xml"))
    assert res.status == "ok" and res.body == FEED


def test_public_feed_redirecting_to_a_private_address_is_refused(srv: FeedServer) -> None:
    # The source's host counts as public; the server is still the local one.
    dns = fake_dns({"127.0.0.1": [PUBLIC]})
    srv.route("/internal.xml", FEED)
    srv.redirect("/to-lan.xml", "http://10.255.255.1/feed.xml", status=301)
    srv.redirect("/to-loopback.xml", srv.url("/internal.xml").replace("127.0.0.1", "localhost"), status=308)
    for path, address in (("/to-lan.xml", "10.255.255.1"), ("/to-loopback.xml", "127.0.0.1")):
        res = fetch(srv.url(path), resolve=dns)
        assert res.status == "error" and res.error_class == "blocked_redirect", res.error
        assert address in (res.error or "") and not is_transient(res)
        # a refused 301 must not become the source's new URL
        assert not res.permanent_redirect and res.final_url is None and res.body is None
        assert res.http_status in (301, 308)
    assert srv.requests_for("/internal.xml") == []


def test_a_changed_dns_answer_cannot_slip_past_the_check(srv: FeedServer) -> None:
    """DNS rebinding: the target looks public when checked, internal when connected to.

    The connection goes only to the addresses that were checked, so the second
    answer is checked too and refused before any request is sent.
    """
    calls: Counter[str] = Counter()
    lock = threading.Lock()

    def dns(host: str, port: int) -> list[str]:
        with lock:
            calls[host] += 1
            n = calls[host]
        if host == "127.0.0.1":
            return [PUBLIC]
        if host == "rebind.example":
            return [PUBLIC] if n == 1 else ["127.0.0.1"]
        return resolve_host(host, port)

    port = srv.base_url.rsplit(":", 1)[1]
    srv.route("/feed.xml", FEED)
    srv.redirect("/hop.xml", f"http://rebind.example:{port}/feed.xml", status=302)
    res = fetch(srv.url("/hop.xml"), resolve=dns)
    assert res.error_class == "blocked_redirect", res.error
    assert "127.0.0.1" in (res.error or "") and calls["rebind.example"] >= 2
    assert srv.requests_for("/feed.xml") == []


# --- local files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/proc/self/environ", "/proc/self/status", "/dev/zero", "/dev/null"])
def test_system_files_are_refused(path: str) -> None:
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    for url in (path, Path(path).as_uri()):
        res = fetch(url)
        assert res.status == "error" and res.error_class == "not_a_file", (url, res.error)
        assert path in (res.error or "") and res.body is None and not is_transient(res)


def test_links_to_system_files_are_refused(tmp_path: Path) -> None:
    if not os.path.exists("/proc/self/environ"):
        pytest.skip("no /proc here")
    (tmp_path / "env.xml").symlink_to("/proc/self/environ")
    (tmp_path / "zero.xml").symlink_to("/dev/zero")
    for name in ("env.xml", "zero.xml"):
        res = fetch(name, base_dir=tmp_path)
        assert res.error_class == "not_a_file" and res.body is None, res.error


def test_pipes_and_sockets_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "feed.fifo"
    os.mkfifo(fifo)
    sock_path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            # A pipe with no writer would block a plain open() forever; give it 20 s before failing.
            res = pool.submit(fetch, str(fifo)).result(timeout=20)
        assert res.error_class == "not_a_file" and "named pipe" in (res.error or "")
        res = fetch(sock_path.as_uri())
        assert res.error_class == "not_a_file" and "socket" in (res.error or "")
    finally:
        server.close()


def test_regular_files_and_links_to_them_still_work(tmp_path: Path) -> None:
    (tmp_path / "real.xml").write_bytes(FEED)
    (tmp_path / "link.xml").symlink_to(tmp_path / "real.xml")
    for name in ("real.xml", "link.xml"):
        res = fetch(name, base_dir=tmp_path)
        assert res.status == "ok" and res.body == FEED
    directory = fetch(str(tmp_path))
    assert directory.error_class == "not_found" and "directory" in (directory.error or "")
