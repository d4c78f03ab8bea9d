"""Shared fixtures. Tests that need ../shared/data use ``shared_data`` (or ``require_dataset``):
they skip with a visible reason when the data is absent, and fail under CI (CI=true)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from kerassev import config  # noqa: E402


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_dataset(name: str) -> Path:
    """Path of a real data set, or skip (locally) / fail (under CI) with the reason."""
    path = config.data_root() / name
    if path.is_dir():
        return path
    reason = f"real data '{name}' absent at {path} (set {config.DATA_ENV})"
    if _in_ci():
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def shared_data():
    """Callable fixture: ``shared_data("dicom")`` -> Path, with skip/fail semantics above."""
    return require_dataset


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep every test's decoded-image cache out of the user's home."""
    monkeypatch.setenv(config.CACHE_ENV, str(tmp_path_factory.getbasetemp() / "kerassev_cache"))
