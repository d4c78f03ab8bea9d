"""Open any form of a kerassev export (``.keras`` file, SavedModel folder, ``.tflite`` file, or
the run's export folder holding them) with its :class:`~kerassev.exports.ExportMetadata`, as one
batch-predicting function: what ``kerassev predict`` and ``kerassev segment`` share.

Every problem raises :class:`ExportError` (a ``ValueError``) whose one-line message names the
path and the problem: no such file, not a zip, not a TFLite flatbuffer, no metadata, the wrong
command for the export's task.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kerassev.exports import ExportMetadata, read_metadata

FORMS = ("keras", "saved_model", "tflite")
# Which command reads which task (a wrong command is told the right one).
COMMAND_OF_TASK = {"classification": "predict", "regression": "predict", "segmentation": "segment"}


class ExportError(ValueError):
    """An export that cannot be opened or used as asked; one line naming the path."""


@dataclass
class LoadedExport:
    path: Path  # the file or folder actually loaded
    form: str  # one of FORMS
    metadata: ExportMetadata
    predict: Callable[[np.ndarray], object]  # float32 batch -> array or dict of arrays

    def require(self, command: str) -> None:
        """Raise :class:`ExportError` unless ``kerassev <command>`` reads this export's task."""
        want = COMMAND_OF_TASK[self.metadata.task]
        if want != command:
            raise ExportError(
                f"{self.path} is a {self.metadata.task} export: use `kerassev {want}`, "
                f"not `kerassev {command}`"
            )


def _is_saved_model(path: Path) -> bool:
    return path.is_dir() and (path / "saved_model.pb").is_file()


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len("_savedmodel")] if name.endswith("_savedmodel") else path.stem


def resolve(path: str | Path) -> tuple[Path, str]:
    """``(path, form)`` of the export named by ``path``; an export folder gives its ``.keras``
    file (else its SavedModel, else its ``.tflite``) when it holds one export."""
    path = Path(path)
    if not path.exists():
        raise ExportError(f"{path}: no such file or folder")
    if _is_saved_model(path):
        return path, "saved_model"
    if path.is_dir():
        found = [
            *sorted(path.glob("*.keras")),
            *sorted(d for d in path.iterdir() if _is_saved_model(d)),
            *sorted(path.glob("*.tflite")),
        ]
        if not found:
            raise ExportError(
                f"{path}: folder holds no model export (.keras file, SavedModel folder or "
                ".tflite file)"
            )
        stems = sorted({_stem(f) for f in found})
        if len(stems) > 1:
            raise ExportError(
                f"{path}: folder holds several exports ({', '.join(stems)}); pass one"
            )
        return resolve(found[0])
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise ExportError(f"{path}: empty file (0 bytes)")
    if suffix == ".keras":
        if not zipfile.is_zipfile(path):
            raise ExportError(f"{path}: not a Keras .keras archive (not a zip file)")
        with zipfile.ZipFile(path) as archive:
            if "config.json" not in archive.namelist():  # every .keras archive has one
                raise ExportError(f"{path}: not a Keras .keras archive (no config.json in the zip)")
        return path, "keras"
    if suffix == ".tflite":
        with open(path, "rb") as f:
            if f.read(8)[4:8] != b"TFL3":
                raise ExportError(f"{path}: not a TFLite model (no TFL3 flatbuffer identifier)")
        return path, "tflite"
    raise ExportError(
        f"{path}: not a model export (expected a .keras file, a SavedModel folder, a .tflite "
        "file or an export folder)"
    )


def _short(err: Exception) -> str:
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"


def _keras_predictor(path: Path):
    import keras

    import kerassev.models.heads  # noqa: F401  (registers the suite's custom layers)
    import kerassev.models.tsm  # noqa: F401

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as err:  # a damaged or foreign archive: one line, not Keras' traceback
        raise ExportError(f"{path}: cannot load the Keras model ({_short(err)[:200]})") from err
    return lambda x: model(x, training=False)


def _saved_model_predictor(path: Path):
    import tensorflow as tf

    try:
        loaded = tf.saved_model.load(str(path))  # kept alive by the closure (its variables)
    except Exception as err:
        raise ExportError(f"{path}: cannot load the SavedModel ({_short(err)[:200]})") from err
    if not hasattr(loaded, "serve"):
        raise ExportError(f"{path}: SavedModel has no 'serve' endpoint (not a kerassev export)")
    return lambda x: loaded.serve(tf.constant(x, tf.float32))


def _tflite_predictor(path: Path):
    from kerassev.exports import tflite_predictor

    try:
        return tflite_predictor(path)
    except (ValueError, RuntimeError) as err:
        raise ExportError(f"{path}: cannot load the TFLite model ({_short(err)[:200]})") from err


_PREDICTORS = {
    "keras": _keras_predictor,
    "saved_model": _saved_model_predictor,
    "tflite": _tflite_predictor,
}


def load_export(path: str | Path, *, command: str | None = None) -> LoadedExport:
    """Open ``path`` (any form, see :func:`resolve`); with ``command`` ("predict" or
    "segment") refuse, before loading any weights, an export that command does not read."""
    where, form = resolve(path)
    try:
        meta = read_metadata(where)
    except ValueError as err:
        raise ExportError(str(err)) from err
    stub = LoadedExport(where, form, meta, predict=lambda x: None)
    if command is not None:
        stub.require(command)
    stub.predict = _PREDICTORS[form](where)
    return stub


def as_numpy(out) -> np.ndarray | dict[str, np.ndarray]:
    if isinstance(out, dict):
        return {k: np.asarray(v) for k, v in out.items()}
    return np.asarray(out)
