"""Read a local source (a path or file:// URL) with the same limits as a download.

Local sources must be regular files: devices, pipes, sockets and anything under
/proc, /sys or /dev are refused (not_a_file); a directory is not_found.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pipeline.feeds.fetch_result import FetchError, set_body
from pipeline.records import FetchResult, FetchState
from pipeline.settings import FetchSettings


def _local_path(url: str, scheme: str, base_dir: Path | None) -> Path:
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise FetchError("invalid_url", f"file URL with a remote host {parts.netloc!r} is not supported")
        path = Path(unquote(parts.path))
    else:
        path = Path(url).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path


# Kernel and device file systems: their "regular" files (/proc/self/environ, /sys/...)
# are not feeds, and reading them would leak process or machine details into the database.
_SYSTEM_TREES = ("/proc", "/sys", "/dev")
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_regular(path: Path, mode: int) -> None:
    """Refuse anything but a regular file (a directory is not_found, like a missing file)."""
    for test, kind in _KINDS:
        if test(mode):
            if kind == "a directory":
                raise FetchError("not_found", f"not a file: {path} is a directory")
            raise FetchError("not_a_file", f"{path} is {kind}, not a regular file: refused as a feed source")
    if not stat.S_ISREG(mode):
        raise FetchError("not_a_file", f"{path} is not a regular file: refused as a feed source")


def _system_tree(real: str) -> str | None:
    for tree in _SYSTEM_TREES:
        if real == tree or real.startswith(tree + os.sep):
            return tree
    return None


def _refuse_system_tree(path: Path, real: str) -> None:
    tree = _system_tree(real)
    if tree:
        raise FetchError(
            "not_a_file", f"{path} is in {tree}, a kernel or device file system: refused as a feed source"
        )


def _opened_path(fd: int) -> str | None:
    """Where an open file really is (Linux), whatever links led to it; None where unknown."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def fetch_file(
    url: str,
    scheme: str,
    state: FetchState,
    settings: FetchSettings,
    base_dir: Path | None,
    result: FetchResult,
) -> None:
    """Read the local source ``url`` into ``result``; raises FetchError on any refusal or failure."""
    path = _local_path(url, scheme, base_dir)
    result.final_url = str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        hint = ""
        first = url.split("/", 1)[0]
        if scheme == "" and "." in first and not first.startswith("."):
            hint = f" (if {first!r} is a web site, write the URL with https://)"
        raise FetchError("not_found", f"no such file: {path}{hint}") from None
    except OSError as exc:
        raise FetchError("read_error", f"cannot read {path}: {exc.strerror or exc}") from exc
    # Checked before opening: opening some devices has effects of its own.
    _refuse_system_tree(path, os.path.realpath(path))
    _check_regular(path, info.st_mode)
    # Non-blocking open: should a pipe be swapped in after the check, opening it must not hang.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise FetchError("read_error", f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        # And again for the file actually opened, should a link have changed in between.
        _check_regular(path, os.fstat(fd).st_mode)
        _refuse_system_tree(path, _opened_path(fd) or os.path.realpath(path))
        with os.fdopen(fd, "rb", closefd=False) as handle:
            body = handle.read(settings.max_bytes + 1)
    except OSError as exc:
        raise FetchError("read_error", f"cannot read {path}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if len(body) > settings.max_bytes:
        raise FetchError("too_large", f"{path} is over the {settings.max_bytes}-byte limit")
    set_body(result, body, state)
