"""Article pages as news sites serve them: the story inside realistic page furniture.

For tests and benchmarks of full-text extraction (flows.fulltext): navigation, a cookie banner,
share buttons, related links, a newsletter box, reader comments and a footer around the article's
own paragraphs. The furniture's wording is fixed and written by us, so a benchmark can count how
much of it leaks into extracted text (``FURNITURE_WORDS``).
"""

from __future__ import annotations

import re
from html import escape

NAV = ["Home", "World", "Business", "Energy", "Politics", "Sport", "Opinion", "Weather", "Podcasts"]
COOKIE = (
    "We use cookies and similar technologies to personalise content and advertising, to provide "
    "social media features and to analyse our traffic. By clicking accept you consent to this."
)
NEWSLETTER = (
    "Sign up for our morning briefing newsletter and get the headlines delivered to your inbox "
    "every weekday. You can unsubscribe at any time."
)
COMMENTS = [
    ("reader_1987", "Interesting piece, but who pays for all this in the end? Always the taxpayer."),
    ("skeptical_sam", "I will believe it when I see it. Promises like these never materialise."),
    ("marta.g", "Great reporting, thanks. Would love a follow-up on what happens next."),
]
FOOTER = "Copyright Example Media Group. All rights reserved. Privacy policy. Terms of use. Contact us."
RELATED = [
    "Ten things you missed this week",
    "Opinion: why the weekend forecast matters more than you think",
    "Watch: highlights from last night's match",
    "Our podcast asks what comes after the holidays",
]

_WORD = re.compile(r"\w+")
FURNITURE_WORDS = frozenset(
    w.lower()
    for text in (
        *NAV, COOKIE, NEWSLETTER, FOOTER, *RELATED, *(c for _, c in COMMENTS), *(n for n, _ in COMMENTS),
        "Accept all Reject Manage preferences Share on Facebook Share on X Email Print Related stories "
        "Comments Subscribe Most read Advertisement Skip to content",
    )
    for w in _WORD.findall(text)
)  # fmt: skip


def article_page(
    title: str,
    paragraphs: list[str],
    *,
    published: str | None = None,
    byline: str = "",
    opaque: bool = False,
    comments: list[tuple[str, str]] | None = None,
) -> str:
    """An HTML page holding one article (``title`` and ``paragraphs``) and the furniture above.

    ``comments``: (author, text) pairs in place of the fixed COMMENTS. ``opaque``: the harder kind
    of page, as sites built with CSS-in-JS serve it: only <div>, <ul> and
    <p> with generated class names, so neither tags (<nav>, <article>, <footer>) nor class names
    ("comments", "newsletter") say which part is the article.
    """
    comments = COMMENTS if comments is None else comments
    if opaque:
        return _opaque_page(title, paragraphs, published, comments)
    nav = "".join(f'<li><a href="/section/{escape(n.lower())}">{escape(n)}</a></li>' for n in NAV)
    related = "".join(f'<li><a href="/related/{i}">{escape(r)}</a></li>' for i, r in enumerate(RELATED))
    thread = "".join(
        f'<div class="comment"><span class="author">{escape(n)}</span><p>{escape(c)}</p></div>'
        for n, c in comments
    )
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    when = f'<time datetime="{escape(published)}">{escape(published)}</time>' if published else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)} | Example News</title>
<meta property="og:title" content="{escape(title)}"></head>
<body>
<a class="skip" href="#main">Skip to content</a>
<div id="cookie-banner" class="cookie-consent"><p>{escape(COOKIE)}</p>
<button>Accept all</button><button>Reject</button><a href="/privacy">Manage preferences</a></div>
<header><nav class="main-nav"><ul>{nav}</ul></nav></header>
<aside class="ad">Advertisement</aside>
<main id="main"><article>
<h1>{escape(title)}</h1>
<div class="byline">{escape(byline)} {when}</div>
<div class="share"><a href="#">Share on Facebook</a> <a href="#">Share on X</a> <a href="#">Email</a>
<a href="#">Print</a></div>
<div class="article-body">{body}</div>
</article>
<section class="newsletter"><h3>Subscribe</h3><p>{escape(NEWSLETTER)}</p>
<form><input type="email"><button>Subscribe</button></form></section>
<section class="related"><h2>Related stories</h2><ul>{related}</ul></section>
<section class="comments" id="comments"><h2>Comments</h2>{thread}</section>
</main>
<aside class="most-read"><h2>Most read</h2><ul>{related}</ul></aside>
<footer><p>{escape(FOOTER)}</p></footer>
</body></html>"""


def _opaque_page(
    title: str, paragraphs: list[str], published: str | None, comments: list[tuple[str, str]]
) -> str:
    def block(n: int, inner: str) -> str:
        return f'<div class="css-{n:x}q{n * 7919 % 65536:x}">{inner}</div>'

    def para(text: str) -> str:
        return f"<p>{escape(text)}</p>"

    links = "".join(f'<li><a href="/s/{i}">{escape(x)}</a></li>' for i, x in enumerate(NAV))
    related = "".join(f'<li><a href="/r/{i}">{escape(x)}</a></li>' for i, x in enumerate(RELATED))
    thread = "".join(block(40 + i, para(n) + para(c)) for i, (n, c) in enumerate(comments))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        + f"<title>{escape(title)}</title></head><body>"
        + block(1, para(COOKIE) + para("Accept all") + para("Reject") + para("Manage preferences"))
        + block(2, f"<ul>{links}</ul>")
        + block(3, f'<div class="css-h1">{escape(title)}</div>' + para(published or ""))
        + block(4, para("Share on Facebook") + para("Share on X") + para("Email") + para("Print"))
        + block(5, "".join(para(p) for p in paragraphs))
        + block(6, para("Subscribe") + para(NEWSLETTER))
        + block(7, para("Related stories") + f"<ul>{related}</ul>")
        + block(8, para("Comments") + thread)
        + block(9, para("Most read") + f"<ul>{related}</ul>")
        + block(10, para(FOOTER))
        + "</body></html>"
    )
