"""Apply an exported model of the suite to image files: what ``kerassev predict`` runs.

The export's :class:`~kerassev.exports.ExportMetadata` says how to prepare an image (the same
decode, aspect-preserving resize, channels and preprocessing as training) and how to name the
outputs, so nothing is configured by hand. PNG, JPEG and DICOM files, or folders of them
(searched recursively); a file that cannot be read is reported with the reason and skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from kerassev.data.pipeline import DICOM_SUFFIXES, IMAGE_SUFFIXES, is_dicom
from kerassev.exports import ExportMetadata, read_metadata
from kerassev.transforms.geometry import resize_keep_aspect
from kerassev.transforms.preprocess import get_preprocessor

__all__ = ["collect_files", "load_export", "predict_files", "prepare_image"]


def collect_files(inputs: Iterable[str | Path]) -> tuple[list[Path], dict[str, str]]:
    """Files named or found (recursively, by image/DICOM suffix) in the folders named; and the
    inputs that do not exist, with the reason."""
    files, bad = [], {}
    suffixes = IMAGE_SUFFIXES | DICOM_SUFFIXES
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
            if not found:
                bad[str(p)] = "folder holds no PNG/JPEG/DICOM files"
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            bad[str(p)] = "no such file or folder"
    return files, bad


def _decode(path: Path) -> np.ndarray:
    if is_dicom(path):
        from kerassev.io.dicom import read_dicom

        return read_dicom(path, frame=0).pixels.astype(np.float32)[..., None]
    image = tf.io.decode_image(
        tf.io.read_file(str(path)), channels=1, dtype=tf.float32, expand_animations=False
    )
    return image.numpy()


def prepare_image(path: Path, meta: ExportMetadata) -> np.ndarray:
    """One file -> the model's input ``(S, S, C)`` as the export's metadata prescribes."""
    x = resize_keep_aspect(tf.constant(_decode(path)), meta.input_size, mode=meta.resize_mode)
    if meta.channels == 3:
        x = tf.image.grayscale_to_rgb(x)
    return get_preprocessor(meta.preprocessing)(x[None])[0].numpy()


def load_export(model_path: str | Path):
    """``(predict_fn, metadata)`` for a ``.keras`` file or a SavedModel folder."""
    path = Path(model_path)
    meta = read_metadata(path)
    if path.is_dir():
        loaded = tf.saved_model.load(str(path))  # kept alive: serve() references its variables

        def predict(x):
            return loaded.serve(tf.constant(x, tf.float32))
    else:
        import keras

        import kerassev.models.heads  # noqa: F401  (registers the suite's custom layers)

        model = keras.models.load_model(path)

        def predict(x):
            return model.predict(x, verbose=0)

    return predict, meta


def _columns(out, meta: ExportMetadata) -> dict[str, np.ndarray]:
    if isinstance(out, dict):
        key = meta.target_name if meta.target_name in out else sorted(out)[0]
        out = out[key]
    out = np.asarray(out)
    out = out.reshape(len(out), -1)
    if meta.task == "classification":
        cols = {f"p_{c}": out[:, i] for i, c in enumerate(meta.class_names)}
        cols["predicted"] = np.asarray(meta.class_names, dtype=object)[out.argmax(1)]
        return cols
    if meta.target_names and len(meta.target_names) == out.shape[1]:
        return {n: out[:, i] for i, n in enumerate(meta.target_names)}
    name = meta.target_name or "prediction"
    if out.shape[1] == 1:
        return {name: out[:, 0]}
    return {f"{name}_{i}": out[:, i] for i in range(out.shape[1])}


def predict_files(
    model_path: str | Path, inputs: Iterable[str | Path], *, batch_size: int = 32
) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per readable image (``path`` + the model's named outputs) and ``{file: reason}``
    for every input left out."""
    predict, meta = load_export(model_path)
    files, skipped = collect_files(inputs)
    rows, arrays = [], []
    for f in files:
        try:
            arrays.append(prepare_image(f, meta))
            rows.append(str(f))
        except Exception as err:  # any unreadable file is reported, never fatal
            message = getattr(err, "message", None) or str(err)
            message = message.split("}}")[-1].split(" [Op:")[0].strip()  # TF: drop the op dump
            skipped[str(f)] = f"{type(err).__name__}: {message}".splitlines()[0][:200]
    table = pd.DataFrame({"path": rows})
    if arrays:
        x = np.stack(arrays)
        out = [predict(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
        if isinstance(out[0], dict):
            merged = {k: np.concatenate([np.asarray(o[k]) for o in out]) for k in out[0]}
        else:
            merged = np.concatenate([np.asarray(o) for o in out])
        for k, v in _columns(merged, meta).items():
            table[k] = v
    return table, skipped
