"""The sources file: TOML with one [[sources]] table per feed."""

from __future__ import annotations

import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from pipeline.records import Source
from pipeline.settings import ConfigError


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


def load_sources_file(path: Path) -> list[Source]:
    """Parse and validate a sources file. Raises ConfigError with a readable reason."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"sources file {path} not found") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"sources file {path} is not valid TOML: {exc}") from exc
    entries = data.get("sources")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"sources file {path} has no [[sources]] tables")
    sources: list[Source] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: source #{i} is not a table")
        name, url = entry.get("name"), entry.get("url")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{path}: source #{i} needs a non-empty 'name'")
        if not isinstance(url, str) or not url.strip():
            raise ConfigError(f"{path}: source {name!r} needs a non-empty 'url'")
        unknown = set(entry) - {"name", "url", "language"}
        if unknown:
            raise ConfigError(f"{path}: source {name!r} has unknown keys {sorted(unknown)}")
        if name in seen:
            raise ConfigError(f"{path}: source name {name!r} appears twice")
        seen.add(name)
        language = entry.get("language")
        sources.append(
            Source(name=name.strip(), url=_resolve(url.strip(), path.parent), language=language or None)
        )
    return sources
