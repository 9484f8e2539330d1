"""The config reference, generated from the model so that the docs cannot drift from the code."""

from __future__ import annotations

import json
import typing

from pydantic import BaseModel

from pangeohub.config import Config


def render_config_reference() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated from the config model by `pangeohub config docs`; do not edit by hand.",
        "Every option is optional. Sizes take K/M/G/T (binary), durations s/m/h/d/w.",
        "",
    ]
    _section(Config, [], lines)
    return "\n".join(lines).rstrip() + "\n"


def _section(model: type[BaseModel], path: list[str], lines: list[str]) -> None:
    defaults = model().model_dump(mode="json")
    nested = []
    rows = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            nested.append((name, annotation))
            continue
        default = json.dumps(defaults[name]) if defaults[name] is not None else "—"
        rows.append(f"| `{'.'.join(path + [name])}` | `{default}` | {field.description or ''} |")
    if rows:
        title = ".".join(path) if path else "top level"
        doc = (model.__doc__ or "").strip().splitlines()[0] if path and model.__doc__ else ""
        lines += [f"## `{title}`" if path else "## Top level", ""]
        if doc and not doc.startswith("Base of"):
            lines += [doc, ""]
        lines += ["| option | default | meaning |", "| --- | --- | --- |", *rows, ""]
    for name, sub in nested:
        _section(sub, path + [name], lines)
    for name, item in _lists_of_sections(model):
        _items(item, path + [name], lines)


def _lists_of_sections(model: type[BaseModel]) -> list[tuple[str, type[BaseModel]]]:
    """Fields that hold a list of sections (``content: [{url, folder}, ...]``): their entries' keys."""
    found = []
    for name, field in model.model_fields.items():
        args = typing.get_args(field.annotation)
        if typing.get_origin(field.annotation) is list and args and isinstance(args[0], type) \
                and issubclass(args[0], BaseModel):
            found.append((name, args[0]))
    return found


def _items(model: type[BaseModel], path: list[str], lines: list[str]) -> None:
    title = ".".join(path) + "[]"
    rows = []
    for name, field in model.model_fields.items():
        if field.is_required():
            default = "required"
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            continue  # a nested section of each entry (a profile's slurm options): see the admin guide
        else:
            value = model.model_fields[name].get_default(call_default_factory=True)
            value = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
            default = f"`{json.dumps(_plain(model, name, value))}`" if value is not None else "`—`"
        rows.append(f"| `{title}.{name}` | {default} | {field.description or ''} |")
    lines += [f"## `{title}` (each entry)", "", "| key | default | meaning |", "| --- | --- | --- |", *rows, ""]


def _plain(model: type[BaseModel], name: str, value):
    """A default as the YAML would give it: durations and sizes in their units, as in the tables above."""
    from pydantic import TypeAdapter

    field = model.model_fields[name]
    kind = typing.Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
    adapter = TypeAdapter(kind)
    return adapter.dump_python(adapter.validate_python(value), mode="json")
