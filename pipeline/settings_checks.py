"""Checks of settings values that their type alone does not express, for the models' validators.

Each returns the value to keep (maybe stripped) or raises ValueError saying what is allowed: that
text is what the one-line ConfigError shows after the key.
"""

from __future__ import annotations

import difflib
import re
from zoneinfo import ZoneInfo, available_timezones


def check_time_of_day(value: str) -> str:
    if not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", value.strip()):
        raise ValueError(f"must be a time of day as HH:MM on the 24-hour clock, e.g. '07:00' (got {value!r})")
    return value.strip()


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (KeyError, ValueError, OSError):
        close = difflib.get_close_matches(value, sorted(available_timezones()), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"must be an IANA time zone name like 'Europe/London' (got {value!r}){hint}"
        ) from None
    return value


# Cron fields: (name, lowest, highest, names for the values).
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i for i, m in enumerate(_MONTHS, start=1)}),
    ("day of week", 0, 7, {d: i for i, d in enumerate(_DAYS)}),
)
_CRON_NICKNAMES = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def _cron_value(text: str, low: int, high: int, names: dict[str, int]) -> int:
    value = names.get(text.lower()) if not text.isdigit() else int(text)
    if value is None or not low <= value <= high:
        raise ValueError(text)
    return value


def _check_cron_item(item: str, position: int) -> None:
    name, low, high, names = _CRON_FIELDS[position]
    base, _, step = item.partition("/")
    if step and not (step.isdigit() and int(step) >= 1):
        raise ValueError(item)
    if base == "*" or (base == "?" and name.startswith("day")) or (base == "L" and name == "day of month"):
        return
    if name == "day of week" and not step and re.fullmatch(r"\w+#[1-5]", base):
        base = base.split("#")[0]
    first, dash, last = base.partition("-")
    if _cron_value(first, low, high, names) > (_cron_value(last, low, high, names) if dash else high):
        raise ValueError(item)


def check_cron(value: str) -> str:
    """A five-field cron expression (minute hour day-of-month month day-of-week) or @daily & co."""
    expr = value.strip()
    if expr.lower() in _CRON_NICKNAMES:
        return expr
    allowed = "a cron expression of five fields (minute hour day-of-month month weekday), e.g. '0 7 * * *'"
    fields = expr.split()
    if len(fields) != len(_CRON_FIELDS):
        raise ValueError(f"must be {allowed} (got {value!r})")
    for position, field in enumerate(fields):
        for item in field.split(","):
            try:
                _check_cron_item(item, position)
            except ValueError:
                name, low, high, _ = _CRON_FIELDS[position]
                raise ValueError(
                    f"must be {allowed}; {item!r} is not a valid {name} ({low}-{high}) in {value!r}"
                ) from None
    return expr
