"""Stories over time, through the real storage and cluster step: stable IDs as coverage arrives
day by day, follow-ups that find their story, separate events that stay apart, and replays that
come out identical."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flows.cli import EXIT_OK, main
from storage.db import open_db
from storage.stories import apply_story_update, resolve_story
from tests.builders import archive_record, query, write_archive

pytestmark = pytest.mark.slow

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)

FLOOD = [
    (
        "Floods force thousands from their homes in Valencia",
        "Torrential rain overnight sent rivers over their banks across the Valencia region, and emergency "
        "services evacuated more than 3,000 residents from low-lying districts near the Turia.",
    ),
    (
        "Valencia flooding: 3,000 evacuated as rivers burst banks",
        "Spanish emergency crews moved thousands of people out of low-lying districts around Valencia after "
        "a night of torrential rain swelled the Turia and Jucar rivers.",
    ),
    (
        "Heavy rain floods eastern Spain, thousands evacuated",
        "Authorities in Valencia said about 3,000 people had left their homes after overnight downpours made "
        "the Turia and Jucar rivers overflow.",
    ),
]
FLOOD_FOLLOW_UP = (
    "Valencia flood clean-up: evacuated residents return a week later",
    "A week after torrential rain made the Turia and Jucar rivers overflow, most of the 3,000 residents "
    "evacuated from low-lying districts of Valencia have returned home, and the regional government "
    "promised flood aid.",
)
SHOOTING_MAY = (
    "Man shot dead outside Springfield bar",
    "Police said Daniel Ruiz, 34, was shot several times outside the Lucky Star bar on Main Street in "
    "Springfield shortly before midnight on Friday and died at the scene. Detectives are looking for two "
    "men seen running to a parked car.",
)
SHOOTING_MAY_2 = (
    "Springfield bar shooting: victim named as Daniel Ruiz",
    "The 34-year-old was killed outside the Lucky Star on Main Street in Springfield late on Friday; police "
    "say two suspects fled in a dark sedan and asked witnesses to come forward.",
)
SHOOTING_JULY = (
    "Man shot dead outside Springfield restaurant",
    "Police said Carlos Mendez, 41, was shot several times outside the Golden Dragon restaurant on Elm "
    "Street in Springfield late on Saturday and died at the scene. Detectives are looking for a man seen "
    "running from the scene.",
)
SHOOTING_JULY_2 = (
    "Springfield restaurant shooting: victim named as Carlos Mendez",
    "The 41-year-old was killed outside the Golden Dragon on Elm Street in Springfield on Saturday night; "
    "police say the gunman fled on foot and asked witnesses to come forward.",
)


def _write(path: Path, items: list[tuple[str, tuple[str, str], datetime, str]]) -> Path:
    """An archive of (id, (headline, body), published at, source) reports."""
    records = [
        archive_record(ident, title, text, source=source, published_at=when)
        for ident, (title, text), when, source in items
    ]
    return write_archive(path, records)


def _stories(db: Path) -> dict[str, str]:
    """Story of each article, by the article's id in the archive."""
    sql = "SELECT a.external_id, sa.story_id FROM articles a JOIN story_articles sa USING (article_id)"
    return dict(query(db, sql))


def _cluster(db: Path, when: datetime) -> None:
    assert main(["cluster", "--db", str(db), "--as-of", when.isoformat()]) == EXIT_OK


@pytest.mark.usefixtures("prefect_harness")
def test_a_story_keeps_its_id_as_coverage_arrives_and_a_follow_up_a_week_later_finds_it(
    tmp_path: Path, make_settings
) -> None:
    db = tmp_path / "s.duckdb"
    first = _write(
        tmp_path / "day0.jsonl",
        [
            ("f0", FLOOD[0], T0, "Wire"),
            ("f1", FLOOD[1], T0 + timedelta(hours=3), "Daily"),
        ],
    )
    assert main(["import", str(first), "--db", str(db)]) == EXIT_OK
    _cluster(db, T0 + timedelta(hours=12))
    day0 = _stories(db)
    assert day0["f0"] == day0["f1"]
    story = day0["f0"]

    more = _write(
        tmp_path / "later.jsonl",
        [
            ("f2", FLOOD[2], T0 + timedelta(days=1), "Courier"),
            # Eight days on: outside the four-day window, so only context brings its story in.
            ("f3", FLOOD_FOLLOW_UP, T0 + timedelta(days=8), "Daily"),
        ],
    )
    assert main(["import", str(more), "--db", str(db)]) == EXIT_OK
    _cluster(db, T0 + timedelta(days=1, hours=12))
    assert _stories(db)["f2"] == story
    _cluster(db, T0 + timedelta(days=8, hours=12))
    after = _stories(db)
    assert after["f3"] == story, "the follow-up joined the story it continues"
    assert {after[k] for k in ("f0", "f1", "f2")} == {story}, "nobody moved"
    changes = query(db, "SELECT count(*), count(from_story) FROM membership_changes")[0]
    assert changes == (4, 0), "four first assignments, no change of story"


