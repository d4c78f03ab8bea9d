"""Process-wide settings: where the real data lives, where caches go, which preset runs.

Every setting is one environment variable with a documented default, so notebooks, the CLI,
tests and CI all agree without passing paths around.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "KERASSEV_DATA"
CACHE_ENV = "KERASSEV_CACHE"
PRESET_ENV = "KERASSEV_PRESET"
RUNS_ENV = "KERASSEV_RUNS"
CI_ENV = "CI"

_REPO_ROOT = Path(__file__).resolve().parents[1]


class DataNotFoundError(FileNotFoundError):
    """A real data set is not where the settings say it is."""


def in_ci() -> bool:
    """Whether this is a CI run (``CI=true``): there, absent real data is a failure, not a skip."""
    return os.environ.get(CI_ENV, "").strip().lower() in {"1", "true", "yes"}


def repo_root() -> Path:
    """The checkout this package was installed from (editable installs)."""
    return _REPO_ROOT


def data_root() -> Path:
    """Root of the real data sets: ``$KERASSEV_DATA``, else ``../shared/data`` beside the repo."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return (_REPO_ROOT.parent / "shared" / "data").resolve()


def dataset_dir(name: str, *, must_exist: bool = True) -> Path:
    """Folder of one data set under :func:`data_root` (e.g. ``"covid_chestxray"``)."""
    path = data_root() / name
    if must_exist and not path.is_dir():
        raise DataNotFoundError(
            f"data set '{name}' not found at {path}. Set {DATA_ENV} to the folder that holds it "
            f"(currently {DATA_ENV}={os.environ.get(DATA_ENV, '<unset>')})."
        )
    return path


def cache_root() -> Path:
    """Where decoded images and other derived files are cached (``$KERASSEV_CACHE``)."""
    env = os.environ.get(CACHE_ENV)
    root = Path(env).expanduser() if env else Path.home() / ".cache" / "kerassev"
    root.mkdir(parents=True, exist_ok=True)
    return root


def runs_root() -> Path:
    """Parent of the notebooks' run folders: ``$KERASSEV_RUNS``, else ``runs/`` in the checkout
    (the same place ``make demo`` writes to, whatever folder Jupyter started in)."""
    env = os.environ.get(RUNS_ENV)
    return Path(env).expanduser() if env else _REPO_ROOT / "runs"


def default_preset() -> str:
    """Preset the notebooks run when not told otherwise: ``$KERASSEV_PRESET`` or ``smoke``."""
    return os.environ.get(PRESET_ENV, "smoke")
