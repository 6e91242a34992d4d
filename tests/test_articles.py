"""Feed entries and imported records become clean articles; problems become notes, not crashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.articles.identity import article_id
from pipeline.articles.normalise import article_from_record, entries_to_articles
from pipeline.records import FeedEntry, ParsedFeed, Source

FETCHED = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
SOURCE = Source(name="Gazette", url="https://gazette.example/feed.xml", language="en")


def entry(
    guid: str | None = None,
    link: str | None = None,
    title: str | None = "A headline",
    summary: str | None = None,
    content: str | None = None,
    published_at: datetime | None = None,
) -> FeedEntry:
    return FeedEntry(
        guid=guid, link=link, title=title, summary=summary, content=content, published_at=published_at
    )


def convert(*entries: FeedEntry):
    return entries_to_articles(ParsedFeed(entries=list(entries)), SOURCE, FETCHED)


def test_entry_becomes_a_clean_article() -> None:
    (article,), notes = convert(
        entry(
            guid="g-1",
            link="https://gazette.example/a?utm_source=rss",
            title="Council approves &amp; funds bridge",
            summary="<p>Short.</p>",
            content="<p>Council approves & funds bridge</p><p>The council voted 9 to 2.</p>",
            published_at=FETCHED - timedelta(hours=2),
        )
    )
    assert notes == []
    assert article.title == "Council approves & funds bridge"
    # The longest of content and summary, without the repeated headline.
    assert article.text == "The council voted 9 to 2."
    assert article.url == "https://gazette.example/a?utm_source=rss"
    assert article.canonical_url == "https://gazette.example/a"
    assert article.published_at == FETCHED - timedelta(hours=2)
    assert article.fetched_at == FETCHED
    assert article.source == "Gazette" and article.language == "en" and article.guid == "g-1"
    assert article.article_id.startswith("a_") and article.content_hash


def test_ids_are_stable_across_fetches() -> None:
    e = entry(guid="g-1", summary="Text")
    (a,), _ = convert(e)
    (b,), _ = entries_to_articles(ParsedFeed(entries=[e]), SOURCE, FETCHED + timedelta(hours=5))
    assert a.article_id == b.article_id


def test_missing_title_is_derived_from_the_text() -> None:
    long_sentence = "The regional transport authority announced on Tuesday " + "that buses will run " * 10
    (short, long), notes = convert(
        entry(guid="1", title=None, summary="<p>Ferry service resumes. Boats leave hourly.</p>"),
        entry(guid="2", title="  ", summary=long_sentence + ". More."),
    )
    assert short.title == "Ferry service resumes."
    assert short.text == "Ferry service resumes. Boats leave hourly."
    assert len(long.title) <= 90 and long.title.endswith("…")
    assert long.title.startswith("The regional transport authority")
    assert notes == []


@pytest.mark.parametrize(
    ("text", "title"),
    [
        (
            "Gov. Sarah Palin's church burned, officials said. Arson is suspected.",
            "Gov. Sarah Palin's church burned, officials said.",
        ),
        ("A fire hit Alaska Gov. Palin's church. More.", "A fire hit Alaska Gov. Palin's church."),
        ("The U.S. and Qatar resume talks. Details.", "The U.S. and Qatar resume talks."),
        ("Talks resume? Officials say so.", "Talks resume?"),
        ('He said "no." Then he left.', 'He said "no."'),
    ],
)
def test_a_derived_headline_is_not_cut_at_an_abbreviation(text: str, title: str) -> None:
    (article,), _ = convert(entry(guid="g", title=None, summary=text))
    assert article.title == title


def test_an_entry_without_headline_guid_or_link_is_keyed_by_its_text_not_the_derived_headline() -> None:
    # Then a better headline heuristic in a later version cannot store a re-fetched entry twice.
    (article,), _ = convert(entry(guid=None, link=None, title=None, summary="Gov. Palin spoke. Then left."))
    assert article.title == "Gov. Palin spoke."
    assert article.article_id == article_id(
        source=SOURCE.name, guid=None, canonical=None, title="", text=article.text
    )


def test_entry_without_title_and_text_is_skipped_with_a_note() -> None:
    articles, notes = convert(
        entry(guid="empty", title=None, summary="<p> </p>"), entry(guid="ok", summary="x")
    )
    assert [a.guid for a in articles] == ["ok"]
    assert len(notes) == 1 and "empty" in notes[0] and "skipped" in notes[0]


def test_dates_far_in_the_future_are_not_trusted_and_the_article_counts_as_undated() -> None:
    (far, near), notes = convert(
        entry(guid="far", published_at=FETCHED + timedelta(days=30)),
        entry(guid="near", published_at=FETCHED + timedelta(minutes=30)),
    )
    assert far.published_at is None
    assert near.published_at == FETCHED + timedelta(minutes=30)
    assert len(notes) == 1 and "future" in notes[0] and "far" in notes[0]


def test_missing_date_stays_missing() -> None:
    (article,), _ = convert(entry(guid="g"))
    assert article.published_at is None


def test_duplicate_guid_with_different_content_keeps_both_articles() -> None:
    (a, b), notes = convert(
        entry(guid="same", link="https://gazette.example/one", title="First story", summary="One"),
        entry(guid="same", link="https://gazette.example/two", title="Second story", summary="Two"),
    )
    assert a.article_id != b.article_id
    assert {a.title, b.title} == {"First story", "Second story"}
    assert any("same" in n and "2 different entries" in n for n in notes)


def test_entries_sharing_guid_and_link_but_not_text_are_all_kept() -> None:
    # A blog generator that gives every post of a day the same GUID and link.
    day = "https://blog.example/2026/03/03.html"
    articles, notes = convert(
        entry(guid=day, link=day, title=None, summary="Good morning, readers."),
        entry(guid=day, link=day, title=None, summary="A longer post about feed readers."),
        entry(guid=day, link=day, title=None, summary="Good morning, readers."),
    )
    assert [a.text for a in articles] == ["Good morning, readers.", "A longer post about feed readers."]
    assert len({a.article_id for a in articles}) == 2
    assert any("1 repeated" in n for n in notes)


def test_exact_duplicate_entries_keep_the_first() -> None:
    first = entry(guid="dup", link="https://gazette.example/x", title="Story", summary="Same text")
    articles, notes = convert(first, first, entry(guid="other", summary="y"))
    assert [a.guid for a in articles] == ["dup", "other"]
    assert any("1 repeated" in n for n in notes)


def test_entries_without_guid_are_identified_by_link_then_text() -> None:
    (by_link, by_text), _ = convert(
        entry(link="https://gazette.example/a", title="A"),
        entry(title="B", summary="Body B"),
    )
    (by_link_again,), _ = convert(entry(link="https://gazette.example/a/#top", title="A edited"))
    assert by_link.article_id == by_link_again.article_id
    assert by_text.article_id != by_link.article_id


# JSON Lines import

IMPORTED = datetime(2026, 3, 10, tzinfo=UTC)


def test_record_becomes_an_article() -> None:
    record = {
        "id": "gz-77",
        "source": "Gazette",
        "url": "https://gazette.example/77",
        "published_at": "2026-03-01T08:30:00+01:00",
        "title": "Ferry strike ends",
        "text": "Ferry strike ends\n\nCrews return on Monday.",
        "story": "s1",
    }
    article = article_from_record(record, imported_at=IMPORTED)
    assert article.external_id == "gz-77"
    assert article.source == "Gazette"
    assert article.title == "Ferry strike ends"
    assert article.text == "Crews return on Monday."
    assert article.published_at == datetime(2026, 3, 1, 7, 30, tzinfo=UTC)
    assert article.fetched_at == IMPORTED
    assert article.canonical_url == "https://gazette.example/77"


def test_record_ids_are_scoped_by_source_and_stable() -> None:
    a = article_from_record({"id": 5, "source": "A", "title": "t"}, imported_at=IMPORTED)
    again = article_from_record({"id": "5", "source": "A", "title": "changed"}, imported_at=IMPORTED)
    b = article_from_record({"id": 5, "source": "B", "title": "t"}, imported_at=IMPORTED)
    assert a.article_id == again.article_id != b.article_id
    assert a.external_id == "5"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-06-24", datetime(2021, 6, 24, tzinfo=UTC)),
        ("2021-06-24T10:00:00", datetime(2021, 6, 24, 10, tzinfo=UTC)),
        ("2021-06-24T10:00:00Z", datetime(2021, 6, 24, 10, tzinfo=UTC)),
        ("2021-06-24 10:00:00-04:00", datetime(2021, 6, 24, 14, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (None, None),
        (1624528800, None),
    ],
)
def test_record_dates(value: object, expected: datetime | None) -> None:
    article = article_from_record({"title": "t", "published_at": value}, imported_at=IMPORTED)
    assert article.published_at == expected


def test_record_defaults_and_derived_title() -> None:
    article = article_from_record({"text": "Only a body here. Second sentence."}, imported_at=IMPORTED)
    assert article.source == "import"
    assert article.title == "Only a body here."
    assert article.external_id is None and article.url is None
    custom = article_from_record({"title": "t"}, imported_at=IMPORTED, default_source="archive")
    assert custom.source == "archive"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"id": "1", "title": None, "text": "  "}, "neither title nor text"),
        ({"id": "1"}, "neither title nor text"),
        (["not", "an", "object"], "not an object"),
        ("a string", "not an object"),
        (None, "not an object"),
    ],
)
def test_unusable_records_raise_value_error(record: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        article_from_record(record, imported_at=IMPORTED)


def test_fields_of_the_wrong_type_count_as_missing() -> None:
    article = article_from_record({"title": "t", "url": ["x"], "source": {"a": 1}}, imported_at=IMPORTED)
    assert article.url is None and article.source == "import"


def test_an_aggregators_outlet_suffix_is_dropped_from_imported_headlines() -> None:
    from pipeline.articles.normalise import article_from_record

    record = {
        "id": "1",
        "source": "Reuters",
        "title": "Gaza truce talks resume in Cairo - Reuters",
        "text": None,
    }
    assert article_from_record(record, imported_at=FETCHED).title == "Gaza truce talks resume in Cairo"
    other = {"id": "2", "source": "AP", "title": "Talks resume - Reuters", "text": None}
    assert article_from_record(other, imported_at=FETCHED).title == "Talks resume - Reuters"
