"""Printing query results for people (aligned table) and programs (CSV, JSON)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, TextIO


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def _cell(value: Any, width: int) -> str:
    if value is None:
        text = ""
    elif isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M")
    elif isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, list | tuple):
        text = ", ".join(str(v) for v in value)
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, out: TextIO | None = None, max_width: int = 60
) -> None:
    out = out or sys.stdout
    cells = [[_cell(v, max_width) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for r in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")


def print_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, out: TextIO | None = None) -> None:
    writer = csv.writer(out or sys.stdout)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([json.dumps(_plain(v)) if isinstance(v, list | tuple) else _plain(v) for v in row])


def print_json(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    records = [dict(zip(columns, (_plain(v) for v in row), strict=True)) for row in rows]
    json.dump(records, out, ensure_ascii=False, indent=2, default=str)
    out.write("\n")


def print_rows(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, fmt: str = "table", out: TextIO | None = None
) -> None:
    {"table": print_table, "csv": print_csv, "json": print_json}[fmt](columns, rows, out=out)
