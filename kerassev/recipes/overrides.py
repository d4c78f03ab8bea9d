"""``KEY=VALUE`` overrides for recipe configs (``--set image_size=128 ssl_stage_a.epochs=3``).

Values are parsed to the type of the field they replace, so a typo fails with the field's name
instead of silently running another experiment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any


def _parse(text: str, current: Any, key: str) -> Any:
    try:
        if isinstance(current, bool):
            if text.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(text)
            return text.lower() in {"true", "1", "yes"}
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
        if isinstance(current, tuple):
            items = [t for t in text.replace(" ", "").split(",") if t]
            kind = type(current[0]) if current else str
            return tuple(kind(t) for t in items)
        if current is None or isinstance(current, str):
            return None if text.lower() == "none" else text
    except ValueError:
        pass
    raise ValueError(f"--set {key}={text}: expected a {type(current).__name__} like {current!r}")


def apply_overrides(config, items: Iterable[str]):
    """A copy of dataclass ``config`` with each ``KEY=VALUE`` (``a.b=v`` for nested) applied."""
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        key, text = item.split("=", 1)
        config = _replace(config, key.strip().split("."), text.strip(), key)
    return config


def _replace(obj, path: list[str], text: str, full_key: str):
    names = {f.name for f in dataclasses.fields(obj)}
    head = path[0]
    if head not in names:
        raise ValueError(
            f"--set {full_key}: unknown setting {head!r}; known: {', '.join(sorted(names))}"
        )
    current = getattr(obj, head)
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise ValueError(f"--set {full_key}: {head!r} has no sub-settings")
        value = _replace(current, path[1:], text, full_key)
    else:
        if dataclasses.is_dataclass(current):
            raise ValueError(f"--set {full_key}: set a field of {head!r}, e.g. {head}.epochs=2")
        value = _parse(text, current, full_key)
    return dataclasses.replace(obj, **{head: value})
