"""The digest page in a real browser: it shows the stories, and hostile feed text runs nothing."""

from __future__ import annotations

import struct
from datetime import timedelta
from pathlib import Path

import pytest

from devkit.browser import CHROMIUM_MISSING, chromium_path, load_page, screenshot
from pipeline.digest.html_page import CSP, render_html
from pipeline.digest.rank import DigestArticle, DigestHeader, DigestStory, rank_stories
from tests.digest_data import DAY, at

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(chromium_path() is None, reason=CHROMIUM_MISSING),
]

# Every payload, if it ever ran, would leave this mark in the title and the DOM. The
# script builds the mark from pieces, so the inert text of a payload never contains it.
MARK = "PWNED"
SET_MARK = "document.title='PW'+'NED';document.documentElement.setAttribute('data-'+'pwned','1')"
PAYLOADS = [
    f"<script>{SET_MARK}</script>Minister resigns",
    f'<img src=x onerror="{SET_MARK}"> Floods in the north',
    f'<svg onload="{SET_MARK}"><a xlink:href="javascript:{SET_MARK}">x</a></svg>',
    f'"><script>{SET_MARK}</script>',
    f'<iframe srcdoc="<script>parent.{SET_MARK}</script>"></iframe>',
    f'<style>body{{display:none}}</style><body onload="{SET_MARK}">',
]
# Hooks that would report execution even when a payload avoids the title.
EXECUTED = (
    "document.title.includes('PWNED') || document.documentElement.hasAttribute('data-pwned')"
    " || document.body.innerHTML.includes('data-pwned=\"1\"')"
)
ACTIVE_ELEMENTS = (
    "document.querySelectorAll('script, img, svg, iframe, object, embed, form, style[nonce], base').length"
)
LINK_PROTOCOLS = "[...document.querySelectorAll('a[href]')].map(a => a.protocol)"
VISIBLE_TEXT = "document.body.innerText"


def _hostile_page(tmp_path: Path, *, keep_csp: bool = True) -> Path:
    yesterday = DAY - timedelta(days=1)
    articles = [
        DigestArticle(
            article_id=f"h{i}",
            title=payload,
            source=f"Outlet {i}",
            url=url,
            published_at=at(DAY, 8 + i),
            summary=PAYLOADS[(i + 2) % len(PAYLOADS)],
        )
        for i, (payload, url) in enumerate(
            zip(
                PAYLOADS,
                [
                    f"javascript:{SET_MARK}",
                    f" JAVASCRIPT:{SET_MARK}",
                    "data:text/html,<script>alert(1)</script>",
                    'https://example.org/ok?a=1&b="><script>alert(1)</script>',
                    "vbscript:msgbox(1)",
                    None,
                ],
                strict=True,
            )
        )
    ]
    hostile = DigestStory(
        story_id="hostile",
        headline=PAYLOADS[1],
        keywords=[f"<script>{SET_MARK}</script>", "floods"],
        first_seen=at(DAY, 8),
        articles=articles,
    )
    calm = DigestStory(
        story_id="calm",
        headline="Storm makes landfall on the coast",
        keywords=["storm", "landfall"],
        first_seen=at(yesterday, 18),
        articles=[
            DigestArticle(
                "c1", "Storm approaches", "Wire Service", "https://wire.example/1", at(yesterday, 18)
            ),
            DigestArticle("c2", "Storm approaches", "Herald", "https://herald.example/2", at(DAY, 7), True),
            DigestArticle("c3", "Storm makes landfall", "Times", "https://times.example/3", at(DAY, 9)),
        ],
    )
    head = DigestHeader(
        day=DAY,
        sources_total=8,
        sources_ok=7,
        sources_failed=1,
        articles_in=9,
        generated_at=at(DAY, 7),
        topic=f'<img src=x onerror="{SET_MARK}">',
    )
    page = render_html(head, rank_stories([hostile, calm], DAY))
    if not keep_csp:
        # Without the CSP only escaping stands between a payload and the page.
        page = page.replace(f'<meta http-equiv="Content-Security-Policy" content="{CSP}">', "")
        assert "Content-Security-Policy" not in page
    path = tmp_path / ("digest.html" if keep_csp else "digest-no-csp.html")
    path.write_text(page, encoding="utf-8")
    return path


def _evaluate() -> dict[str, str]:
    return {
        "executed": EXECUTED,
        "active": ACTIVE_ELEMENTS,
        "protocols": LINK_PROTOCOLS,
        "text": VISIBLE_TEXT,
    }


def test_digest_loads_cleanly_and_shows_the_stories(tmp_path: Path) -> None:
    result = load_page(_hostile_page(tmp_path), evaluate=_evaluate())
    # A CSP violation or script error would show up here: nothing tried to run or load.
    assert result.console_errors == []
    assert result.title.startswith("Storyline digest — Monday 13 May 2024")
    text = result.values["text"]
    assert "Storm makes landfall on the coast" in text
    assert "Floods in the north" in text and "Minister resigns" in text
    assert "Covered by: Wire Service, Herald, Times" in text
    assert "8 sources: 7 fetched, 1 failed · 9 articles in" in text
    assert "Storm makes landfall" in result.dom and 'href="https://times.example/3"' in result.dom


@pytest.mark.parametrize("keep_csp", [True, False], ids=["with-csp", "escaping-alone"])
def test_hostile_feed_text_executes_nothing(tmp_path: Path, keep_csp: bool) -> None:
    result = load_page(_hostile_page(tmp_path, keep_csp=keep_csp), evaluate=_evaluate())
    assert result.values["executed"] is False
    assert MARK not in result.title
    assert 'data-pwned="1"' not in result.dom
    assert result.values["active"] == 0
    assert set(result.values["protocols"]) <= {"https:", "http:"}
    assert result.console_errors == []


def test_screenshot_of_the_digest(tmp_path: Path) -> None:
    png = screenshot(_hostile_page(tmp_path), tmp_path / "digest.png", width=1200, height=1800)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1200, 1800)
