"""Helpers shared by the loaders (not public API)."""

from __future__ import annotations

import warnings
from pathlib import Path

from kerassev import config


def resolve_root(root: str | Path | None, folder: str) -> Path:
    """``root`` as a Path, or ``config.dataset_dir(folder)``; DataNotFoundError when absent."""
    if root is None:
        return config.dataset_dir(folder)
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise config.DataNotFoundError(f"data set folder {path} does not exist")
    return path


def require_file(path: Path) -> Path:
    if not path.is_file():
        raise config.DataNotFoundError(f"expected file {path} is missing")
    return path


def notice(message: str, names: list[str], shown: int = 10) -> None:
    """``warnings.warn`` naming up to ``shown`` items, so skipped rows are never silent."""
    listed = ", ".join(names[:shown]) + (
        f" and {len(names) - shown} more" if len(names) > shown else ""
    )
    warnings.warn(f"{message} ({len(names)}): {listed}", UserWarning, stacklevel=3)
