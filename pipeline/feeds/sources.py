"""The sources file: TOML with one [[sources]] table per feed."""

from __future__ import annotations

import difflib
import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.records import Source
from pipeline.settings import ConfigError

ENTRY_KEYS = ("name", "url", "language", "category", "aggregator", "fulltext")
_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*sources[ \t]*\]\]", re.MULTILINE)


def _resolve(url: str, base_dir: Path) -> str:
    """Remote URLs stay as written; local paths become absolute so the database is unambiguous."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https", "file"):
        return url
    if scheme and len(scheme) > 1:
        # Unsupported scheme: kept as is, the fetch step records it as an invalid URL.
        return url
    path = Path(url).expanduser()
    return str(path if path.is_absolute() else (base_dir / path).resolve())


def normalise_name(name: str) -> str:
    """A source's name as stored: no surrounding whitespace, inner runs of whitespace as one space."""
    return " ".join(name.split())


def normalise_category(category: str | None) -> str | None:
    """A category as stored: folder names joined by "/", each normalised like a name; None if empty."""
    parts = [normalise_name(part) for part in (category or "").split("/")]
    return "/".join(p for p in parts if p) or None


def same_url_key(url: str) -> str:
    """Two URLs that fetch the same feed: scheme and host compared without case."""
    parts = urlsplit(url)
    if parts.scheme.lower() in ("http", "https"):
        return parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()).geturl()
    return url


def _hint(key: str, known: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(key.lower(), known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"


def load_sources_file(path: Path) -> list[Source]:
    """Parse and validate a sources file. Raises ConfigError with a readable reason.

    Names are normalised (see ``normalise_name``); two entries whose names are then equal, ignoring
    case, or whose URLs are the same, are an error naming both.
    """
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError as exc:
        raise ConfigError(f"sources file {path} not found") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"sources file {path} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"sources file {path} cannot be read: {exc.strerror or exc}") from exc
    unknown_tables = sorted(set(data) - {"sources"})
    if unknown_tables:
        key = unknown_tables[0]
        raise ConfigError(f"sources file {path}: unknown top-level key {key!r}{_hint(key, ['sources'])}")
    entries = data.get("sources")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"sources file {path} has no [[sources]] tables")
    # "source #3 (line 12)" when every entry is a [[sources]] header we can find in the text.
    lines = [text.count("\n", 0, m.start()) + 1 for m in _HEADER.finditer(text)]

    def where(i: int) -> str:
        return f"source #{i} (line {lines[i - 1]})" if len(lines) == len(entries) else f"source #{i}"

    sources: list[Source] = []
    by_name: dict[str, tuple[int, str]] = {}
    by_url: dict[str, tuple[int, str]] = {}
    for i, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: {where(i)} is not a table")
        name, url, language = entry.get("name"), entry.get("url"), entry.get("language")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{path}: {where(i)} needs a non-empty 'name'")
        if not isinstance(url, str) or not url.strip():
            raise ConfigError(f"{path}: source {name!r} needs a non-empty 'url'")
        unknown = sorted(set(entry) - set(ENTRY_KEYS))
        if unknown:
            raise ConfigError(
                f"{path}: source {name!r} has unknown keys {unknown}{_hint(unknown[0], ENTRY_KEYS)}"
            )
        if language is not None and not isinstance(language, str):
            raise ConfigError(f"{path}: source {name!r}: 'language' must be a string such as \"en\"")
        category, aggregator = entry.get("category"), entry.get("aggregator", False)
        if category is not None and not isinstance(category, str):
            raise ConfigError(f"{path}: source {name!r}: 'category' must be a string such as \"World\"")
        if not isinstance(aggregator, bool):
            raise ConfigError(f"{path}: source {name!r}: 'aggregator' must be true or false")
        fulltext = entry.get("fulltext")
        if fulltext is not None and not isinstance(fulltext, bool):
            raise ConfigError(f"{path}: source {name!r}: 'fulltext' must be true or false")
        name = normalise_name(name)
        first = by_name.setdefault(name.casefold(), (i, name))
        if first[0] != i:
            raise ConfigError(
                f"{path}: {where(i)} {name!r} has the same name as {where(first[0])} {first[1]!r} "
                "(names are compared ignoring case and extra spaces); give each source its own name"
            )
        resolved = _resolve(url.strip(), path.parent)
        first = by_url.setdefault(same_url_key(resolved), (i, name))
        if first[0] != i:
            raise ConfigError(
                f"{path}: {where(i)} {name!r} has the same url as {where(first[0])} {first[1]!r} "
                f"({url.strip()}); list each feed once"
            )
        sources.append(
            Source(
                name=name,
                url=resolved,
                language=(language or "").strip() or None,
                category=normalise_category(category),
                aggregator=aggregator,
                fulltext=fulltext,
            )
        )
    return sources
