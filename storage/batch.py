"""Python-side rows as a table SQL can join: an Arrow batch registered for one statement or a few.

Filtering with ``list_contains(?, column)`` compares every row with every listed value (minutes at
100,000 articles); a registered table is hash-joined instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import duckdb
import pyarrow as pa


@contextmanager
def registered(
    con: duckdb.DuckDBPyConnection, name: str, columns: Mapping[str, pa.Array | list]
) -> Iterator[None]:
    """``columns`` as the table ``name`` for the block. Fetch every result inside it to the end: a
    pending result blocks unregister()."""
    con.register(name, pa.table(dict(columns)))
    try:
        yield
    finally:
        con.unregister(name)


def strings(values: Iterable[str | None]) -> pa.Array:
    """A string column (None stays NULL)."""
    return pa.array(list(values), pa.string())
