"""Articles that enter without a fetch (JSON Lines archives): the source rows they need."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import duckdb

from storage.convert import to_db_time


def ensure_import_sources(con: duckdb.DuckDBPyConnection, names: Iterable[str], now: datetime) -> None:
    """Imported outlets appear in `sources` (disabled: there is nothing to fetch) so joins stay simple."""
    for name in sorted(set(names)):
        con.execute(
            """
            INSERT INTO sources (name, url, config_url, enabled, disabled_reason, added_at)
            VALUES (?, '', '', FALSE, 'imported (no feed)', ?)
            ON CONFLICT (name) DO NOTHING
            """,
            [name, to_db_time(now)],
        )
