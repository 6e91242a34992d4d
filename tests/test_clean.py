"""Article text cleaning: what a reader (and the embedding model) gets from feed HTML."""

from __future__ import annotations

import pytest

from pipeline.articles.clean import clean_text, html_to_text, strip_boilerplate, strip_repeated_title

TITLE = "River flooding forces evacuation of Lakeside village"


def test_headline_repeated_twice_and_comment_disclaimer_are_removed() -> None:
    html = (
        f"<h2>{TITLE}</h2>"
        f"<p>{TITLE.upper()}.</p>"
        "<p>About 300 residents of Lakeside were moved to the sports hall on Sunday night after the river "
        "burst its banks for the second time this winter.</p>"
        "<p>The council said the water was expected to recede by Wednesday.</p>"
        "<p>Comments are moderated and will appear after approval. The views expressed in the comments are "
        "those of our readers and do not reflect the views of this site.</p>"
    )
    text = clean_text(TITLE, html)
    assert text == (
        "About 300 residents of Lakeside were moved to the sports hall on Sunday night after the river "
        "burst its banks for the second time this winter.\n"
        "The council said the water was expected to recede by Wednesday."
    )


def test_html_becomes_one_block_per_line_without_scripts_or_entities() -> None:
    html = (
        "<div><p>First&nbsp;paragraph with   <b>bold</b>\n and a line\nbreak.</p>"
        "<script>var tracking = 1;</script><style>p { color: red }</style>"
        "<noscript>Enable JavaScript</noscript><iframe src='x'>frame text</iframe>"
        "<ul><li>one</li><li>two &amp; three</li></ul>Tail<br>after break</div>"
    )
    assert (
        html_to_text(html)
        == "First paragraph with bold and a line break.\none\ntwo & three\nTail\nafter break"
    )


def test_plain_text_keeps_its_line_breaks() -> None:
    assert html_to_text("Line one\n\n  Line two &amp; more\n") == "Line one\nLine two & more"


def test_broken_html_still_gives_text() -> None:
    assert html_to_text("<p>Unclosed <b>bold <i>text") == "Unclosed bold text"
    assert html_to_text("") == ""


@pytest.mark.parametrize(
    "body",
    [
        f"{TITLE}\nThe water rose overnight.",
        f"{TITLE.lower()}: The water rose overnight.",
        f"{TITLE} — The water rose overnight.",
        f"{TITLE} {TITLE} The water rose overnight.",
        f"“{TITLE}”\nThe water rose overnight.",
    ],
)
def test_headline_at_start_of_body_is_dropped(body: str) -> None:
    assert strip_repeated_title(TITLE, body) == "The water rose overnight."


def test_quote_opening_the_body_survives_headline_removal() -> None:
    body = f'{TITLE}\n"We lost everything," one resident said.'
    assert strip_repeated_title(TITLE, body) == '"We lost everything," one resident said.'


def test_lede_that_merely_begins_with_the_headline_words_is_kept() -> None:
    body = "Police arrest man, 35, after a chase through the city centre."
    assert strip_repeated_title("Police arrest man", body) == body
    body = "Police arrest man after a chase through the city centre."
    assert strip_repeated_title("Police arrest man", body) == body


def test_short_headline_is_only_dropped_when_it_stands_alone() -> None:
    assert (
        strip_repeated_title("Breaking", "Breaking news from the harbour.")
        == "Breaking news from the harbour."
    )
    assert strip_repeated_title("Breaking", "Breaking\nNews from the harbour.") == "News from the harbour."


def test_body_that_is_only_the_headline_becomes_empty() -> None:
    assert clean_text(TITLE, f"<p>{TITLE}</p>") == ""


@pytest.mark.parametrize(
    "footer",
    [
        "The post River flooding forces evacuation appeared first on Lakeside Gazette.",
        "Continue reading...",
        "Read more »",
        "Click here to subscribe to our newsletter",
        "Comments are closed.",
        "The views expressed in the comments are those of the readers.",
        "© 2024 Lakeside Gazette. All rights reserved.",
        "Copyright 2024 Example Media Ltd",
        "This article was originally published on The Conversation.",
        "12 comments",
    ],
)
def test_trailing_site_boilerplate_is_removed(footer: str) -> None:
    assert strip_boilerplate(f"The water rose overnight.\n{footer}") == "The water rose overnight."


def test_several_trailing_boilerplate_lines_go_together() -> None:
    text = "The water rose overnight.\nRead more\nComments are moderated.\n© Lakeside Gazette"
    assert strip_boilerplate(text) == "The water rose overnight."


def test_boilerplate_is_only_stripped_at_the_end() -> None:
    text = "Click here to read the council's statement, residents were told.\nThe water rose overnight."
    assert strip_boilerplate(text) == text


@pytest.mark.parametrize(
    "last_line",
    [
        "Copyright claims against the platform rose by a fifth last year.",
        "Register to vote by Friday at the town hall.",
        "Comments from residents will be collected until May.",
    ],
)
def test_article_sentences_that_resemble_boilerplate_stay(last_line: str) -> None:
    assert strip_boilerplate(f"Intro.\n{last_line}") == f"Intro.\n{last_line}"


def test_long_final_paragraph_is_article_text_whatever_it_starts_with() -> None:
    long_line = "Comments are welcome, the mayor said, " + "as the council reviews its flood plans " * 12
    assert strip_boilerplate(f"Intro.\n{long_line.strip()}") == f"Intro.\n{long_line.strip()}"


def test_read_more_markers_glued_to_the_last_sentence_are_removed() -> None:
    assert strip_boilerplate("The water rose overnight. Continue reading →") == "The water rose overnight."
    assert strip_boilerplate("The water rose overnight [...]") == "The water rose overnight"
    assert (
        strip_boilerplate("Residents said they wanted to read more")
        == "Residents said they wanted to read more"
    )


def test_guardian_style_summary_loses_its_continue_reading_link() -> None:
    html = (
        "<p>Ministers met on Monday.</p><p>A decision is due on Friday.</p> "
        '<a href="https://example.com/story">Continue reading...</a>'
    )
    assert clean_text("Ministers meet", html) == "Ministers met on Monday.\nA decision is due on Friday."
