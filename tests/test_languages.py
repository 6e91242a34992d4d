"""Each article's language: detected offline unless its source configures one, stored, used for
keyword stop words, and shown in the digest where it differs from the digest's main language.
Also the digest's category filter, which shares the digest's per-article data."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from flows.cli import EXIT_OK, main
from pipeline.articles.language import detect_language
from pipeline.articles.normalise import article_from_record, entries_to_articles
from pipeline.digest.html_page import render_html
from pipeline.digest.markdown_page import render_markdown
from pipeline.digest.rank import (
    DigestArticle,
    DigestHeader,
    DigestStory,
    in_category,
    main_language,
    rank_stories,
)
from pipeline.feeds.parse import parse_feed
from pipeline.records import Source
from pipeline.stories.labels import ctfidf_keywords
from pipeline.stories.stop_words import has_stop_words, stop_words
from tests.builders import archive_record, query, rss, rss_item, write_archive

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

SPANISH = (
    "Inundaciones obligan a miles de vecinos a abandonar sus casas en Valencia. Las lluvias torrenciales "
    "de la noche desbordaron los ríos y los servicios de emergencia evacuaron a más de tres mil personas."
)
GERMAN = (
    "Hochwasser zwingt Tausende in Valencia zur Flucht aus ihren Häusern. Nach heftigen Regenfällen in der "
    "Nacht sind die Flüsse über die Ufer getreten und die Rettungskräfte haben die Bewohner evakuiert."
)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Floods force thousands from their homes after a night of torrential rain", "en"),
        (SPANISH, "es"),
        (GERMAN, "de"),
        ("Сильный снегопад парализовал движение в Москве в понедельник утром", "ru"),
        ("لاہور میں شدید دھند کے باعث موٹروے کو ٹریفک کے لیے بند کر دیا گیا", "ur"),
    ],
)
def test_the_language_of_a_news_text_is_detected(text: str, language: str) -> None:
    assert detect_language(text, "") == language


def test_too_little_text_is_no_language_rather_than_a_guess() -> None:
    assert detect_language("Obama", "") is None
    assert detect_language("", "2026") is None


def test_a_sources_configured_language_wins_over_detection() -> None:
    title, body = SPANISH.split(". ", 1)
    feed = parse_feed(rss(rss_item("es-1", title, body)).encode())

    detected = entries_to_articles(feed, Source(name="Diario", url="https://d.example/rss"), NOW)[0]
    configured = entries_to_articles(
        feed, Source(name="Diario", url="https://d.example/rss", language="ca"), NOW
    )[0]

    assert detected[0].language == "es"
    assert configured[0].language == "ca"


def test_imported_records_get_a_language_unless_they_carry_one() -> None:
    title, body = GERMAN.split(". ", 1)
    record = {"id": "1", "source": "Kurier", "title": title, "text": body}

    assert article_from_record(record, imported_at=NOW).language == "de"
    assert article_from_record(record | {"language": "de-AT"}, imported_at=NOW).language == "de-AT"


def test_the_detected_language_is_stored_with_the_article(tmp_path: Path, make_settings) -> None:
    title, body = SPANISH.split(". ", 1)
    archive = write_archive(
        tmp_path / "a.jsonl",
        [archive_record(1, title, body, source="Diario", published_at=NOW - timedelta(hours=1))],
    )
    db = tmp_path / "l.duckdb"

    assert main(["import", str(archive), "--db", str(db)]) == EXIT_OK
    assert query(db, "SELECT source, language, via_feed FROM articles") == [("Diario", "es", None)]


def test_keywords_use_each_articles_own_stop_words() -> None:
    german = {
        "flut": [
            "Die Flut in der Stadt und die Evakuierung der Bewohner",
            "Nach der Flut haben die Bewohner die Stadt verlassen und die Retter sind da",
        ],
        "wahl": [
            "Die Wahl in der Region und das Ergebnis der Partei",
            "Das Ergebnis der Wahl und die Partei",
        ],
    }
    languages = {sid: ["de"] * len(docs) for sid, docs in german.items()}

    keywords = ctfidf_keywords(german, languages=languages)
    english_only = ctfidf_keywords(german)

    function_words = {"die", "der", "und", "das", "nach", "in", "sind", "haben", "da"}
    assert all(
        not function_words & {w.casefold() for k in kws for w in k.split()} for kws in keywords.values()
    )
    assert "Flut" in keywords["flut"] and "Wahl" in keywords["wahl"]
    assert any(
        function_words & {w.casefold() for k in kws for w in k.split()} for kws in english_only.values()
    )


def test_a_language_without_a_stop_word_list_falls_back_to_english() -> None:
    assert not has_stop_words("ur") and has_stop_words("de") and has_stop_words("de-AT")
    assert stop_words("ur") == stop_words("en") == stop_words(None)
    docs = {
        "dhund": ["لاہور میں شدید دھند موٹروے بند", "شدید دھند موٹروے بند"],
        "other": ["Flood in Valencia"],
    }
    keywords = ctfidf_keywords(docs, languages={"dhund": ["ur", "ur"], "other": ["en"]})
    assert "دھند" in " ".join(keywords["dhund"])


def _story(story_id: str, *articles: tuple[str, str | None, str | None]) -> DigestStory:
    """A story of articles given as (source, language, category), published on 2026-11-20."""
    return DigestStory(
        story_id=story_id,
        headline=f"Story {story_id}",
        keywords=[],
        first_seen=NOW,
        articles=[
            DigestArticle(
                article_id=f"{story_id}-{i}",
                title=f"Article {i} of {story_id}",
                source=source,
                url=None,
                published_at=NOW + timedelta(minutes=i),
                language=language,
                category=category,
            )
            for i, (source, language, category) in enumerate(articles)
        ],
    )


def test_the_digest_marks_articles_not_in_its_main_language() -> None:
    stories = [
        _story("s1", ("Harbor Times", "en", None), ("Valley Post", "en", None), ("Diario", "es", None)),
        _story("s2", ("Maple Wire", "en", None), ("Kurier", None, None)),
    ]
    ranked = rank_stories(stories, date(2026, 11, 20))
    header = DigestHeader(
        day=date(2026, 11, 20), sources_total=5, sources_ok=5, sources_failed=0, articles_in=5,
        generated_at=NOW, language=main_language(ranked),
    )  # fmt: skip

    markdown = render_markdown(header, ranked)
    html = render_html(header, ranked)

    assert header.language == "en"
    assert "- Article 2 of s1 \\[es\\] — Diario, 12:02" in markdown.splitlines()
    assert "[en]" not in markdown and "\\[en\\]" not in markdown
    assert '<span class="lang" title="language">es</span>' in html
    assert html.count('class="lang"') == 1 and '<html lang="en">' in html


def test_the_category_filter_keeps_stories_with_an_article_from_that_category_or_a_folder_in_it() -> None:
    stories = [
        _story("world", ("Harbor Times", "en", "News/World"), ("Valley Post", "en", None)),
        _story("sport", ("Pitch Daily", "en", "Sport")),
        _story("none", ("Maple Wire", "en", None)),
    ]
    day = date(2026, 11, 20)

    assert [r.story.story_id for r in rank_stories(stories, day, category="News")] == ["world"]
    assert [r.story.story_id for r in rank_stories(stories, day, category="news/world")] == ["world"]
    assert [r.story.story_id for r in rank_stories(stories, day, category="Sport")] == ["sport"]
    assert rank_stories(stories, day, category="New") == []
    assert in_category("News/World", "News/") and not in_category(None, "News")
