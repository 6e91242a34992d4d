"""Accuracy of article language detection on real multilingual feeds.

    .venv/bin/python bench/language.py [--root ../shared/feeds/realworld-feeds] [--dump FILE.jsonl]

Each captured feed listed in FEEDS below goes through the real path, parse_feed then
entries_to_articles with a source that configures no language, so every article's language is
detected (pipeline.articles.language). The expected language of an article is its outlet's
publishing language: every feed here is an outlet's own feed in one language (BBC Urdu in Urdu,
Golem and heise in German, 20minutos in Spanish, ...), so an item in another language would count
against the detector; none was seen when the feeds were listed. SAMPLES adds short texts written
for this benchmark in languages the feeds lack or have few items of.

Prints accuracy (correct / all; an undecided article counts as wrong), how many were left
undecided, accuracy among those decided, and the same per language, then the detection speed.
--dump writes (text, expected) lines, to score other detectors on the same items.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.articles.language import detect_language, language_sample
from pipeline.articles.normalise import entries_to_articles
from pipeline.feeds.parse import parse_feed
from pipeline.records import Source

DEFAULT_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "feeds" / "realworld-feeds"
FETCHED_AT = datetime(2030, 1, 1, tzinfo=UTC)

# Captured feed -> the language its outlet publishes in.
FEEDS = {
    "chrome-extension-mocks-2019/20minutos.xml": "es",
    "chrome-extension-mocks-2019/as.xml": "es",
    "chrome-extension-mocks-2019/elconfidencial.xml": "es",
    "chrome-extension-mocks-2019/eldiario.xml": "es",
    "chrome-extension-mocks-2019/elmundo.xml": "es",
    "chrome-extension-mocks-2019/elpais.xml": "es",
    "chrome-extension-mocks-2019/europapress.xml": "es",
    "chrome-extension-mocks-2019/expansion.xml": "es",
    "chrome-extension-mocks-2019/laopinion.xml": "es",
    "chrome-extension-mocks-2019/libertaddigital.xml": "es",
    "chrome-extension-mocks-2019/periodico-extremadura.xml": "es",
    "chrome-extension-mocks-2019/bbc.xml": "en",
    "chrome-extension-mocks-2019/cnn.xml": "en",
    "chrome-extension-mocks-2019/huffpost.xml": "en",
    "chrome-extension-mocks-2019/nytimes.xml": "en",
    "chrome-extension-mocks-2019/nytimes-science.xml": "en",
    "chrome-extension-mocks-2019/theguardian.xml": "en",
    "bbc-world-2019/bbc_world_2019-02-24.xml": "en",
    "jpost-2023/jpost_homepage_2023-02-25.xml": "en",
    "miniflux-testdata/parser__encoding_ISO-8859-1.xml": "de",
    "miniflux-testdata/parser__rdf_UTF8.xml": "de",
    "miniflux-testdata/parser__urdu_UTF8.xml": "ur",
    "miniflux-testdata/parser__encoding_WINDOWS-1251.xml": "ru",
    "miniflux-testdata/encoding__koi8r.xml": "ru",
    "rsparser/aktuality.rss": "sk",
    "rsparser/phpxml.rss": "nl",
    "rsparser/livemint.xml": "en",
}

# Written for this benchmark: one news-like sentence each.
SAMPLES = [
    (
        "Le gouvernement a annoncé mardi une nouvelle aide pour les agriculteurs touchés par la sécheresse.",
        "fr",
    ),
    ("Les syndicats appellent à une grève nationale contre la réforme des retraites.", "fr"),
    ("Il governo italiano ha approvato la legge di bilancio dopo una lunga notte di trattative.", "it"),
    ("Migliaia di persone sono scese in piazza a Roma per protestare contro la guerra.", "it"),
    ("O presidente brasileiro anunciou um novo plano para proteger a floresta amazônica.", "pt"),
    ("As chuvas fortes provocaram deslizamentos de terra no litoral de São Paulo.", "pt"),
    ("Die Bundesregierung will die Schuldenbremse im kommenden Jahr wieder einhalten.", "de"),
    ("Nach dem Unwetter sind in Bayern noch immer tausende Haushalte ohne Strom.", "de"),
    ("El Banco Central Europeo mantiene los tipos de interés sin cambios por tercera vez.", "es"),
    ("Правительство объявило о повышении пенсий с первого января следующего года.", "ru"),
    ("Сильный снегопад парализовал движение в Москве в понедельник утром.", "ru"),
    ("لاہور میں شدید دھند کے باعث موٹروے کو ٹریفک کے لیے بند کر دیا گیا", "ur"),
    ("وزیراعظم نے کابینہ کے اجلاس میں مہنگائی پر قابو پانے کی ہدایت کی", "ur"),
    ("Central bank raises interest rates to curb persistent inflation", "en"),
    ("Floods force thousands from their homes after a night of torrential rain", "en"),
    ("De regering wil de belasting op arbeid verlagen en vermogen zwaarder belasten.", "nl"),
    ("Vláda schválila návrh rozpočtu na budúci rok s nižším deficitom.", "sk"),
    ("Rząd przyjął projekt ustawy o podwyżce płacy minimalnej od przyszłego roku.", "pl"),
    ("Hükümet, asgari ücrete yılın ikinci yarısında zam yapılmayacağını açıkladı.", "tr"),
    ("Regeringen föreslår sänkt skatt på el och diesel inför vintern.", "sv"),
]


def feed_items(root: Path) -> list[tuple[str, str, str, str | None]]:
    """(where, expected, detection text, detected) for every article of the listed feeds."""
    items = []
    for rel, expected in FEEDS.items():
        path = root / rel
        if not path.is_file():
            print(f"missing: {path}", file=sys.stderr)
            continue
        feed = parse_feed(path.read_bytes())
        source = Source(name=rel, url=str(path))
        articles, _ = entries_to_articles(feed, source, FETCHED_AT)
        for a in articles:
            items.append((rel, expected, language_sample(a.title, a.text), a.language))
    return items


def report(name: str, rows: list[tuple[str, str | None]]) -> None:
    total = len(rows)
    correct = sum(1 for expected, got in rows if got == expected)
    undecided = sum(1 for _, got in rows if got is None)
    decided = total - undecided
    precision = correct / decided if decided else 0.0
    print(
        f"{name:<10} {total:>5} items  accuracy {correct / total if total else 0:.3f}  "
        f"undecided {undecided:>3}  accuracy of decided {precision:.3f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--dump", type=Path, help="write text and expected language as JSON Lines")
    args = parser.parse_args()
    started = time.perf_counter()
    detect_language("warm up the model", "so that loading is not counted as detection time")
    loaded = time.perf_counter() - started

    items = feed_items(args.root)
    samples = [("own-samples", lang, text, detect_language(text, "")) for text, lang in SAMPLES]
    all_items = items + samples
    rows = [(expected, got) for _, expected, _, got in all_items]
    print(f"language detection (py3langid via pipeline.articles.language), model load {loaded:.1f}s")
    report("all", rows)
    report("feeds", [(e, g) for _, e, _, g in items])
    report("own", [(e, g) for _, e, _, g in samples])
    for lang in sorted({e for e, _ in rows}):
        report(f"  {lang}", [(e, g) for e, g in rows if e == lang])
    wrong = Counter((e, g) for e, g in rows if g != e)
    if wrong:
        print(
            "confusions (expected -> got): "
            + ", ".join(f"{e}->{g} x{n}" for (e, g), n in wrong.most_common(10))
        )
    texts = [text for _, _, text, _ in all_items]
    started = time.perf_counter()
    for text in texts:
        detect_language(text, "")
    elapsed = time.perf_counter() - started
    print(f"speed: {len(texts) / elapsed:,.0f} articles/s on one thread")
    if args.dump:
        with args.dump.open("w", encoding="utf-8") as out:
            for where, expected, text, _ in all_items:
                out.write(
                    json.dumps({"where": where, "expected": expected, "text": text}, ensure_ascii=False)
                    + "\n"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
