"""The daily digest: which stories a reader sees for a day, and in what order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from pipeline.digest.rank import RankedStory, rank_stories
from pipeline.stories.topics import match_topics, topic_text
from tests.digest_data import DAY, art, at, story


def by_id(ranked: list[RankedStory]) -> dict[str, RankedStory]:
    return {r.story.story_id: r for r in ranked}


# ---------------------------------------------------------------- new vs developing


def test_a_story_seen_only_today_is_new() -> None:
    ranked = rank_stories([story("s", [art("Times", at(DAY, 8)), art("Post", at(DAY, 10))])], DAY)
    [item] = ranked
    assert item.status == "new"
    assert item.started == DAY
    assert item.new_today == 2


def test_a_story_seen_yesterday_that_grew_today_is_developing_since_yesterday() -> None:
    yesterday = DAY - timedelta(days=1)
    s = story("s", [art("Times", at(yesterday, 15)), art("Post", at(DAY, 8)), art("Globe", at(DAY, 11))])
    [item] = rank_stories([s], DAY)
    assert item.status == "developing"
    assert item.started == yesterday
    assert item.new_today == 2
    assert item.article_count == 3
    assert [(d.day, d.articles) for d in item.timeline] == [(yesterday, 1), (DAY, 2)]


def test_a_story_first_seen_before_its_oldest_remaining_article_is_developing() -> None:
    s = story("s", [art("Times", at(DAY, 8))], first_seen=at(DAY - timedelta(days=3), 20))
    [item] = rank_stories([s], DAY)
    assert item.status == "developing"
    assert item.started == DAY - timedelta(days=3)
    # One bar per day since the start, empty days included.
    assert [d.articles for d in item.timeline] == [0, 0, 0, 1]


def test_only_stories_with_coverage_on_the_day_appear() -> None:
    yesterday = DAY - timedelta(days=1)
    quiet = story("quiet", [art("Times", at(yesterday)), art("Post", at(yesterday, 12))])
    active = story("active", [art("Times", at(yesterday)), art("Post", at(DAY))])
    assert [r.story.story_id for r in rank_stories([quiet, active], DAY)] == ["active"]


def test_a_past_day_is_shown_as_it_was_then() -> None:
    tomorrow = DAY + timedelta(days=1)
    s = story("s", [art("Times", at(DAY)), art("Post", at(tomorrow)), art("Globe", at(tomorrow, 12))])
    [item] = rank_stories([s], DAY)
    assert item.article_count == 1
    assert item.outlets == ["Times"]
    assert item.timeline[-1].day == DAY
    assert rank_stories([story("later", [art("Times", at(tomorrow))])], DAY) == []


def test_days_follow_the_digest_time_zone() -> None:
    # 23:30 UTC on the 12th is already the 13th in Berlin.
    late = art("Times", datetime(2024, 5, 12, 23, 30, tzinfo=UTC))
    s = story("s", [late])
    assert rank_stories([s], DAY, "UTC") == []
    [item] = rank_stories([s], DAY, ZoneInfo("Europe/Berlin"))
    assert item.status == "new"
    assert rank_stories([s], DAY, "Europe/Berlin")[0].started == DAY


# ---------------------------------------------------------------- sources and syndication


def test_syndicated_copies_do_not_count_as_independent_sources() -> None:
    wire = art("Wire", at(DAY, 6))
    copies = [art(name, at(DAY, 7 + i), dup=True) for i, name in enumerate(["Herald", "Gazette", "Courier"])]
    [item] = rank_stories([story("s", [wire, *copies])], DAY)
    assert item.article_count == 4
    assert item.independent_count == 1
    assert item.independent_source_count == 1
    assert item.syndicated_count == 3
    # Every outlet that carried it is listed, in order of first coverage.
    assert item.outlets == ["Wire", "Herald", "Gazette", "Courier"]


def test_an_outlet_with_an_original_article_counts_even_if_it_also_ran_a_copy() -> None:
    articles = [art("Wire", at(DAY, 6)), art("Herald", at(DAY, 7), dup=True), art("Herald", at(DAY, 12))]
    [item] = rank_stories([story("s", articles)], DAY)
    assert item.independent_source_count == 2
    assert item.outlets == ["Wire", "Herald"]


# ---------------------------------------------------------------- ranking


def test_ranking_prefers_independent_sources_over_syndicated_volume() -> None:
    broad = story("broad", [art(name, at(DAY, 8 + i)) for i, name in enumerate(["Times", "Post", "Globe"])])
    wire = story(
        "wire",
        [art("Wire", at(DAY, 6))] + [art(f"Paper {i}", at(DAY, 7 + i), dup=True) for i in range(8)],
    )
    assert [r.story.story_id for r in rank_stories([wire, broad], DAY)] == ["broad", "wire"]


def test_ranking_prefers_broad_coverage_over_one_prolific_outlet() -> None:
    prolific = story("prolific", [art("Live Blog", at(DAY, 6 + i)) for i in range(8)])
    broad = story("broad", [art(name, at(DAY, 9)) for name in ["Times", "Post", "Globe"]])
    assert [r.story.story_id for r in rank_stories([prolific, broad], DAY)] == ["broad", "prolific"]


def test_ranking_prefers_todays_new_coverage_over_yesterdays_big_story() -> None:
    yesterday = DAY - timedelta(days=1)
    big_yesterday = story(
        "fading",
        [art(f"Outlet {i}", at(yesterday, 8 + i)) for i in range(10)] + [art("Outlet 0", at(DAY, 9))],
    )
    fresh = story("fresh", [art("Times", at(DAY, 8)), art("Post", at(DAY, 10))])
    ranked = rank_stories([big_yesterday, fresh], DAY)
    assert [r.story.story_id for r in ranked] == ["fresh", "fading"]
    assert by_id(ranked)["fading"].status == "developing"


def test_a_developing_story_that_grows_outranks_one_that_holds_steady() -> None:
    days = [DAY - timedelta(days=2), DAY - timedelta(days=1)]
    steady = story("steady", [art(f"O{i}", at(d, 8 + i)) for d in days for i in range(3)])
    steady.articles += [art("O0", at(DAY, 8)), art("O1", at(DAY, 9))]
    growing = story("growing", [art("O0", at(days[0], 8)), art("O1", at(days[1], 8))])
    growing.articles += [art("O0", at(DAY, 8)), art("O1", at(DAY, 9))]
    # Same outlets today; one of them is far above its usual daily coverage.
    ranked = rank_stories([steady, growing], DAY)
    assert [r.story.story_id for r in ranked] == ["growing", "steady"]


def test_equal_stories_are_ordered_by_story_id() -> None:
    make = lambda sid: story(sid, [art("Times", at(DAY, 8)), art("Post", at(DAY, 9))])  # noqa: E731
    ranked = rank_stories([make("b"), make("c"), make("a")], DAY)
    assert [r.story.story_id for r in ranked] == ["a", "b", "c"]
    assert ranked[0].score == ranked[1].score == ranked[2].score


def test_topic_filter_and_limit() -> None:
    energy = story("energy", [art("Times", at(DAY)), art("Post", at(DAY))], topics=["Energy"])
    other = story("other", [art("Times", at(DAY)), art("Post", at(DAY)), art("Globe", at(DAY))])
    assert [r.story.story_id for r in rank_stories([energy, other], DAY, topic="Energy")] == ["energy"]
    assert [r.story.story_id for r in rank_stories([energy, other], DAY, limit=1)] == ["other"]


# ---------------------------------------------------------------- watch topics


def test_a_story_belongs_to_the_topics_its_centroid_is_close_enough_to() -> None:
    centroids = {
        "energy-story": np.array([0.9, 0.1, 0.0]),
        "sport-story": np.array([0.0, 0.2, 1.0]),
        "mixed-story": np.array([0.7, 0.7, 0.0]),
    }
    topics = {"Energy": np.array([1.0, 0.0, 0.0]), "Politics": np.array([0.0, 1.0, 0.0])}
    matched = match_topics(centroids, topics, {"Energy": 0.6, "Politics": 0.6})
    assert matched == {
        "energy-story": ["Energy"],
        "sport-story": [],
        "mixed-story": ["Energy", "Politics"],  # equal cosines: by name
    }
    # A stricter threshold for one topic applies to that topic only.
    assert match_topics(centroids, topics, {"Energy": 0.999, "Politics": 0.6})["energy-story"] == []


def test_topic_matching_ignores_zero_vectors_and_rejects_mixed_models() -> None:
    matched = match_topics({"s": np.zeros(3)}, {"T": np.ones(3)}, {"T": -1.0})
    assert matched == {"s": []}
    with pytest.raises(ValueError, match="different models"):
        match_topics({"s": np.ones(3)}, {"T": np.ones(4)}, {"T": 0.5})


def test_topic_text_is_the_description_or_else_the_name() -> None:
    assert topic_text("Energy", "  Gas and\nelectricity prices ") == "Gas and electricity prices"
    assert topic_text("Energy", "") == "Energy"


@pytest.mark.slow
def test_topics_match_stories_by_meaning_with_the_real_model() -> None:
    from pipeline.embed.base import load_model
    from pipeline.embed.torch_fp32 import embed_texts

    model = load_model()
    stories = {
        "fires": [
            "Wildfires spread across Greek islands as the heatwave continues; firefighters battle blazes.",
            "Thousands evacuated from Rhodes as forest fires rage in extreme heat.",
        ],
        "rates": [
            "European Central Bank raises interest rates again to fight inflation.",
            "ECB hikes rates by a quarter point and signals more to come as prices climb.",
        ],
    }
    centroids = {sid: embed_texts(model, texts).mean(axis=0) for sid, texts in stories.items()}
    descriptions = {
        "Climate": "Climate change, extreme weather, heatwaves, wildfires and floods",
        "Economy": "Central banks, interest rates, inflation and the economy",
        "Football": "Football matches, clubs and transfers",
    }
    vectors = {name: embed_texts(model, [topic_text(name, d)])[0] for name, d in descriptions.items()}
    matched = match_topics(centroids, vectors, dict.fromkeys(descriptions, 0.3))
    assert matched == {"fires": ["Climate"], "rates": ["Economy"]}
