"""Shared fixtures. Tests that need ../shared/data use ``shared_data`` (or ``require_dataset``):
they skip with a visible reason when the data is absent, and fail under CI (CI=true)."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from kerassev import config  # noqa: E402


def require_dataset(name: str) -> Path:
    """Path of a real data set, or skip (locally) / fail (under CI) with the reason."""
    path = config.data_root() / name
    if path.is_dir():
        return path
    reason = f"real data '{name}' absent at {path} (set {config.DATA_ENV})"
    if config.in_ci():
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


def write_legacy_h5_weights(model, path) -> Path:
    """Write ``model``'s weights in the Keras-2 layer-name .h5 layout of the official
    ``keras.applications`` files (e.g. the ResNet-50 notop file in the Keras cache)."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return path


@pytest.fixture
def legacy_h5_writer():
    """``legacy_h5_writer(model, path)``: see :func:`write_legacy_h5_weights`."""
    return write_legacy_h5_weights
