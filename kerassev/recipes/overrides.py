"""``KEY=VALUE`` overrides for recipe configs (``--set image_size=128 ssl_stage_a.epochs=3``).

Values are parsed to the field's annotated type (``typing.get_type_hints``), not to the type of
its current value: a field that defaults to ``None`` (``finetune_lr: float | None``) still gets a
float. A typo or a bad value fails here, naming the key and the expected type, before any work.

Text forms: ``true``/``false``/``1``/``0``/``yes``/``no`` for bools; ``none`` for ``None`` where
the annotation allows it; comma-separated items for tuples (``sweep=32,64``; an empty value is
the empty tuple); for a union such as ``str | int``, the first member that parses (ints first).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Iterable
from typing import Any

_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def apply_overrides(config, items: Iterable[str]):
    """A copy of dataclass ``config`` with each ``KEY=VALUE`` (``a.b=v`` for nested) applied."""
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        key, text = item.split("=", 1)
        config = _replace(config, key.strip().split("."), text.strip(), key.strip())
    return config


def to_text(value: Any) -> str:
    """The ``--set`` text that parses back to ``value`` (the inverse of the parser)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(to_text(v) for v in value)
    return str(value)


@functools.cache
def field_types(cls) -> dict[str, Any]:
    """``{field name: annotation}`` of dataclass ``cls``, string annotations resolved."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def type_name(kind: Any) -> str:
    """A reader's name for an annotation: ``float or none``, ``comma-separated ints``."""
    members = _union_members(kind)
    if members is not None:
        return " or ".join("none" if m is type(None) else type_name(m) for m in members)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"comma-separated {type_name(args[0])}s"
        return f"{len(args)} comma-separated values ({', '.join(type_name(a) for a in args)})"
    return getattr(kind, "__name__", str(kind))


def parse_value(text: str, kind: Any) -> Any:
    """``text`` as a value of annotation ``kind``; ValueError when it is not one."""
    members = _union_members(kind)
    if members is not None:
        if type(None) in members and text.lower() == "none":
            return None
        # str last: "3" for ``str | int`` is the int 3 (SSLStage.train)
        for member in sorted((m for m in members if m is not type(None)), key=lambda m: m is str):
            try:
                return parse_value(text, member)
            except ValueError:
                continue
        raise ValueError(text)
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        items = [t.strip() for t in text.split(",") if t.strip()]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(parse_value(t, args[0]) for t in items)
        if len(items) != len(args):
            raise ValueError(text)
        return tuple(parse_value(t, a) for t, a in zip(items, args, strict=True))
    if kind is bool:
        if text.lower() not in _TRUE | _FALSE:
            raise ValueError(text)
        return text.lower() in _TRUE
    if kind in (int, float, str):
        return kind(text)
    raise ValueError(f"cannot parse a {type_name(kind)} from text")


def _union_members(kind: Any) -> tuple | None:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return typing.get_args(kind)
    return None


def _dataclass_member(kind: Any):
    """The dataclass in ``X`` or ``X | None`` (a nested settings block), else None."""
    for member in _union_members(kind) or (kind,):
        if dataclasses.is_dataclass(member):
            return member
    return None


def _replace(obj, path: list[str], text: str, full_key: str):
    kinds = field_types(type(obj))
    head = path[0]
    if head not in kinds:
        raise ValueError(
            f"--set {full_key}: unknown setting {head!r}; known: {', '.join(sorted(kinds))}"
        )
    kind, current = kinds[head], getattr(obj, head)
    nested = _dataclass_member(kind)
    if len(path) > 1:
        if nested is None:
            raise ValueError(f"--set {full_key}: {head!r} has no sub-settings")
        if current is None:
            raise ValueError(f"--set {full_key}: {head!r} is none in this preset (switched off)")
        value = _replace(current, path[1:], text, full_key)
    elif nested is not None and not (text.lower() == "none" and _union_members(kind)):
        raise ValueError(f"--set {full_key}: set a field of {head!r}, e.g. {head}.epochs=2")
    else:
        try:
            value = parse_value(text, kind)
        except ValueError:
            raise ValueError(
                f"--set {full_key}={text}: expected {type_name(kind)} (now {to_text(current)!r})"
            ) from None
    return dataclasses.replace(obj, **{head: value})
