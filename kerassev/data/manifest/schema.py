"""Data-set manifests (``kerassev/data_manifests/*.yaml``): the schema, and loading and validating one.

Manifest keys: name, title, folder, source {repository, upstream}, licence, citation, patient_id
(text), quirks (texts), template (bool), and the checked sections:

* ``layout``: ``{path}`` must exist, or ``{glob, count, open}`` must match files; ``level`` sets
  error/warning for absence;
* ``tables``: CSV ``{name, path, read (pandas kwargs), filter {col: values}, count, key,
  patient_id_column, unique, known_duplicates, columns {col: {type, range, allowed, required, optional}},
  checks [{expr, message}], files [{column, dir, missing: error|warning, match: stem, open}]}``;
* ``pairs``: ``{images (glob), mask ("../GT/{stem}.png"), mask_values}``;
* ``checksums``: ``{path, sha256}`` or a CSV ``{path, file_column, sha256_column, dir, filter}``;
* ``splits``: documentation of split files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

_TYPES = {"int", "float", "str", "category"}


class ManifestError(ValueError):
    """A manifest is malformed; the message names the file and the key."""


def manifest_dir() -> Path:
    """Folder holding the manifests: ``kerassev/data_manifests``, package data, so an installed
    wheel finds them too (the checkout's top-level ``data_manifests`` links to it)."""
    return Path(str(resources.files("kerassev") / "data_manifests"))


def available_manifests() -> list[str]:
    """Names of all manifests (templates end in ``.template``)."""
    return sorted(p.name.removesuffix(".yaml") for p in manifest_dir().glob("*.yaml"))


@dataclass
class Manifest:
    """One data set's manifest; ``raw`` keeps every YAML key (source, quirks, ...)."""

    name: str
    title: str
    folder: str
    path: Path
    source: dict[str, Any]
    licence: str
    citation: str
    layout: list[dict[str, Any]] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    checksums: list[dict[str, Any]] = field(default_factory=list)
    splits: list[dict[str, Any]] = field(default_factory=list)
    quirks: list[str] = field(default_factory=list)
    template: bool = False
    raw: dict[str, Any] = field(default_factory=dict)


def _need(cond: bool, path: Path, key: str, problem: str) -> None:
    if not cond:
        raise ManifestError(f"{path}: key '{key}': {problem}")


def _list_of_dicts(data: dict, key: str, path: Path) -> list[dict]:
    value = data.get(key) or []
    _need(isinstance(value, list), path, key, "must be a list")
    for i, item in enumerate(value):
        _need(isinstance(item, dict), path, f"{key}[{i}]", "must be a mapping")
    return value


def _check_table_spec(spec: dict, path: Path, key: str) -> None:
    _need("name" in spec and "path" in spec, path, key, "needs 'name' and 'path'")
    for j, f in enumerate(spec.get("files") or []):
        _need(isinstance(f, dict) and "column" in f, path, f"{key}.files[{j}]", "needs 'column'")
    columns = spec.get("columns") or {}
    _need(isinstance(columns, dict), path, f"{key}.columns", "must be a mapping")
    for col, cspec in columns.items():
        ckey = f"{key}.columns.{col}"
        _need(isinstance(cspec, dict), path, ckey, "must be a mapping")
        _need(
            cspec.get("type", "float") in _TYPES, path, f"{ckey}.type", f"one of {sorted(_TYPES)}"
        )
        rng = cspec.get("range")
        if rng is not None:
            ok = isinstance(rng, list) and len(rng) == 2
            ok = ok and all(isinstance(v, int | float) for v in rng) and rng[0] <= rng[1]
            _need(ok, path, f"{ckey}.range", "must be [low, high] numbers")
    for k in ("filter", "read"):
        _need(isinstance(spec.get(k) or {}, dict), path, f"{key}.{k}", "must be a mapping")


def load_manifest(name_or_path: str | Path) -> Manifest:
    """Load a manifest by name (``"covid_chestxray"``) or by path to a YAML file."""
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or candidate.is_file():
        path = candidate
    else:
        path = manifest_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ManifestError(
            f"{path}: no such manifest; available: {', '.join(available_manifests())}"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ManifestError(f"{path}: invalid YAML: {err}") from err
    _need(isinstance(data, dict), path, "<top>", "must be a mapping")
    for key in ("name", "title", "licence", "citation"):
        _need(isinstance(data.get(key), str) and data[key], path, key, "required non-empty string")
    source = data.get("source")
    _need(isinstance(source, dict) and "upstream" in source, path, "source", "needs 'upstream'")
    sections = {
        k: _list_of_dicts(data, k, path)
        for k in ("layout", "tables", "pairs", "checksums", "splits")
    }
    for i, item in enumerate(sections["layout"]):
        _need("path" in item or "glob" in item, path, f"layout[{i}]", "needs 'path' or 'glob'")
    for i, spec in enumerate(sections["tables"]):
        _check_table_spec(spec, path, f"tables[{i}]")
    quirks = data.get("quirks") or []
    _need(isinstance(quirks, list), path, "quirks", "must be a list of strings")
    return Manifest(
        name=data["name"],
        title=data["title"],
        folder=data.get("folder", data["name"]),
        path=path,
        source=source,
        licence=data["licence"],
        citation=data["citation"],
        quirks=[str(q) for q in quirks],
        template=bool(data.get("template", False)),
        raw=data,
        **sections,
    )
