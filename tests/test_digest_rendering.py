"""The daily digest as a reader gets it, in Markdown and HTML, and how safely it treats feed text."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from pipeline.digest.html_page import CSP, render_html
from pipeline.digest.markdown_page import md_text, render_markdown
from pipeline.digest.rank import DigestHeader, RankedStory, rank_stories
from pipeline.digest.wording import digest_basename, safe_url
from tests.digest_data import DAY, art, at, header, story

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
