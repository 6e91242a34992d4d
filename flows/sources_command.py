"""`storyline sources import FILE.opml` and `storyline sources export`: the sources file to and from
the OPML subscription lists that feed readers exchange."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.feeds.opml import MAX_OPML_BYTES, OpmlError, read_opml, write_opml
from pipeline.feeds.sources import load_sources_file
from pipeline.feeds.sources_merge import MergePlan, appended, plan_import
from pipeline.settings import ConfigError
from storage.files import write_atomically

# Problems named one by one in the report; the counts cover them all.
SHOWN = 20


@dataclass
class ImportOutcome:
    opml_feeds: int
    folders: int
    invalid: list[str]
    plan: MergePlan
    into: Path
    created: bool


def _read_opml_file(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_OPML_BYTES + 1)
    except FileNotFoundError as exc:
        raise ConfigError(f"OPML file {path} not found") from exc
    except OSError as exc:
        raise ConfigError(f"OPML file {path} cannot be read: {exc.strerror or exc}") from exc


def import_opml(opml_path: Path, into: Path, *, now: datetime | None = None) -> ImportOutcome:
    """Add the feeds of an OPML file to the sources file ``into`` (created if missing).

    Raises ConfigError, leaving the sources file untouched, when the OPML file cannot be read or
    is not OPML, or when the sources file exists but is not valid.
    """
    try:
        doc = read_opml(_read_opml_file(opml_path))
    except OpmlError as exc:
        raise ConfigError(f"OPML file {opml_path}: {exc}") from exc
    created = not into.exists()
    existing = [] if created else load_sources_file(into)
    text = "" if created else into.read_text(encoding="utf-8")
    if created and not into.parent.is_dir():
        raise ConfigError(f"cannot create sources file {into}: folder {into.parent} does not exist")
    plan = plan_import(doc.feeds, existing)
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    new_text = appended(text, plan.added, f"Imported from {opml_path.name} on {stamp}")
    if plan.added:
        # The new file must read back as a valid sources file before it replaces the old one.
        write_atomically(into, new_text, check=load_sources_file)
    return ImportOutcome(
        opml_feeds=len(doc.feeds) + len(doc.invalid),
        folders=doc.folders,
        invalid=doc.invalid,
        plan=plan,
        into=into,
        created=created and bool(plan.added),
    )


def print_import(outcome: ImportOutcome) -> None:
    plan = outcome.plan
    print(
        f"OPML: {outcome.opml_feeds} feed outlines in {outcome.folders} folders; "
        f"added {len(plan.added)} to {outcome.into}{' (new file)' if outcome.created else ''}, "
        f"already listed {len(plan.already_listed)}, duplicates {len(plan.duplicates)}, "
        f"invalid {len(outcome.invalid)}, renamed {len(plan.renamed)}"
    )
    for what, lines in (
        ("invalid", outcome.invalid),
        ("duplicate", plan.duplicates),
        ("already listed", plan.already_listed),
        ("renamed", plan.renamed),
    ):
        for line in lines[:SHOWN]:
            print(f"  {what}: {line}", file=sys.stderr)
        if len(lines) > SHOWN:
            print(f"  ... and {len(lines) - SHOWN} more {what}", file=sys.stderr)


def export_opml(
    sources_path: Path, out: Path | None, *, now: datetime | None = None
) -> tuple[int, list[str]]:
    """Write the sources file's feeds as OPML 2.0 to ``out`` (stdout when None).

    Returns how many feeds were written and the sources left out (local files: a feed reader
    elsewhere cannot read them).
    """
    sources = load_sources_file(sources_path)
    remote = [s for s in sources if urlsplit(s.url).scheme.lower() in ("http", "https")]
    left_out = [s.name for s in sources if s not in remote]
    text = write_opml(remote, title=f"Storyline sources ({sources_path.name})", now=now)
    if out is None:
        sys.stdout.write(text)
    else:
        if not out.parent.is_dir():
            raise ConfigError(f"cannot write {out}: folder {out.parent} does not exist")
        write_atomically(out, text)
    return len(remote), left_out
