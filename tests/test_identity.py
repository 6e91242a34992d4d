"""Article identity: one article gets one id however and wherever it is listed."""

from __future__ import annotations

import re

import pytest

from pipeline.articles.identity import article_id, canonical_url, content_hash


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://News.Example.COM/World/Story", "https://news.example.com/World/Story"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com/a#comments", "https://example.com/a"),
        ("https://example.com/a#xtor=RSS-1", "https://example.com/a"),
        # A post's own anchor on a day page identifies the post: kept.
        ("http://blog.example/2017/06/25.html#a080631", "http://blog.example/2017/06/25.html#a080631"),
        ("https://example.com/a/", "https://example.com/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/?b=2&a=1", "https://example.com/?a=1&b=2"),
        (
            "https://example.com/a?utm_source=rss&utm_medium=feed&id=7&fbclid=x&gclid=y&ocid=z&cmpid=q&smid=t",
            "https://example.com/a?id=7",
        ),
        ("https://example.com/a?ref=home&ref_src=twsrc&mc_cid=1&mc_eid=2", "https://example.com/a"),
        ("https://user:secret@example.com/a", "https://example.com/a"),
        ("  https://example.com/a  ", "https://example.com/a"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "ftp://example.com/a",
        "javascript:alert(1)",
        "mailto:x@example.com",
        "/local/path",
        "http://",
    ],
)
def test_only_http_urls_have_a_canonical_form(url: str | None) -> None:
    assert canonical_url(url) is None


def test_malformed_url_has_no_canonical_form_instead_of_raising() -> None:
    assert canonical_url("http://example.com:99999/a") is None
    assert canonical_url("http://[::1/a") is None


def test_ids_are_short_prefixed_hex() -> None:
    aid = article_id(source="s", guid="1", canonical=None, title="t", text="")
    assert re.fullmatch(r"a_[0-9a-f]{20}", aid)


def test_url_guid_gives_the_same_id_in_two_feeds() -> None:
    one = article_id(
        source="Wire", guid="https://example.com/story?utm_source=rss", canonical=None, title="A", text=""
    )
    two = article_id(source="Portal", guid="http://EXAMPLE.com/story/", canonical=None, title="B", text="x")
    three = article_id(
        source="Other", guid=None, canonical=canonical_url("https://example.com/story"), title="C", text=""
    )
    assert one == two == three


def test_opaque_guid_is_scoped_by_source() -> None:
    a = article_id(source="Gazette", guid="12345", canonical=None, title="t", text="")
    b = article_id(source="Herald", guid="12345", canonical=None, title="t", text="")
    assert a != b
    assert a == article_id(
        source="Gazette", guid="12345", canonical="https://x.example/other", title="u", text="v"
    )
    tag = "tag:example.com,2024:post-1"
    assert article_id(source="G", guid=tag, canonical=None, title="", text="") != article_id(
        source="H", guid=tag, canonical=None, title="", text=""
    )


def test_guid_wins_over_url_and_text() -> None:
    a = article_id(source="G", guid="42", canonical="https://example.com/a", title="Old title", text="old")
    b = article_id(source="G", guid="42", canonical="https://example.com/b", title="New title", text="new")
    assert a == b


def test_without_guid_or_url_the_id_comes_from_the_text() -> None:
    a = article_id(
        source="G", guid=None, canonical=None, title="Storm hits coast", text="Many homes lost power."
    )
    b = article_id(
        source="G", guid="  ", canonical=None, title="STORM hits coast!", text="Many homes  lost power"
    )
    c = article_id(source="G", guid=None, canonical=None, title="Storm hits coast", text="Power is back.")
    assert a == b
    assert a != c


def test_content_hash_ignores_case_whitespace_and_punctuation() -> None:
    assert content_hash("Storm hits coast", "Many homes lost power.") == content_hash(
        "storm  hits coast!", "many homes, lost power"
    )
    assert content_hash("Storm hits coast", "a") != content_hash("Storm hits coast", "b")
    assert content_hash("", "") == content_hash(" ", "")
