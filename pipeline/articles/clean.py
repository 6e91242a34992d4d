"""Feed HTML to plain article text.

Output format (relied on by the boilerplate and title rules below): one block
per line. Block elements (p, div, li, headings, br ...) end a line, runs of
whitespace inside a line become one space, and there are no blank lines.
"""

from __future__ import annotations

import re
import unicodedata
from html import unescape
from html.parser import HTMLParser

# Their text is never article text.
_SKIP = frozenset(
    {"script", "style", "noscript", "iframe", "template", "svg", "math", "head", "object", "select"}
)
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "details", "div", "dl",
        "dt", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
        "html", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "td", "tfoot",
        "th", "thead", "tr", "ul",
    }
)  # fmt: skip
# Zero-width and soft-hyphen characters break word matching and carry no meaning.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINE = re.compile(r"\r?\n[^\S\n]*\r?\n\s*")
_NEWLINE = re.compile(r"[\r\n]")
_TAG = re.compile(r"<(/?[A-Za-z][\w:-]*|!--)")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self._skip_depth += 1
            return
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/>, <script/>: no content follows, so nothing to skip.
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
            return
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            # In HTML a newline is a space; a blank line still reads as a paragraph break.
            self.parts.append("\n".join(_NEWLINE.sub(" ", part) for part in _BLANK_LINE.split(data)))


def normalise_whitespace(text: str) -> str:
    """One block per line, single spaces, no blank or padded lines."""
    text = unicodedata.normalize("NFC", text.translate(_INVISIBLE)).replace("\r\n", "\n").replace("\r", "\n")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def html_to_text(html: str) -> str:
    """Readable text of an HTML fragment (or of plain text, which passes through)."""
    if not html:
        return ""
    if not _TAG.search(html):
        # Plain text (JSON Feed content_text, text/plain summaries): its newlines are real.
        return normalise_whitespace(unescape(html))
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser is lenient; this only guards against pathological input
        return normalise_whitespace(re.sub(r"<[^>]*>", " ", html))
    return normalise_whitespace("".join(parser.parts))


_WORD = re.compile(r"\w+")
# Separators between a repeated headline and the body: "Title: body", "Title — body", "Title | body".
_SEPARATORS = " \t\n.:;,!?-–—|·•»>"
# Closing quotes and brackets around a quoted headline: "“Headline”".
_CLOSERS = "\"'”’»)]"


def _words(text: str) -> list[str]:
    return [w.casefold() for w in _WORD.findall(text)]


def _headline_ends_here(rest: str, trailing: str, wanted: list[str]) -> bool:
    """Whether the words just matched are a headline, not the opening of the lede sentence."""
    if trailing and rest.startswith(trailing):
        return True
    after = rest.lstrip(" \t" + _CLOSERS)
    if not after or after.startswith("\n"):
        return True
    if _words(after)[: len(wanted)] == wanted and len(wanted) >= 2:
        return True  # the headline again
    if len(wanted) < 3:
        return False
    # "Title: body", "Title — body", or a headline run straight into a capitalised sentence.
    return after[0] in ".:;!?|–—·•»" or after.startswith("- ") or after[0].isupper()


def strip_repeated_title(title: str, text: str) -> str:
    """Drop the headline (once or repeatedly) from the start of the body.

    Matching is on words, ignoring case and punctuation. The match must end the
    way a headline does (line break, separator, the headline again, or a new
    capitalised sentence), so a lede that merely begins with the headline's
    words keeps them; a headline of one or two words must stand on its own line.
    """
    wanted = _words(title or "")
    if not wanted or not text:
        return text
    trailing = re.sub(r"^.*\w", "", title.strip(), flags=re.S)  # punctuation after the last word: '!' '?'
    for _ in range(3):
        matches = []
        for m in _WORD.finditer(text):
            matches.append(m)
            if len(matches) == len(wanted):
                break
        if [m.group().casefold() for m in matches] != wanted:
            break
        rest = text[matches[-1].end() :]
        if not _headline_ends_here(rest, trailing, wanted):
            break
        if trailing and rest.startswith(trailing):
            rest = rest[len(trailing) :]
        # Closers glued to the headline go; a quote opening the body's first sentence stays.
        text = rest.lstrip(_CLOSERS).lstrip(_SEPARATORS)
    return text


_BOILERPLATE = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"the post .{1,300} appeared first on .{1,200}",
        r"(this|the) (article|story|post|entry) (was )?(originally |first )?"
        r"(published|appeared|posted) (on|in|at|by) .*",
        r"(originally )?(published|posted) (on|at|in|by) [^.!?]{1,80}\.?",
        r"(continue|keep) reading\b.*",
        r"read (the )?(more|full (story|article|post)|on|this (story|article) on)\b.*",
        r"(more|full (story|article|coverage))\s*(»|›|→|\.\.\.|…|:)?",
        r".{0,80}\bclick here\b.{0,120}",
        r"comments? (are|is|will be) (moderated|closed|welcome|reviewed|subject)\b.*",
        r"(all )?comments (on this|are subject|will be|must)\b.*",
        r"the (views|opinions) (and opinions )?expressed (in|by|here)\b.*",
        r"(we|this site) (reserve|moderate)s? .{0,60}comments?\b.*",
        r"(please )?(leave|post|add) a comment\b.*",
        r"\d+ comments?|comments?|view comments|discuss(ion)?( on .{1,60})?",
        r"(©|\(c\)).{0,200}|copyright\s*(©|\(c\))?\s*\d{4}\b.{0,200}",
        r".{0,120}\ball rights reserved\.?",
        r"(subscribe|sign up)( now| today| here)?( (to|for) .{0,160})?",
        r"(share|follow us|like us)( this( article| story)?)?( on .{1,80})?:?",
        r"(related|see also|recommended|more from .{1,60})( (articles|stories|posts|links))?:?",
        r"advertisement|sponsored( content)?",
        r"\[?(\.\.\.|…)\]?",
    )
]
# Markers glued to the end of the last paragraph: "... last words [...]", "... said. Continue reading →".
# "read more" only counts after a finished sentence or before an arrow, so "I want to read more" stays.
_TRAILING_MARKER = re.compile(
    r"\s*\[(\.\.\.|…)\]\s*$"
    r"|(?<=[.!?…\"”])\s*(continue reading|read more|read the full (story|article))\W{0,5}$"
    r"|\s*(continue reading|read more)\s*(\.\.\.|…|»|›|→)\s*$",
    re.IGNORECASE,
)
# Boilerplate lines are short; a long paragraph is article text whatever it starts with.
_MAX_BOILERPLATE_LINE = 400


def _is_boilerplate(line: str) -> bool:
    line = line.strip()
    return len(line) <= _MAX_BOILERPLATE_LINE and any(p.fullmatch(line) for p in _BOILERPLATE)


def strip_boilerplate(text: str) -> str:
    """Remove trailing site boilerplate lines (feed footers, comment disclaimers, read-more links).

    Conservative: only whole trailing lines that match the pattern list go, and
    the scan stops at the first line that is article text.
    """
    lines = text.split("\n")
    while lines and (not lines[-1].strip() or _is_boilerplate(lines[-1])):
        lines.pop()
    if lines:
        lines[-1] = _TRAILING_MARKER.sub("", lines[-1])
    return "\n".join(lines).strip()


def clean_text(title: str | None, html: str | None) -> str:
    """Plain body text: HTML removed, repeated headline and trailing boilerplate dropped."""
    text = html_to_text(html or "")
    text = strip_boilerplate(text)
    return strip_repeated_title(html_to_text(title or ""), text)
