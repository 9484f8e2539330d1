"""Load, validate and explain the one YAML config file."""

from __future__ import annotations

import difflib
import os
import sys
from pathlib import Path
from typing import Any, Callable

import yaml
from pydantic import BaseModel, ValidationError

from pangeohub.config.model import Config
from pangeohub.errors import PangeoError

DEFAULT_CONFIG_PATH = Path("/etc/pangeohub/config.yaml")
CONFIG_ENV = "PANGEOHUB_CONFIG"

__all__ = ["Config", "DEFAULT_CONFIG_PATH", "config_path", "load_config", "parse_config"]


def config_path(explicit: str | os.PathLike | None = None) -> Path | None:
    """The file to read: ``--config``, else ``$PANGEOHUB_CONFIG``, else the default if it exists."""
    if explicit:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def load_config(explicit: str | os.PathLike | None = None, notice: Callable[[str], None] = _stderr) -> Config:
    path = config_path(explicit)
    if path is None:
        return Config()
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise PangeoError(
            f"config file {path} does not exist",
            f"create it, or unset {CONFIG_ENV} / drop --config to run with the built-in defaults",
        ) from None
    except OSError as exc:
        raise PangeoError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise PangeoError(
            f"config file {path} is not UTF-8 text: byte {exc.object[exc.start]:#04x} on line {line}",
            "save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`), or remove that character",
        ) from None
    return parse_config(text, source=str(path), notice=notice)


def parse_config(text: str, source: str = "<config>", notice: Callable[[str], None] | None = None) -> Config:
    """The config in ``text``; options under names of an older config version are read under their new names,
    each with a line to ``notice`` (pangeohub.config.versions)."""
    from pangeohub.config.versions import migrate

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PangeoError(
            f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}",
            "check indentation and quoting around that line",
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PangeoError(
            f"{source}: the top level must be a mapping of sections (hub:, users:, ...), "
            f"not a {type(data).__name__}"
        )
    migrated = migrate(data, source)
    for line in migrated.notices(source) if notice else []:
        notice(line)
    data = migrated.data
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise PangeoError(f"{source}: invalid configuration\n" + explain(exc, data)) from None


def explain(exc: ValidationError, data: dict) -> str:
    """One line per problem: the dotted field, the value given, the rule, and a fix where we can guess it."""
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        field = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            parent_model = _model_at(Config, loc[:-1])
            known = sorted(parent_model.model_fields) if parent_model else []
            guess = difflib.get_close_matches(loc[-1], known, n=1)
            hint = f"did you mean '{'.'.join(loc[:-1] + guess)}'?" if guess else f"known keys: {', '.join(known)}"
            lines.append(f"  - {field}: unknown option; {hint}")
            continue
        value = _value_at(data, err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        # A whole section as the "value" says nothing the file does not: show scalars and short lists only.
        shown = "" if value is _MISSING or isinstance(value, dict) else f" (got {value!r})"
        hint = _fix_hint(err, loc)
        lines.append(f"  - {field}{shown}: {message}{hint}")
    return "\n".join(lines)


_MISSING = object()


def _value_at(data: Any, loc: tuple) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return data


def _model_at(model: type[BaseModel], loc: list[str]) -> type[BaseModel] | None:
    """The model that holds the field at ``loc``; list items (``profiles.0``) and optional sections included."""
    parts = list(loc)
    while parts:
        field = model.model_fields.get(parts.pop(0))
        inner = _section_type(field.annotation) if field is not None else None
        if inner is None:
            return None
        model, is_list = inner
        if is_list:
            if not parts or not parts[0].isdigit():
                return None
            parts.pop(0)  # the item's index
    return model


def _section_type(annotation) -> tuple[type[BaseModel], bool] | None:
    """(model, is a list of it) for ``Model``, ``Model | None`` and ``list[Model]``; None for anything else."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is list and len(args) == 1:
        inner = _section_type(args[0])
        return (inner[0], True) if inner and not inner[1] else None
    if len(args) == 1:
        return _section_type(args[0])
    return None


def _fix_hint(err: dict, loc: list[str]) -> str:
    model = _model_at(Config, loc[:-1]) if loc else None
    field = model.model_fields.get(loc[-1]) if model and loc else None
    if field is None:
        return ""
    default = field.get_default(call_default_factory=True)
    if isinstance(default, (str, int, float)) and not isinstance(default, bool):
        return f"; fix: e.g. the default {_shown(model, loc[-1])}"
    return ""


def _shown(model: type[BaseModel], name: str) -> str:
    dumped = model().model_dump(mode="json")[name]
    return repr(dumped)