@pytest.mark.usefixtures("prefect_harness")
def test_two_reports_of_one_event_days_apart_meet_and_a_similar_event_weeks_later_is_another_story(
    tmp_path: Path, make_settings
) -> None:
    archive = _write(
        tmp_path / "shootings.jsonl",
        [
            ("may1", SHOOTING_MAY, T0, "Gazette"),
            # Six days later: the first report is alone in its window and has no story yet.
            ("may2", SHOOTING_MAY_2, T0 + timedelta(days=6), "Herald"),
            ("jul1", SHOOTING_JULY, T0 + timedelta(days=45), "Gazette"),
            ("jul2", SHOOTING_JULY_2, T0 + timedelta(days=45, hours=5), "Herald"),
        ],
    )
    db = tmp_path / "b.duckdb"
    assert main(["backfill", str(archive), "--db", str(db), "--step", "1d"]) == EXIT_OK
    stories = _stories(db)
    assert stories["may1"] == stories["may2"]
    assert stories["jul1"] == stories["jul2"]
    assert stories["may1"] != stories["jul1"]


def test_replaying_the_same_stream_twice_gives_identical_story_ids_and_memberships(
    tmp_path: Path, make_settings
) -> None:
    items = [
        (f"f{k}", FLOOD[k], T0 + timedelta(hours=7 * k), s) for k, s in enumerate(["Wire", "Daily", "Post"])
    ]
    items += [("f3", FLOOD_FOLLOW_UP, T0 + timedelta(days=8), "Daily")]
    items += [
        ("m1", SHOOTING_MAY, T0 + timedelta(days=2), "Gazette"),
        ("m2", SHOOTING_MAY_2, T0 + timedelta(days=2, hours=4), "Herald"),
    ]
    archive = _write(tmp_path / "stream.jsonl", items)
    results = []
    for name in ("one", "two"):
        db = tmp_path / f"{name}.duckdb"
        assert main(["backfill", str(archive), "--db", str(db), "--step", "12h"]) == EXIT_OK
        results.append(
            (
                query(db, "SELECT * EXCLUDE (assigned_at) FROM story_articles ORDER BY ALL"),
                query(db, "SELECT story_id, status, headline FROM stories ORDER BY ALL"),
                query(
                    db, "SELECT article_id, from_story, to_story, reason FROM membership_changes ORDER BY ALL"
                ),
            )
        )
    assert results[0] == results[1]
    assert len({s for _, s, *_ in results[0][0]}) == 2


def test_a_merge_retires_the_younger_id_and_every_retired_id_resolves_to_a_live_one(db_path: Path) -> None:
    from dataclasses import dataclass

    @dataclass
    class Change:
        article_id: str
        from_story: str | None
        to_story: str
        reason: str

    @dataclass
    class Event:
        kind: str
        story_id: str
        other_id: str

    now = T0
    with open_db(db_path) as con:
        apply_story_update(
            con,
            run_id=1,
            now=now,
            new_stories=["s_old", "s_young"],
            lineage=[],
            retired=[],
            changes=[Change("a1", None, "s_old", "new"), Change("a2", None, "s_young", "new")],
        )
        apply_story_update(
            con,
            run_id=2,
            now=now,
            new_stories=["s_third"],
            lineage=[],
            retired=[],
            changes=[Change("a3", None, "s_third", "new")],
        )
        # s_third merges into s_young, then s_young into s_old: a retired id two hops from the survivor.
        apply_story_update(
            con,
            run_id=3,
            now=now,
            new_stories=[],
            retired=["s_third"],
            lineage=[Event("merge", "s_third", "s_young")],
            changes=[Change("a3", "s_third", "s_young", "merge")],
        )
        apply_story_update(
            con,
            run_id=4,
            now=now,
            new_stories=[],
            retired=["s_young"],
            lineage=[Event("merge", "s_young", "s_old")],
            changes=[Change("a2", "s_young", "s_old", "merge"), Change("a3", "s_young", "s_old", "merge")],
        )
        assert resolve_story(con, "s_third") == resolve_story(con, "s_young") == "s_old"
        readme_query = """
            WITH RECURSIVE chain(story_id, hop) AS (
                SELECT 's_third'::VARCHAR, 0
                UNION ALL
                SELECT s.merged_into, c.hop + 1 FROM chain c JOIN stories s ON s.story_id = c.story_id
                WHERE s.status = 'merged'
            )
            SELECT c.story_id, c.hop, s.status FROM chain c JOIN stories s USING (story_id) ORDER BY hop
        """
        assert con.execute(readme_query).fetchall() == [
            ("s_third", 0, "merged"),
            ("s_young", 1, "merged"),
            ("s_old", 2, "live"),
        ]
        lineage = con.execute("SELECT kind, story_id, other_id FROM story_lineage ORDER BY run_id").fetchall()
        assert lineage == [
            ("merge", "s_third", "s_young"),
            ("merge", "s_young", "s_old"),
        ]
        assert con.execute("SELECT story_id, count(*) FROM story_articles GROUP BY 1").fetchall() == [
            ("s_old", 3)
        ]
