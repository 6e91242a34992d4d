"""A configuration problem as one line: "<key> <where it was set>: <what is allowed> (got <value>)".

For pydantic's validation errors, JSON that pydantic-settings could not decode from the
environment, and STORYLINE_A__B variables that name no settings key. The root settings model is a
parameter, not an import, so pipeline.settings can use this module; the environment prefix and
delimiter are read from the root model's config, so they are set in one place.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any, get_args

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings
from pydantic_settings.exceptions import SettingsError


class ConfigError(Exception):
    """The configuration cannot be used; the message says why."""


_MAX_PROBLEMS = 3
_BOUND_WORDS = {"gt": "greater than", "ge": "at least", "lt": "less than", "le": "at most"}
_ERROR_BOUNDS = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}


def _env_naming(root: type[BaseSettings]) -> tuple[str, str]:
    """The root model's environment prefix (STORYLINE_) and nested delimiter (__); it must set both."""
    return root.model_config["env_prefix"], root.model_config["env_nested_delimiter"]


def _join(problems: list[str]) -> str:
    unique = list(dict.fromkeys(problems))
    shown = "; ".join(unique[:_MAX_PROBLEMS])
    more = len(unique) - _MAX_PROBLEMS
    return shown + (f"; and {more} more problem{'s' if more > 1 else ''}" if more > 0 else "")


