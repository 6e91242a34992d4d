"""Syndication detection: wire copies are linked to their original; independent reporting is not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pipeline.articles.syndication import NO_FINGERPRINT, find_duplicates, fingerprint, is_copy
from tests.builders import article

T0 = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)

WIRE = (
    "Emergency crews evacuated about 300 residents from the village of Lakeside on Sunday night after the "
    "Alder river burst its banks for the second time this winter, regional officials said. "
    "The water rose more than a metre in four hours, flooding the main street and cutting the road to the "
    "regional hospital. Residents were taken by bus to the sports hall in Northbridge, where volunteers "
    'handed out blankets and hot meals. "We had twenty minutes to leave," said Maria Olsen, who runs the '
    "bakery on the square. The regional council said pumps had been brought in from three neighbouring "
    "districts and that the water was expected to recede by Wednesday. Engineers will inspect the old stone "
    "bridge once the level drops. The same stretch of river flooded in December, when 120 homes were damaged."
)

# Another outlet reporting the same event itself: same names, numbers and one quote, its own words.
OWN_REPORTING = (
    "Some 300 people spent the night in a sports hall in Northbridge after the Alder river flooded Lakeside "
    "again on Sunday. It is the second flood in the village this winter. Bakery owner Maria Olsen told our "
    'reporter the evacuation came with little warning. "We had twenty minutes to leave," she said, standing '
    "outside the hall on Monday morning. Council leader Tom Berg said the authorities had learned from "
    "December, when 120 homes were damaged, and had pumps ready this time. Critics say the flood defences "
    "promised after the last flood have still not been built. The council expects the water to go down by "
    "midweek, and engineers plan to check the stone bridge, which has been closed to traffic since Sunday."
)


def copy_of(text: str) -> str:
    """What a republisher does: dateline in front, a word changed, its footer at the end."""
    edited = text.replace("regional officials said", "officials said")
    return f"LAKESIDE (Wire) — {edited}\nThis story was provided by Wire Service. Comments are moderated."


@dataclass(frozen=True)
class Stored:
    """Shaped like storage's StoredFingerprint."""

    article_id: str
    source: str
    fingerprint: int
    effective_at: datetime


def test_wire_copy_with_new_headline_and_footer_points_to_the_stored_original() -> None:
    stored = [Stored("orig", "Wire", fingerprint(WIRE), T0)]
    copy = article(
        "copy",
        copy_of(WIRE),
        source="Portal",
        at=T0 + timedelta(hours=3),
        title="Hundreds flee Lakeside flood",
    )
    assert find_duplicates([copy], stored) == {"copy": "orig"}


def test_independent_reporting_of_the_same_event_is_not_a_copy() -> None:
    stored = [Stored("orig", "Wire", fingerprint(WIRE), T0)]
    own = article("own", OWN_REPORTING, source="Herald", at=T0 + timedelta(hours=2))
    assert find_duplicates([own], stored) == {}
    assert not is_copy(fingerprint(WIRE), fingerprint(OWN_REPORTING))


def test_copies_within_one_batch_point_to_the_earliest() -> None:
    batch = [
        article("late", copy_of(WIRE), source="Portal", at=T0 + timedelta(hours=5)),
        article("first", WIRE, source="Wire", at=T0),
        article("middle", copy_of(WIRE), source="Daily", at=T0 + timedelta(hours=1)),
        article("other", OWN_REPORTING, source="Herald", at=T0 + timedelta(hours=1)),
    ]
    assert find_duplicates(batch, []) == {"late": "first", "middle": "first"}


def test_the_earliest_of_several_stored_originals_wins() -> None:
    stored = [
        ("later-original", "Daily", fingerprint(WIRE), T0 + timedelta(hours=1)),
        ("earliest", "Wire", fingerprint(WIRE), T0),
    ]
    copy = article("copy", copy_of(WIRE), source="Portal", at=T0 + timedelta(hours=2))
    assert find_duplicates([copy], stored) == {"copy": "earliest"}


def test_same_source_near_duplicates_are_not_syndication() -> None:
    stored = [Stored("orig", "Wire", fingerprint(WIRE), T0)]
    update = article("update", copy_of(WIRE), source="Wire", at=T0 + timedelta(hours=1))
    assert find_duplicates([update], stored) == {}


def test_copies_far_apart_in_time_are_not_linked() -> None:
    stored = [Stored("orig", "Wire", fingerprint(WIRE), T0)]
    late = article("late", copy_of(WIRE), source="Portal", at=T0 + timedelta(days=30))
    assert find_duplicates([late], stored) == {}


def test_short_texts_are_never_called_copies() -> None:
    blurb = "Flooding in Lakeside, more soon."
    assert fingerprint(blurb) == NO_FINGERPRINT
    assert fingerprint("") == NO_FINGERPRINT
    batch = [
        article("a", blurb, source="Wire", at=T0),
        article("b", blurb, source="Portal", at=T0 + timedelta(hours=1)),
    ]
    assert find_duplicates(batch, [("x", "Daily", NO_FINGERPRINT, T0)]) == {}


def test_fingerprints_are_stable_unsigned_64_bit_values() -> None:
    # Stored in the database and compared across runs: the value for a text must never change.
    value = fingerprint(WIRE)
    assert 0 < value < 2**64
    assert value == fingerprint(WIRE.upper().replace(",", " ,"))
    assert value == 16041372752210066400


def test_precomputed_fingerprints_are_used() -> None:
    stored = [Stored("orig", "Wire", fingerprint(WIRE), T0)]
    copy = article("copy", "text that does not matter here " * 10, source="Portal", at=T0)
    assert find_duplicates([copy], stored, {"copy": fingerprint(WIRE)}) == {"copy": "orig"}


def test_a_large_window_is_handled() -> None:
    filler = [
        Stored(f"s{i}", f"src{i % 50}", fingerprint(f"{WIRE} Update number {i} {'x' * (i % 7)} " * 2), T0)
        for i in range(0, 200)
    ]
    window = filler * 50  # 10,000 stored originals
    news = [
        article(f"n{i}", f"Unrelated story {i} " + OWN_REPORTING[i:], source="Portal", at=T0)
        for i in range(100)
    ]
    result = find_duplicates(news, window)
    assert set(result) <= {a.article_id for a in news}
