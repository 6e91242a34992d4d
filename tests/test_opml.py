"""OPML in and out: `storyline sources import FILE.opml [--into FILE]` and `storyline sources export`.

The OPML files here are written for these tests, shaped as Feedly, Inoreader, Miniflux, FreshRSS
and NetNewsWire export subscriptions.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from flows.cli import EXIT_OK, EXIT_USAGE, main
from flows.sources_command import import_opml
from pipeline.feeds.opml import OpmlError, read_opml, write_opml
from pipeline.feeds.sources import load_sources_file
from pipeline.records import Source
from pipeline.settings import ConfigError

FEEDLY = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>Ana subscriptions in feedly Cloud</title></head>
  <body>
    <outline text="World" title="World">
      <outline type="rss" text="Harbor Times" title="Harbor Times"
               xmlUrl="https://harbortimes.example/world/rss" htmlUrl="https://harbortimes.example"/>
      <outline type="rss" text="Valley Post" title="Valley Post"
               xmlUrl="https://valleypost.example/feed" htmlUrl="https://valleypost.example"/>
    </outline>
    <outline text="Tech" title="Tech">
      <outline type="rss" text="Circuit Weekly" title="Circuit Weekly"
               xmlUrl="https://circuit.example/atom.xml" htmlUrl=""/>
    </outline>
  </body>
</opml>
"""

