"""Printing query results for people (aligned table) and programs (CSV, JSON).

CSV and JSON are written row by row, so rows can come from an iterator of any
length. A table needs every row before it can print the first (column widths),
so ``max_rows`` caps it and a last line says that more rows were left out.
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
from collections.abc import Iterable, Sequence
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


# A table is for reading: past this many rows use --csv or --json, which stream every row.
TABLE_MAX_ROWS = 1000
TABLE_MORE_NOTE = "(only the first {shown:,} rows are shown; use --csv or --json for all rows, or add LIMIT)"


def print_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    out: TextIO | None = None,
    max_width: int = 60,
    max_rows: int | None = None,
    more_note: str = TABLE_MORE_NOTE,
) -> None:
    """Aligned columns; with ``max_rows``, at most that many rows and then ``more_note``."""
    out = out or sys.stdout
    taken = list(rows if max_rows is None else itertools.islice(rows, max_rows + 1))
    more = max_rows is not None and len(taken) > max_rows
    if more:
        del taken[max_rows:]
    cells = [[_cell(v, max_width) for v in row] for row in taken]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for r in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
    if more:
        out.write(more_note.format(shown=max_rows) + "\n")


def print_csv(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, out: TextIO | None = None) -> None:
    writer = csv.writer(out or sys.stdout)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([json.dumps(_plain(v)) if isinstance(v, list | tuple) else _plain(v) for v in row])


_JSON_FLAT = json.JSONEncoder(ensure_ascii=False, default=str)  # one encoder: json.dumps builds one per call
_JSON_INDENTED = json.JSONEncoder(ensure_ascii=False, default=str, indent=2)


def _json_value(value: Any, indent: str) -> str:
    if isinstance(value, dict | list):  # nested: json's own layout, shifted to this depth
        return _JSON_INDENTED.encode(value).replace("\n", "\n" + indent)
    return _JSON_FLAT.encode(value)


def print_json(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, out: TextIO | None = None) -> None:
    """A JSON array of objects, written one object at a time (the text json.dump(indent=2) writes)."""
    out = out or sys.stdout
    keys = [f"    {_JSON_FLAT.encode(c)}: " for c in columns]
    unique = len(set(columns)) == len(columns)
    opened = False
    for row in rows:
        out.write("[\n  " if not opened else ",\n  ")
        opened = True
        if not unique:  # a repeated name keeps its last value, as in a dict
            record = dict(zip(columns, (_plain(v) for v in row), strict=True))
            out.write(_JSON_INDENTED.encode(record).replace("\n", "\n  "))
            continue
        values = (_plain(v) for v in row)
        body = ",\n".join(k + _json_value(v, "    ") for k, v in zip(keys, values, strict=True))
        out.write("{\n" + body + "\n  }" if keys else "{}")
    out.write("\n]\n" if opened else "[]\n")


def print_rows(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    fmt: str = "table",
    out: TextIO | None = None,
    table_max_rows: int | None = None,
) -> None:
    """Rows in ``fmt`` (table, csv, json); a table stops after ``table_max_rows`` rows."""
    if fmt == "table":
        print_table(columns, rows, out=out, max_rows=table_max_rows)
    else:
        {"csv": print_csv, "json": print_json}[fmt](columns, rows, out=out)
