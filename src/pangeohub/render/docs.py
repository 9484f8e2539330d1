"""The config reference, generated from the model so that the docs cannot drift from the code."""

from __future__ import annotations

import json

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