def _dotted(loc: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _show(value: Any) -> str:
    if isinstance(value, bool):
        text = str(value).lower()
    else:
        text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The settings table a field holds (X or X | None), if it is one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = [a for a in get_args(annotation) if a is not type(None)]
    return _section_model(args[0]) if len(args) == 1 and type(None) in get_args(annotation) else None


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model whose fields the key at ``loc`` chooses from (list items included)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model else None
        if field is None:
            return None
        annotation = field.annotation
        args = get_args(annotation)
        model = _section_model(args[0] if getattr(annotation, "__origin__", None) is list else annotation)
    return model


def _field_at(root: type[BaseModel], loc: tuple[Any, ...]) -> FieldInfo | None:
    parent = _model_at(root, loc[:-1]) if loc else None
    return parent.model_fields.get(loc[-1]) if parent and isinstance(loc[-1], str) else None


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range(field: FieldInfo | None) -> str:
    """'greater than 0', 'between 0 and 1' ... from the field's bounds; '' when it has none."""
    bounds: dict[str, Any] = {}
    for item in field.metadata if field else ():
        for name in ("gt", "ge", "lt", "le"):
            if isinstance(item, getattr(annotated_types, name.capitalize())):
                bounds[name] = getattr(item, name)
    if "ge" in bounds and "le" in bounds:
        return f"between {_number(bounds['ge'])} and {_number(bounds['le'])}"
    return " and ".join(f"{_BOUND_WORDS[k]} {_number(v)}" for k, v in bounds.items())


def _unknown_key(root: type[BaseModel], loc: tuple[Any, ...]) -> str:
    model = _model_at(root, loc[:-1])
    known = sorted(model.model_fields) if model else []
    close = difflib.get_close_matches(str(loc[-1]).lower(), known, n=1, cutoff=0.6)
    if close:
        return f"unknown key (did you mean {close[0]}?)"
    return f"unknown key (known keys: {', '.join(known)})" if known else "unknown key"


def _what(root: type[BaseModel], error: Any) -> str:
    """What is allowed, in words, for one pydantic error."""
    loc, kind, ctx = tuple(error["loc"]), error["type"], error.get("ctx") or {}
    limits = _range(_field_at(root, loc))
    if kind == "extra_forbidden":
        return _unknown_key(root, loc)
    if kind == "missing":
        return "is required"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in _ERROR_BOUNDS:
        name = _ERROR_BOUNDS[kind]
        what = "must be " + (limits or f"{_BOUND_WORDS[name]} {_number(ctx.get(name))}")
    elif kind in ("int_parsing", "int_type", "int_from_float"):
        what = "must be a whole number" + (f", {limits}" if limits else "")
    elif kind in ("float_parsing", "float_type", "finite_number"):
        what = "must be a finite number" + (f", {limits}" if limits else "")
    elif kind == "literal_error":
        what = f"must be one of {ctx.get('expected')}"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        what = "must be a table of settings"
    elif kind == "list_type":
        what = "must be a list"
    elif kind in ("string_type", "path_type"):
        what = "must be a string" if kind == "string_type" else "must be a path"
    else:
        what = error["msg"][:1].lower() + error["msg"][1:]
    value = error.get("input")
    return what if isinstance(value, (dict, list)) else f"{what} (got {_show(value)})"


class _Origins:
    """Where a key was set: a caller's override, an environment variable, the settings file."""

    def __init__(
        self,
        root: type[BaseSettings],
        overrides: dict[str, Any],
        environ: dict[str, str],
        file: Path | None,
        data: dict[str, Any],
    ) -> None:
        self.overrides, self.file, self.data = overrides, file, data
        self.prefix, self.delimiter = _env_naming(root)
        self.env_names = {k.upper(): k for k in environ if k.upper().startswith(self.prefix)}

    @staticmethod
    def _holds(data: Any, loc: tuple[Any, ...]) -> bool:
        for part in loc:
            if isinstance(data, dict) and isinstance(part, str):
                key = next((k for k in data if isinstance(k, str) and k.lower() == part.lower()), None)
                if key is None:
                    return False
                data = data[key]
            elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
                data = data[part]
            else:
                return False
        return True

    def _env(self, loc: tuple[Any, ...], below: bool) -> list[str]:
        keys: list[str] = []
        for part in loc:
            if not isinstance(part, str):
                break
            keys.append(part.upper())
        for n in range(len(keys), 0, -1):
            name = self.prefix + self.delimiter.join(keys[:n])
            if name in self.env_names:
                return [self.env_names[name]]
        if below and keys:
            prefix = self.prefix + self.delimiter.join(keys) + self.delimiter
            return [v for k, v in sorted(self.env_names.items()) if k.startswith(prefix)]
        return []

    def describe(self, loc: tuple[Any, ...], whole_table: bool) -> str:
        """' in /path/storyline.toml', ' from environment variable X', ... ('' when only defaults)."""
        found: list[str] = []
        if self._holds(self.overrides, loc):
            found.append("from a command-line option")
        found += [f"from environment variable {name}" for name in self._env(loc, whole_table)]
        if self.file is not None and self._holds(self.data, loc):
            found.append(f"in {self.file}")
        if not found and self.file is not None and not self.overrides:
            found.append(f"in {self.file}")  # cannot tell more precisely: name the file in use
        return " " + " and ".join(found if whole_table else found[:1]) if found else ""


def _describe(root: type[BaseModel], error: Any, origins: _Origins) -> str:
    loc = tuple(error["loc"])
    whole_table = isinstance(error.get("input"), dict)
    return f"{_dotted(loc)}{origins.describe(loc, whole_table)}: {_what(root, error)}"


def describe_validation_error(
    exc: ValidationError,
    root: type[BaseSettings],
    overrides: dict[str, Any],
    environ: dict[str, str],
    file: Path | None,
    data: dict[str, Any],
) -> str:
    """Every problem of ``exc`` (the first few, then a count), each with the key and where it was set.

    ``overrides`` are the caller's (CLI) values, ``file`` the settings file read (None if none) and
    ``data`` what it held.
    """
    origins = _Origins(root, overrides, environ, file, data)
    return _join([_describe(root, error, origins) for error in exc.errors()])


def check_environment_names(root: type[BaseSettings], environ: dict[str, str]) -> None:
    """STORYLINE_A__B variables must name a settings key (the flat STORYLINE_HOME & co. are not ours)."""
    env_prefix, delimiter = _env_naming(root)
    for name in sorted(environ):
        rest = name.upper()[len(env_prefix) :] if name.upper().startswith(env_prefix) else ""
        if delimiter not in rest:
            continue
        loc: tuple[str, ...] = ()
        model: type[BaseModel] | None = root
        for part in rest.lower().split(delimiter):
            if model is None:
                raise ConfigError(
                    f"{_dotted(loc)} from environment variable {name}: is not a table of settings, "
                    f"so it has no key {part!r}"
                )
            loc += (part,)
            if part not in model.model_fields:
                raise ConfigError(
                    f"{_dotted(loc)} from environment variable {name}: {_unknown_key(root, loc)}"
                )
            model = _section_model(model.model_fields[part].annotation)


def describe_unparsable_env(exc: SettingsError, root: type[BaseSettings], environ: dict[str, str]) -> str:
    """pydantic-settings could not decode a JSON value (a whole table or list) from the environment."""
    env_prefix, delimiter = _env_naming(root)
    found = re.search(r'field "([^"]+)"', str(exc))
    field = env_prefix + (found.group(1).upper() if found else "")
    names = [k for k in sorted(environ) if k.upper() == field or k.upper().startswith(field + delimiter)]

    def parses(text: str) -> bool:
        try:
            json.loads(text)
        except ValueError:
            return False
        return True

    bad = [k for k in names if not parses(environ[k])] or names
    if not bad:
        return f"settings could not be read from the environment: {exc}"
    key = _dotted(bad[0].upper()[len(env_prefix) :].lower().split(delimiter))
    return (
        f"{key} from environment variable {bad[0]}: must be JSON (an object for a table, an array for a "
        f"list) (got {_show(environ[bad[0]])})"
    )
