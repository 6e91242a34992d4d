"""The daily digest: which stories a reader sees for a day, in what order, and how safely."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from pipeline.digest import (
    CSP,
    DigestArticle,
    DigestHeader,
    DigestStory,
    RankedStory,
    digest_basename,
    md_text,
    rank_stories,
    render_html,
    render_markdown,
    safe_url,
)
from pipeline.topics import match_topics, topic_text

DAY = date(2024, 5, 13)
_ids = iter(range(1, 1_000_000))


def at(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def art(
    source: str,
    when: datetime,
    *,
    dup: bool = False,
    title: str | None = None,
    url: str | None = "",
    summary: str | None = None,
) -> DigestArticle:
    n = next(_ids)
    link = f"https://{source.lower().replace(' ', '')}.example/news/{n}" if url == "" else url
    return DigestArticle(
        article_id=f"art-{n}",
        title=title or f"{source} report {n}",
        source=source,
        url=link,
        published_at=when,
        is_duplicate=dup,
        summary=summary,
    )


def story(
    story_id: str,
    articles: list[DigestArticle],
    *,
    headline: str | None = None,
    first_seen: datetime | None = None,
    keywords: list[str] | None = None,
    topics: list[str] | None = None,
) -> DigestStory:
    return DigestStory(
        story_id=story_id,
        headline=headline or f"Headline of {story_id}",
        keywords=keywords or ["alpha", "beta"],
        first_seen=first_seen or min(a.published_at for a in articles),
        articles=articles,
        topics=topics or [],
    )


def header(**changes: object) -> DigestHeader:
    values: dict[str, object] = {
        "day": DAY,
        "sources_total": 12,
        "sources_ok": 11,
        "sources_failed": 1,
        "articles_in": 57,
        "generated_at": at(DAY, 7),
    }
    values.update(changes)
    return DigestHeader(**values)  # type: ignore[arg-type]


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
    from pipeline.embed import embed_texts, load_model

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


# ---------------------------------------------------------------- rendering

HOSTILE_TITLE_SCRIPT = "<script>alert(1)</script>Minister resigns"
HOSTILE_TITLE_IMG = "<img src=x onerror=alert(1)> Floods in the north"
HOSTILE_SUMMARY = '<svg><a xlink:href="javascript:alert(1)">x</a></svg> Rain <b>continues</b> <iframe src="https://evil.example"></iframe>'
MARKDOWN_TRAP = "[click me](javascript:alert(1)) *bold* `code`\n# Fake heading"


def _digest() -> tuple[DigestHeader, list[RankedStory]]:
    yesterday = DAY - timedelta(days=1)
    calm = story(
        "calm-1",
        [
            art("Wire", at(yesterday, 18), title="Storm approaches the coast"),
            art("Herald", at(DAY, 7), dup=True, title="Storm approaches the coast"),
            art("Times", at(DAY, 9, 30), title="Storm makes landfall", summary="Winds of 150 km/h & rising."),
        ],
        headline="Storm makes landfall",
        keywords=["storm", "landfall"],
    )
    hostile = story(
        "evil-2",
        [
            art(
                "Post",
                at(DAY, 8),
                title=HOSTILE_TITLE_SCRIPT,
                url="javascript:alert(1)",
                summary=HOSTILE_SUMMARY,
            ),
            art("Globe", at(DAY, 10), title=HOSTILE_TITLE_IMG, url=" JaVaScRiPt:alert(1)"),
            art("Mail", at(DAY, 11), title=MARKDOWN_TRAP, url="data:text/html,<script>alert(1)</script>"),
            art("Sun", at(DAY, 12), title="Plain title", url=None),
            art("Star", at(DAY, 13), title="<img src=x onerror=alert(1)>", url="javascript:void(0)"),
        ],
        headline=HOSTILE_TITLE_IMG,
        keywords=["<b>kw</b>", "a_b*c"],
    )
    return header(), rank_stories([calm, hostile], DAY)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


def test_markdown_shows_header_headlines_status_outlets_and_links() -> None:
    head, ranked = _digest()
    md = render_markdown(head, ranked)
    assert "Monday 13 May 2024" in md
    assert "12 sources: 11 fetched, 1 failed" in md and "57 articles in" in md
    assert "Storm makes landfall" in md
    assert "**DEVELOPING** · since Sun 12 May 2024" in md
    assert "**NEW**" in md
    assert "Outlets: Wire, Herald, Times" in md
    assert "3 articles · 2 independent sources · 1 syndicated copy" in md
    assert re.search(r"\[Storm makes landfall\]\(https://times\.example/news/\d+\) — Times, 09:30", md)
    assert "Keywords: storm, landfall" in md


def test_html_shows_header_headlines_status_outlets_timeline_and_links() -> None:
    head, ranked = _digest()
    page = render_html(head, ranked)
    assert "<title>Storyline digest — Monday 13 May 2024</title>" in page
    assert "12 sources: 11 fetched, 1 failed · 57 articles in" in page
    assert "Storm makes landfall" in page
    assert '<span class="badge developing">developing</span>' in page
    assert '<span class="badge new">new</span>' in page
    assert "Covered by: Wire, Herald, Times" in page
    assert 'class="timeline"' in page and "Articles per day: 12 May: 1, 13 May: 2" in page
    links = [attrs for tag, attrs in _tags(page) if tag == "a"]
    assert any(re.fullmatch(r"https://times\.example/news/\d+", a["href"] or "") for a in links)


def test_html_neutralises_hostile_feed_text() -> None:
    head, ranked = _digest()
    page = render_html(head, ranked)
    tags = _tags(page)
    allowed = {"html", "head", "meta", "link", "title", "style", "body", "header", "h1", "h2", "p",
               "time", "main", "article", "span", "div", "ul", "li", "a", "details", "summary"}  # fmt: skip
    assert {tag for tag, _ in tags} <= allowed
    for tag, attrs in tags:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        if tag == "a":
            assert (attrs["href"] or "").startswith(("https://", "http://"))
            assert attrs["rel"] == "noopener noreferrer"
    attribute_values = " ".join(v or "" for _, attrs in tags for v in attrs.values()).casefold()
    assert "javascript:" not in attribute_values and "data:text" not in attribute_values
    assert "<svg" not in page and "<iframe" not in page and "<img" not in page
    # Stored feed text is plain text: what looks like markup in it is characters the outlet
    # published, shown escaped (inert) rather than dropped or parsed.
    assert "&lt;img src=x onerror=alert(1)&gt; Floods in the north" in page
    assert "&lt;a xlink:href=&quot;javascript:alert(1)&quot;&gt;" in page
    assert "Rain &lt;b&gt;continues&lt;/b&gt;" in page
    # Non-http(s) links are shown as plain text, not as links.
    assert '<span class="nolink">&lt;script&gt;alert(1)&lt;/script&gt;Minister resigns</span>' in page
    assert '<span class="nolink">Plain title</span>' in page


def test_html_page_is_self_contained_and_forbids_scripts() -> None:
    head, ranked = _digest()
    page = render_html(head, ranked)
    metas = [attrs for tag, attrs in _tags(page) if tag == "meta"]
    assert {"http-equiv": "Content-Security-Policy", "content": CSP} in metas
    assert "default-src 'none'" in CSP and "script-src" not in CSP
    for tag, attrs in _tags(page):
        for name in ("src", "href"):
            value = attrs.get(name)
            if value is not None and tag != "a":
                assert value.startswith("data:"), (tag, attrs)


def test_markdown_neutralises_hostile_feed_text() -> None:
    head, ranked = _digest()
    md = render_markdown(head, ranked)
    assert "<" not in md.replace("&lt;", "")
    assert "javascript:alert" not in md.replace("javascript:alert\\(1\\)", "")
    targets = re.findall(r"\]\(([^)]*)\)", md)
    assert targets and all(t.startswith(("https://", "http://")) for t in targets)
    # The trap title cannot start a heading or a link of its own.
    assert not [line for line in md.splitlines() if line.startswith("# Fake")]
    assert "\\[click me\\]\\(javascript:alert\\(1\\)\\)" in md


def test_markdown_renders_to_inert_html() -> None:
    markdown_it = pytest.importorskip("markdown_it")
    head, ranked = _digest()
    # The CommonMark preset passes raw HTML through: the strictest reading of our output.
    rendered = markdown_it.MarkdownIt("commonmark").render(render_markdown(head, ranked))
    tags = _tags(rendered)
    assert {tag for tag, _ in tags} <= {"h1", "h2", "p", "br", "strong", "em", "ul", "li", "a"}
    hrefs = [attrs["href"] or "" for tag, attrs in tags if tag == "a"]
    assert hrefs and all(h.startswith(("https://", "http://")) for h in hrefs)
    assert "Minister resigns" in rendered and "[click me](javascript:alert(1))" in rendered
    # Only the digest's own title is a top-level heading: feed text made none.
    assert sum(1 for tag, _ in tags if tag == "h1") == 1


def test_empty_day_says_so() -> None:
    assert "No stories had coverage on this day" in render_html(header(), [])
    assert "No stories had coverage on this day" in render_markdown(header(), [])


def test_topic_digest_names_its_topic_and_file() -> None:
    head = header(topic="Energy & <Power>")
    assert "Energy &amp; &lt;Power&gt;" in render_html(head, [])
    assert "Energy &amp; &lt;Power&gt;" in render_markdown(head, [])
    assert digest_basename(DAY) == "digest-2024-05-13"
    assert digest_basename(DAY, "Energy & <Power>") == "digest-2024-05-13-energy-power"
    assert digest_basename(DAY, "../../etc") == "digest-2024-05-13-etc"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/a?b=1#c", "https://example.com/a?b=1#c"),
        ("http://example.com", "http://example.com"),
        ("  https://example.com/x  ", "https://example.com/x"),
        ("javascript:alert(1)", None),
        ("JavaScript:alert(1)", None),
        ("java\tscript:alert(1)", None),
        ("https://exa mple.com", None),
        ("data:text/html,hi", None),
        ("vbscript:msgbox", None),
        ("//example.com/path", None),
        ("/relative/path", None),
        ("http://", None),
        ("http://[::1", None),
        ("", None),
        (None, None),
    ],
)
def test_only_absolute_http_links_are_kept(url: str | None, expected: str | None) -> None:
    assert safe_url(url) == expected


def test_md_text_escapes_markdown_and_html() -> None:
    assert md_text("a*b_c [x](y) <i>&") == "a\\*b\\_c \\[x\\]\\(y\\) &lt;i&gt;&amp;"
    assert md_text("line one\n# two") == "line one \\# two"
