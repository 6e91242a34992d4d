"""Files the commands write for people and other programs: replaced whole, never seen half-written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomically(
    path: Path,
    data: str | bytes | Callable[[BinaryIO], object],
    check: Callable[[Path], object] | None = None,
) -> None:
    """Replace ``path`` with ``data`` (or what ``data`` writes to the file it is given) so that a
    reader (or a crash) sees the old file or the new one, never half of one; a file that existed
    keeps its permissions. ``check`` reads the new file before it replaces the old one, and
    stops the replacement by raising."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data.encode("utf-8") if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            tmp.chmod(mode)
        if check is not None:
            check(tmp)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
