"""The reading commands: `storyline web`, `storyline search`, `storyline feed`."""

from __future__ import annotations

import argparse
import re

from pipeline.settings import ConfigError
from storage.files import write_atomically


def cmd_web(args: argparse.Namespace) -> int:
    from flows.web.server import serve_web

    web = args.settings.web
    web.host = args.host or web.host
    web.port = args.port or web.port
    web.public = web.public or args.public
    return serve_web(args.settings)


def cmd_search(args: argparse.Namespace) -> int:
    from flows.output import print_json, print_table
    from flows.reading import ReadView
    from flows.shared import database

    query = " ".join(args.query.split())
    if not query:
        raise ConfigError("the search query is empty")
    with database(args.settings, read_only=True) as con:
        view = ReadView.of_live_file(con, args.settings)
        hits = view.search(query, since=args.since, until=args.until, limit=args.limit)
    columns = ["story_id", "headline", "score", "cosine", "word_share", "article_count", "last_seen"]
    rows = [
        [row.story_id, row.headline, hit.score, hit.cosine, hit.word_share, row.article_count, row.last_seen]
        for hit, row in hits
    ]
    if args.json:
        print_json(columns, rows)
    else:
        print_table(["story", "headline", "score", "cosine", "words", "articles", "last seen"], rows)
    return 0


def cmd_feed(args: argparse.Namespace) -> int:
    from flows.reading import ReadView
    from flows.shared import database

    settings = args.settings
    base = args.base_url or settings.web.base_url
    if base and not re.match(r"^https?://\S+$", base):
        raise ConfigError(f"--base-url must be an http(s) URL, not {base!r}")
    with database(settings, read_only=True) as con:
        view = ReadView.of_live_file(con, settings)
        stories = view.feed_stories(args.topic)  # checks the topic
        path = f"/feeds/topics/{args.topic}.atom" if args.topic else "/feeds/stories.atom"
        body = view.atom(args.topic, base_url=base, self_path=path, stories=stories)
        entries = len(stories)
    out = args.out
    if not out.parent.exists():
        raise FileNotFoundError(f"cannot write {out}: folder {out.parent} does not exist")
    # A feed reader polling the file never sees half of it.
    write_atomically(out, body)
    print(f"wrote {out}: {entries} stories")
    return 0
