"""Parquet export of every table and view, for long analysis away from the live file."""

from __future__ import annotations

from pathlib import Path

from storage.db import open_db


def export_parquet(db: str | Path, out_dir: Path, *, lock_wait_s: float = 120.0) -> list[Path]:
    """Write ``<name>.parquet`` per table and view. Embedding vectors come back as FLOAT[]
    (Parquet has no fixed-size arrays): cast with ``vector::FLOAT[384]`` when reloading."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with open_db(db, read_only=True, lock_wait_s=lock_wait_s) as con:
        names = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'main' ORDER BY table_name"
            ).fetchall()
        ]
        for name in names:
            target = out_dir / f"{name}.parquet"
            tmp = out_dir / f".{name}.parquet.tmp"
            quoted = str(tmp).replace("'", "''")
            con.execute(f"COPY (SELECT * FROM \"{name}\") TO '{quoted}' (FORMAT parquet)").fetchall()
            tmp.replace(target)
            written.append(target)
    return written
