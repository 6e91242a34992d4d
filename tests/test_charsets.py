"""Feeds in legacy character sets come out as the text their publishers wrote, not as mojibake —
also when the charset is not declared, or declared as UTF-8 when it is not."""

from __future__ import annotations

import json

import pytest

from pipeline.feeds.parse import parse_feed

RUSSIAN = (
    "Как пережить новогоднюю ночь",
    "Наверное, единственное, во что сегодня можно верить безоговорочно, так это в то, что Новый год "
    "обязательно наступит. Несмотря ни на что!",
)
JAPANESE = (
    "ゲーム三昧な正月を過ごしました",
    "新しいゲーム機を買おうかと思っています。今年こそ遅れないように、発売日に並ぶつもりです。",
)
CHINESE = (
    "颱風來襲，全台停班停課",
    "中央氣象局今天上午發布海上及陸上颱風警報，各縣市政府宣布明天停止上班上課，請民眾做好防颱準備。",
)
HEBREW = (
    "הממשלה אישרה את התקציב החדש",
    "הכנסת תצביע על החוק בשבוע הבא, לאחר דיון סוער בוועדת הכספים שנמשך עד שעות הלילה המאוחרות.",
)


def _rss(title: str, description: str, *, declared: str | None) -> str:
    prolog = f'<?xml version="1.0" encoding="{declared}"?>\n' if declared else ""
    return (
        f'{prolog}<rss version="2.0"><channel><title>News</title><link>https://news.example/</link>\n'
        f"<item><title>{title}</title>\n<description>{description}</description>\n"
        "<guid>https://news.example/1</guid></item>\n</channel></rss>\n"
    )


@pytest.mark.parametrize(
    ("codec", "text"),
    [("koi8-r", RUSSIAN), ("euc-jp", JAPANESE), ("big5", CHINESE), ("windows-1255", HEBREW)],
)
def test_a_feed_in_an_undeclared_legacy_charset_is_read_in_that_charset(
    codec: str, text: tuple[str, str]
) -> None:
    title, description = text
    feed = parse_feed(_rss(title, description, declared=None).encode(codec))
    assert feed.error is None
    assert [(e.title, e.summary) for e in feed.entries] == [(title, description)]
    assert feed.warning and "not UTF-8" in feed.warning


@pytest.mark.parametrize("header", [None, "application/rss+xml; charset=utf-8"])
def test_windows_1255_declared_as_utf8_comes_out_as_hebrew(header: str | None) -> None:
    title, description = HEBREW
    body = _rss(title, description, declared="utf-8").encode("windows-1255")
    feed = parse_feed(body, content_type=header)
    assert [(e.title, e.summary) for e in feed.entries] == [(title, description)]
    assert feed.warning and "declared character set utf-8" in feed.warning


def test_a_utf8_feed_with_one_stray_byte_stays_utf8() -> None:
    title = "Zürich: Café-Preise steigen – São Paulo folgt"
    body = _rss(title, "Mehr dazu in Köln und Genève.", declared="utf-8").encode("utf-8")
    body = body.replace("São".encode(), b"S\xe3o")  # one Latin-1 byte in a UTF-8 document
    feed = parse_feed(body)
    assert feed.entries[0].title == "Zürich: Café-Preise steigen – S\ufffdo Paulo folgt"
    assert feed.entries[0].summary == "Mehr dazu in Köln und Genève."
    assert feed.warning and "1 invalid byte" in feed.warning


def test_a_feed_whose_declared_legacy_charset_is_right_is_left_alone() -> None:
    title, description = RUSSIAN
    feed = parse_feed(_rss(title, description, declared="koi8-r").encode("koi8-r"))
    assert feed.entries[0].title == title and feed.warning is None


def test_a_json_feed_without_items_is_an_empty_feed() -> None:
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "Quiet blog"}).encode()
    feed = parse_feed(body)
    assert (feed.entries, feed.error_class, feed.error) == ([], None, None)
    assert feed.title == "Quiet blog" and feed.version == "json11"


def test_a_json_feed_whose_items_are_not_a_list_is_malformed() -> None:
    body = json.dumps({"version": "https://jsonfeed.org/version/1", "items": {"id": "1"}}).encode()
    feed = parse_feed(body)
    assert feed.entries == [] and feed.error_class == "malformed" and "items" in (feed.error or "")
