"""Story labels: which headline represents a story, its keywords, and when labels change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from pipeline.stories.labels import ctfidf_keywords, needs_relabel, representative_index, unique_headlines

T0 = datetime(2024, 5, 13, 6, 0, tzinfo=UTC)


def _unit(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


# ---------------------------------------------------------------- representative headline


def test_representative_is_the_article_closest_to_the_story_centre() -> None:
    vectors = np.stack(
        [
            _unit(1.0, 0.9, 0.0),  # leans to one side
            _unit(1.0, 0.0, 0.0),  # the middle of the three
            _unit(1.0, -0.9, 0.0),  # leans to the other side
        ]
    )
    published = [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    assert representative_index(vectors, published, [False, False, False]) == 1


def test_a_wire_copy_never_represents_the_story_when_an_original_exists() -> None:
    vectors = np.stack([_unit(1.0, 0.0), _unit(1.0, 0.3), _unit(1.0, -0.05)])
    published = [T0, T0 + timedelta(hours=1), T0 - timedelta(hours=1)]
    # Article 2 is the most central but a syndicated copy; article 0 is the best original.
    assert representative_index(vectors, published, [False, False, True]) == 0


def test_near_equally_central_articles_go_to_the_earliest() -> None:
    # Two articles mirror each other around the centre: equally central.
    vectors = np.stack([_unit(1.0, 0.2), _unit(1.0, -0.2)])
    later, earlier = T0 + timedelta(hours=3), T0
    assert representative_index(vectors, [later, earlier], [False, False]) == 1
    # Within the small cosine margin counts as a tie too.
    vectors = np.stack([_unit(1.0, 0.0, 0.0), _unit(1.0, 0.03, 0.15), _unit(1.0, -0.03, -0.15)])
    published = [T0 + timedelta(hours=5), T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    assert representative_index(vectors, published, [False, False, False]) == 1


def test_a_story_of_copies_only_still_gets_a_headline() -> None:
    vectors = np.stack([_unit(1.0, 0.5), _unit(1.0, 0.0), _unit(1.0, -0.5)])
    assert representative_index(vectors, [T0, T0, T0], [True, True, True]) == 1


def test_single_article_and_unknown_times() -> None:
    assert representative_index(np.stack([_unit(0.0, 1.0)]), [None], [False]) == 0
    vectors = np.stack([_unit(1.0, 0.1), _unit(1.0, -0.1)])
    # An article without a publication time cannot claim to be first.
    assert representative_index(vectors, [None, T0], [False, False]) == 1


def test_representative_rejects_empty_or_mismatched_input() -> None:
    with pytest.raises(ValueError):
        representative_index(np.zeros((0, 3)), [], [])
    with pytest.raises(ValueError):
        representative_index(np.ones((2, 3)), [T0], [False, False])


# ---------------------------------------------------------------- keywords

STORIES = {
    "summit": [
        "NATO leaders gather in Vilnius for a summit dominated by Ukraine, officials said on Tuesday.",
        "Ukraine membership bid tops the agenda as NATO allies meet in Vilnius, government officials say.",
        "At the Vilnius summit, nato allies pledge long-term support to Ukraine.",
    ],
    "heat": [
        "Heatwave grips southern Europe as temperatures hit 45 degrees in Sicily, officials said.",
        "Wildfires spread on Sicily as the heatwave intensifies; government officials urge caution.",
        "Europe's heatwave: Sicily and Sardinia swelter in record temperatures.",
    ],
    "rates": [
        "The central bank raised interest rates by 0.25 points to 4.5%, officials said on Thursday.",
        "Interest rates climb again as inflation stays high, government officials said.",
        "Markets expect interest rates to stay high until inflation eases in 2025.",
    ],
}


def test_keywords_are_words_of_the_story_not_of_the_others() -> None:
    keywords = ctfidf_keywords(STORIES, top_n=5)
    folded = {sid: [k.casefold() for k in kws] for sid, kws in keywords.items()}
    assert {"nato", "vilnius", "ukraine"} <= set(folded["summit"])
    assert {"heatwave", "sicily"} <= set(folded["heat"])
    assert "interest rates" in folded["rates"]
    assert "inflation" in folded["rates"]
    for kws in folded.values():
        # Words every story uses ("officials", "government") describe none of them.
        assert not {"officials", "government", "government officials"} & set(kws)
        assert 1 <= len(kws) <= 5


def test_keywords_drop_numbers_stop_words_and_fold_case() -> None:
    keywords = ctfidf_keywords(STORIES, top_n=10)
    everything = [k.casefold() for kws in keywords.values() for k in kws]
    assert not [k for k in everything if any(ch.isdigit() for ch in k)]
    assert not {"the", "said", "on", "as", "tuesday", "thursday"} & {w for k in everything for w in k.split()}
    # "NATO" and "nato" are one term, shown in its most frequent spelling.
    summit = keywords["summit"]
    assert sum(1 for k in summit if k.casefold() == "nato") == 1
    assert "NATO" in summit


def test_keywords_are_not_variations_of_each_other() -> None:
    keywords = ctfidf_keywords(STORIES, top_n=5)
    for kws in keywords.values():
        for a in kws:
            for b in kws:
                if a != b:
                    assert not set(a.casefold().split()) <= set(b.casefold().split()), (a, b)


def test_keywords_do_not_depend_on_story_order_and_handle_empty_stories() -> None:
    forward = ctfidf_keywords({**STORIES, "empty": ["", "   "]})
    backward = ctfidf_keywords(dict(reversed(list({**STORIES, "empty": []}.items()))))
    assert forward["empty"] == [] and backward["empty"] == []
    assert {k: v for k, v in forward.items() if k != "empty"} == {
        k: v for k, v in backward.items() if k != "empty"
    }


def test_keywords_of_a_one_article_story_prefer_words_over_accidental_phrases() -> None:
    keywords = ctfidf_keywords({**STORIES, "quake": ["Strong earthquake shakes Morocco's Atlas mountains"]})
    assert keywords["quake"][:3] == ["Atlas", "earthquake", "Morocco"]


# ---------------------------------------------------------------- unique headlines


def test_identical_headlines_of_live_stories_are_disambiguated() -> None:
    headlines = unique_headlines(
        {"a": "Storm hits coast", "b": "storm  hits COAST", "c": "Markets rally"},
        keywords={"a": ["storm", "Texas"], "b": ["storm", "Florida"]},
        first_seen={"a": T0, "b": T0 + timedelta(days=1)},
    )
    # The older story keeps the plain headline; the other gets its first keyword not
    # already in the headline.
    assert headlines["a"] == "Storm hits coast"
    assert headlines["b"] == "storm  hits COAST — Florida"
    assert headlines["c"] == "Markets rally"
    assert len({h.casefold() for h in headlines.values()}) == 3


def test_disambiguation_falls_back_to_the_start_date_then_a_counter() -> None:
    headlines = unique_headlines(
        {"a": "Budget vote", "b": "Budget vote", "c": "Budget vote"},
        first_seen={"a": T0, "b": T0 + timedelta(days=2)},
    )
    assert headlines["a"] == "Budget vote"
    assert headlines["b"] == "Budget vote (2024-05-15)"
    assert headlines["c"] == "Budget vote (2)"


def test_a_disambiguated_headline_never_takes_another_storys_label() -> None:
    headlines = unique_headlines(
        {"a": "Fire downtown", "b": "Fire downtown", "c": "Fire downtown — Oakland"},
        keywords={"b": ["Oakland", "warehouse"]},
        first_seen={"a": T0, "b": T0 + timedelta(hours=1)},
    )
    assert headlines["c"] == "Fire downtown — Oakland"
    assert headlines["b"] == "Fire downtown — warehouse"
    assert len(set(headlines.values())) == 3


# ---------------------------------------------------------------- relabelling


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (0, 1, True),  # never labelled
        (0, 0, False),
        (1, 2, True),  # small story doubled
        (2, 3, False),  # one more article in a small story: keep the label
        (2, 4, True),
        (3, 5, False),
        (3, 6, True),
        (10, 12, False),  # below 20 % growth
        (10, 13, True),
        (40, 47, False),
        (40, 48, True),  # 20 % growth
        (10, 7, True),  # lost members
        (10, 10, False),
    ],
)
def test_labels_are_recomputed_only_when_membership_changed_materially(
    old: int, new: int, expected: bool
) -> None:
    assert needs_relabel(old, new) is expected
