"""Model exports: native ``.keras``, TensorFlow SavedModel (``model.export``) and TFLite.

Each export is reloaded by :func:`check_exports`, which compares its predictions with the
in-memory model's, so a broken export is caught where it is made rather than by a user.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class ExportPaths:
    keras_file: Path
    saved_model: Path
    tflite_file: Path | None


def _refuse_existing(*paths: Path) -> None:
    for path in paths:
        if path.exists():
            raise FileExistsError(f"{path} already exists; refusing to overwrite an export")


def export_model(
    model: keras.Model, out_dir: str | Path, *, name: str = "model", tflite: bool = True
) -> ExportPaths:
    """Write ``name.keras``, ``name_savedmodel/`` and ``name.tflite`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keras_file = out_dir / f"{name}.keras"
    saved_model = out_dir / f"{name}_savedmodel"
    tflite_file = out_dir / f"{name}.tflite" if tflite else None
    _refuse_existing(*(p for p in (keras_file, saved_model, tflite_file) if p is not None))

    model.save(keras_file)
    model.export(str(saved_model), format="tf_saved_model", verbose=False)
    if tflite_file is not None:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
        tflite_file.write_bytes(converter.convert())
    return ExportPaths(keras_file, saved_model, tflite_file)


def predict_saved_model(path: str | Path, images: np.ndarray) -> np.ndarray:
    """Predictions of an exported SavedModel through its ``serve`` endpoint."""
    reloaded = tf.saved_model.load(str(path))
    return np.asarray(reloaded.serve(tf.constant(images, tf.float32)))


def predict_tflite(path: str | Path, images: np.ndarray) -> np.ndarray:
    """Predictions of a TFLite file, one image at a time (its batch dimension is fixed), through
    LiteRT's interpreter (``ai-edge-litert``; ``tf.lite.Interpreter`` is deprecated)."""
    from ai_edge_litert.interpreter import Interpreter

    from kerassev.quiet import native_stderr_silenced

    # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." from native code;
    # Python errors still propagate.
    with native_stderr_silenced():
        interpreter = Interpreter(model_path=str(path))
        inp = interpreter.get_input_details()[0]
        out = interpreter.get_output_details()[0]
        interpreter.resize_tensor_input(inp["index"], (1, *images.shape[1:]))
        interpreter.allocate_tensors()
        preds = []
        for image in images.astype(np.float32):
            interpreter.set_tensor(inp["index"], image[None])
            interpreter.invoke()
            preds.append(interpreter.get_tensor(out["index"])[0])
    return np.stack(preds)


def check_exports(
    model: keras.Model, paths: ExportPaths, images: np.ndarray, *, atol: float = 1e-4
) -> dict[str, float]:
    """Reload every export and return the max abs difference to ``model``'s predictions.

    Raises AssertionError naming the export whose predictions differ by more than ``atol``.
    """
    reference = np.asarray(model.predict(images, verbose=0))
    got = {
        "keras": np.asarray(keras.models.load_model(paths.keras_file).predict(images, verbose=0)),
        "saved_model": predict_saved_model(paths.saved_model, images),
    }
    if paths.tflite_file is not None:
        got["tflite"] = predict_tflite(paths.tflite_file, images)
    diffs = {
        k: float(np.max(np.abs(v.reshape(reference.shape) - reference))) for k, v in got.items()
    }
    bad = {k: d for k, d in diffs.items() if not d <= atol}
    if bad:
        raise AssertionError(f"exports differ from the model beyond {atol}: {bad}")
    return diffs
