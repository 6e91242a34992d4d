"""Story briefs: a few central, non-redundant sentences quoted from the story's own articles, each
credited to its outlet, wire copies never counted twice, and what the latest day added."""

from __future__ import annotations

from datetime import UTC, date, datetime

from pipeline.briefs.brief import build_brief
from pipeline.briefs.records import BriefArticle
from pipeline.briefs.sentences import quotable, split_sentences


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def art(aid: str, source: str, text: str, when: datetime, *, copy: bool = False) -> BriefArticle:
    return BriefArticle(aid, source, f"{source} headline {aid}", text, when, copy)


WIRE = (
    "DOHA (Global Wire) — Mediators from Qatar and Egypt began talks in Doha on a truce between Israel "
    "and Hamas and the release of hostages. The talks are expected to last several days."
)
TRUCE = [
    art("a1", "Global Wire", WIRE + " Read our full coverage of the talks.", at(18)),
    art(
        "a2",
        "Harbor Times",
        "Qatari and Egyptian mediators resumed talks in Doha on a truce between Israel and Hamas and a "
        "hostage release on Wednesday. Aid trucks lined up at the Rafah crossing as negotiators met.",
        at(18, 12),
    ),
    art(
        "a3",
        "Levant Ledger",
        "Hamas said it would release hostages only if the truce becomes a permanent ceasefire, a senior "
        "official told the Ledger. Israel has offered a six-week pause in fighting.",
        at(19),
    ),
    # A wire copy of a1 printed by another outlet: never quoted, never an outlet agreeing.
    art("a4", "Pacific Tribune", WIRE, at(18, 14), copy=True),
    art(
        "a5",
        "Harbor Times",
        "Israel and Hamas reached an agreement in principle on the first phase of the truce on Saturday, "
        "mediators said. Under the deal, hostages would be freed in stages in exchange for prisoners.",
        at(21),
    ),
]


def test_sentences_split_at_full_stops_but_not_at_abbreviations_or_decimals() -> None:
    text = 'Mr. Smith met U.S. envoys at 9 a.m. on Friday. Rates fell 1.75% today! Was it enough? "Yes." Bye.'
    assert split_sentences(text) == [
        "Mr. Smith met U.S. envoys at 9 a.m. on Friday.",
        "Rates fell 1.75% today!",
        "Was it enough?",
        '"Yes."',
        "Bye.",
    ]


def test_a_dateline_is_dropped_and_teasers_questions_and_fragments_are_not_quoted() -> None:
    assert split_sentences("CAIRO (Global Wire) — Talks resumed on Friday in the Egyptian capital.")[
        0
    ].startswith("Talks resumed")
    assert not quotable("Here is what we know about the proposed truce today.")
    assert not quotable("Read our full coverage of the Gaza talks here.")
    assert not quotable("What is in the proposed truce and hostage deal this week?")
    assert not quotable("Photo: Reuters.")
    assert quotable("Israel has offered a six-week pause in fighting.")


def test_a_brief_quotes_two_to_four_sentences_each_credited_to_its_outlet() -> None:
    brief = build_brief("s_1", TRUCE)
    assert 2 <= len(brief.sentences) <= 4
    by_id = {a.article_id: a for a in TRUCE}
    for s in brief.sentences:
        source = by_id[s.article_id]
        assert s.text in source.text and s.source == source.source
    assert brief.article_count == 5


def test_wire_copies_are_never_quoted_and_nothing_is_said_twice() -> None:
    brief = build_brief("s_1", TRUCE)
    assert "a4" not in {s.article_id for s in brief.sentences + brief.new_sentences}
    texts = [s.text for s in brief.sentences]
    assert len(texts) == len(set(texts))
    assert not any("full coverage" in t for t in texts)


def test_new_today_is_what_the_latest_day_said_that_earlier_coverage_had_not() -> None:
    brief = build_brief("s_1", TRUCE)
    assert brief.new_day == date(2026, 11, 21)
    assert brief.new_sentences and {s.article_id for s in brief.new_sentences} == {"a5"}
    assert not set(brief.new_sentences) & set(brief.sentences)
    first_day_only = build_brief("s_2", TRUCE[:2])
    assert first_day_only.new_sentences == [], (
        "a story that began that day has nothing 'new' beyond its brief"
    )


def test_a_brief_is_deterministic_whatever_the_order_of_its_articles() -> None:
    assert build_brief("s_1", TRUCE) == build_brief("s_1", list(reversed(TRUCE)))


def test_a_story_of_headlines_only_still_gets_a_brief_and_an_empty_story_none() -> None:
    teasers = [art("t1", "A", "", at(20)), art("t2", "B", "Short.", at(20))]
    assert [s.text for s in build_brief("s_3", teasers).sentences] == ["A headline t1", "B headline t2"]
    assert build_brief("s_4", []).sentences == []