# Inoreader and NetNewsWire: folders inside folders; Miniflux: title only; FreshRSS: text only,
# xmlURL spelt in another case; an outline with neither name; OPML 2.0's category attribute.
MIXED = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Subscriptions from Inoreader [https://www.inoreader.com]</title></head>
  <body>
    <outline text="News" title="News">
      <outline text="Europe" title="Europe">
        <outline text="Danube Daily" title="Danube Daily" type="rss" language="de"
                 xmlUrl="https://danube.example/rss.xml" htmlUrl="https://danube.example/"/>
      </outline>
      <outline title="Miniflux Style" type="rss" xmlUrl="https://miniflux-style.example/feed"/>
    </outline>
    <outline text="FreshRSS Style" type="rss" xmlURL="https://freshrss-style.example/feed"/>
    <outline type="rss" xmlUrl="https://nameless.example/rss"/>
    <outline text="Tagged" type="rss" category="/Science/Space,/Favourites" xmlUrl="https://tagged.example/rss"/>
    <outline text="Old Reader" type="rss" xmlUrl="feed://oldreader.example/rss"/>
  </body>
</opml>
"""

# Entries an import must leave out, each for its own reason.
BROKEN = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Broken</title></head>
  <body>
    <outline text="Harbor Times" type="rss" xmlUrl="https://harbortimes.example/world/rss"/>
    <outline text="Harbor Times again" type="rss" xmlUrl="HTTPS://HARBORTIMES.EXAMPLE/world/rss"/>
    <outline text="No address" type="rss"/>
    <outline text="A web page" type="link" url="https://example.org/"/>
    <outline text="Local file" type="rss" xmlUrl="file:///etc/passwd"/>
    <outline text="Script" type="rss" xmlUrl="javascript:alert(1)"/>
    <outline text="Harbor Times" type="rss" xmlUrl="https://other-harbor.example/rss"/>
  </body>
</opml>
"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE opml [
  <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<opml version="2.0"><head><title>&c;</title></head>
<body><outline text="&c;" type="rss" xmlUrl="https://laughs.example/rss"/></body></opml>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY x SYSTEM "file:///etc/hostname">]>
<opml version="2.0"><head><title>x</title></head>
<body><outline text="&x;" type="rss" xmlUrl="https://x.example/rss"/></body></opml>
"""

EXISTING = """# My feeds. Keep this comment.
[[sources]]
name = "Harbor Times (mine)"   # renamed by me
url = "https://harbortimes.example/world/rss"
language = "en"

[[sources]]
name = "Local snapshot"
url = "snapshots/local.xml"
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _by_name(path: Path) -> dict[str, Source]:
    return {s.name: s for s in load_sources_file(path)}


def test_a_feedly_export_becomes_a_sources_file_with_its_folders_as_categories(tmp_path: Path) -> None:
    outcome = import_opml(_write(tmp_path / "feedly.opml", FEEDLY), tmp_path / "sources.toml")

    assert outcome.created and len(outcome.plan.added) == 3 and outcome.folders == 2
    sources = _by_name(tmp_path / "sources.toml")
    assert {n: (s.url, s.category) for n, s in sources.items()} == {
        "Harbor Times": ("https://harbortimes.example/world/rss", "World"),
        "Valley Post": ("https://valleypost.example/feed", "World"),
        "Circuit Weekly": ("https://circuit.example/atom.xml", "Tech"),
    }


def test_names_come_from_text_or_title_and_nested_folders_make_a_path() -> None:
    doc = read_opml(MIXED.encode())

    feeds = {f.url: (f.name, f.category, f.language) for f in doc.feeds}
    assert feeds == {
        "https://danube.example/rss.xml": ("Danube Daily", "News/Europe", "de"),
        "https://miniflux-style.example/feed": ("Miniflux Style", "News", None),
        "https://freshrss-style.example/feed": ("FreshRSS Style", None, None),
        "https://nameless.example/rss": ("nameless.example", None, None),
        "https://tagged.example/rss": ("Tagged", "Science/Space", None),
        "http://oldreader.example/rss": ("Old Reader", None, None),
    }
    assert doc.folders == 2 and doc.invalid == []


def test_invalid_and_repeated_entries_are_reported_and_name_clashes_renamed(tmp_path: Path) -> None:
    outcome = import_opml(_write(tmp_path / "broken.opml", BROKEN), tmp_path / "sources.toml")

    assert [s.name for s in outcome.plan.added] == ["Harbor Times", "Harbor Times (other-harbor.example)"]
    assert len(outcome.plan.duplicates) == 1 and "outline #2" in outcome.plan.duplicates[0]
    reasons = "\n".join(outcome.invalid)
    assert len(outcome.invalid) == 4
    assert "'No address' has no xmlUrl" in reasons
    assert "'A web page' is a 'link' outline, not a feed" in reasons
    assert "file:///etc/passwd" in reasons and "javascript:alert(1)" in reasons
    assert outcome.plan.renamed == [
        "outline #7 'Harbor Times': name taken by another feed, "
        "added as 'Harbor Times (other-harbor.example)'"
    ]


def test_merging_into_an_existing_sources_file_keeps_its_entries_and_comments(tmp_path: Path) -> None:
    (tmp_path / "snapshots").mkdir()
    sources = _write(tmp_path / "sources.toml", EXISTING)
    sources.chmod(0o640)

    outcome = import_opml(_write(tmp_path / "feedly.opml", FEEDLY), sources)

    text = sources.read_text(encoding="utf-8")
    assert text.startswith(EXISTING), "the user's file is kept byte for byte, new entries appended"
    assert "# Imported from feedly.opml on " in text
    assert outcome.plan.already_listed == [
        "outline #2 'Harbor Times': already listed as 'Harbor Times (mine)'"
    ]
    merged = _by_name(sources)
    assert list(merged) == ["Harbor Times (mine)", "Local snapshot", "Valley Post", "Circuit Weekly"]
    assert merged["Harbor Times (mine)"].language == "en" and merged["Harbor Times (mine)"].category is None
    assert stat.S_IMODE(sources.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []

    again = import_opml(tmp_path / "feedly.opml", sources)
    assert again.plan.added == [] and len(again.plan.already_listed) == 3
    assert sources.read_text(encoding="utf-8") == text, "a second import changes nothing"


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external"])
def test_entity_declarations_are_refused_and_the_sources_file_left_alone(
    tmp_path: Path, document: str
) -> None:
    sources = _write(tmp_path / "sources.toml", EXISTING)

    with pytest.raises(ConfigError, match="refused: the document declares entities"):
        import_opml(_write(tmp_path / "evil.opml", document), sources)
    assert sources.read_text(encoding="utf-8") == EXISTING


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<rss version='2.0'><channel/></rss>", "root <rss>, not <opml>"),
        (b"<opml version='2.0'><head/></opml>", "without a <body>"),
        (b"<opml><body><outline", "not well-formed XML"),
    ],
)
def test_a_file_that_is_not_opml_says_why(body: bytes, why: str) -> None:
    with pytest.raises(OpmlError, match=why):
        read_opml(body)


def test_export_then_import_gives_back_the_same_sources(tmp_path: Path) -> None:
    (tmp_path / "snapshots").mkdir()
    sources = _write(tmp_path / "sources.toml", EXISTING)
    import_opml(_write(tmp_path / "mixed.opml", MIXED), sources)
    before = [s for s in load_sources_file(sources) if s.url.startswith("http")]

    doc = read_opml(write_opml(before, title="mine").encode())
    fresh = tmp_path / "fresh.toml"
    import_opml(_write(tmp_path / "round.opml", write_opml(before, title="mine")), fresh)

    assert len(doc.feeds) == len(before) == 7
    assert load_sources_file(fresh) == before


def test_the_cli_imports_exports_and_keeps_plain_sources_as_it_was(
    tmp_path: Path, make_settings, capsys: pytest.CaptureFixture[str]
) -> None:
    opml = _write(tmp_path / "feedly.opml", FEEDLY)
    sources = tmp_path / "feeds.toml"

    assert main(["sources", "import", str(opml), "--into", str(sources)]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("OPML: 3 feed outlines in 2 folders; added 3 to ")
    assert (
        main(["sources", "export", "--sources", str(sources), "--opml", str(tmp_path / "out.opml")])
        == EXIT_OK
    )
    assert "exported 3 feeds to" in capsys.readouterr().out
    assert {f.name for f in read_opml((tmp_path / "out.opml").read_bytes()).feeds} == {
        "Harbor Times",
        "Valley Post",
        "Circuit Weekly",
    }
    assert main(["sources", "export", "--sources", str(sources)]) == EXIT_OK
    assert capsys.readouterr().out.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">')

    assert main(["sources", "import", "--into", str(sources)]) == EXIT_USAGE
    assert main(["sources", "import", str(tmp_path / "absent.opml"), "--into", str(sources)]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("storyline: configuration error: OPML file ") and err[-1].endswith("not found")
    # Without an action the command still reports source health.
    assert main(["sources", "--db", str(tmp_path / "absent.duckdb")]) == 3
