"""Apply an exported image model of the suite to image files: what ``kerassev predict`` runs.

The export's :class:`~kerassev.exports.ExportMetadata` says how to prepare an image and how to
name the outputs, so nothing is configured by hand. Files stream through ``tf.data`` with the
training pipeline's own decode and resize (:func:`kerassev.data.pipeline.decode_file`, the
pipeline's aspect-preserving resize), a batch at a time, so memory stays flat on any number of
files. PNG, JPEG and DICOM files, or folders of them (searched recursively); a file that cannot
be read is reported with the reason and skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from kerassev.data.pipeline import (
    DICOM_SUFFIXES,
    IMAGE_SUFFIXES,
    PipelineConfig,
    _to_model_input,
    decode_file,
    resolve_sources,
)
from kerassev.exports import ExportMetadata
from kerassev.inference.load import ExportError, LoadedExport, as_numpy, load_export
from kerassev.io.video import VIDEO_SUFFIXES
from kerassev.transforms.preprocess import get_preprocessor

__all__ = ["collect_files", "image_dataset", "predict_files", "prediction_columns"]

# .gif is both: an image export reads its first frame, a video export all of them.
ONLY_VIDEO = set(VIDEO_SUFFIXES) - IMAGE_SUFFIXES
ONLY_IMAGE = (IMAGE_SUFFIXES | DICOM_SUFFIXES) - set(VIDEO_SUFFIXES)


def collect_files(
    inputs: Iterable[str | Path], suffixes=IMAGE_SUFFIXES | DICOM_SUFFIXES, what="PNG/JPEG/DICOM"
) -> tuple[list[Path], dict[str, str]]:
    """Files named or found (recursively, by suffix) in the folders named; and the inputs that
    do not exist or hold nothing, with the reason."""
    files, bad = [], {}
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
            if not found:
                bad[str(p)] = f"folder holds no {what} files"
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            bad[str(p)] = "no such file or folder"
    return files, bad


def refuse_wrong_kind(files: list[Path], meta: ExportMetadata, model: Path) -> None:
    """One clear line when an image export is given videos or a video export images."""
    if meta.input_kind == "image":
        wrong, kind, takes = ONLY_VIDEO, "a video", "an image export: it takes PNG/JPEG/DICOM"
    else:
        wrong, kind, takes = ONLY_IMAGE, "an image", "a video export: it takes MP4/AVI/MOV/GIF..."
    for f in files:
        if f.suffix.lower() in wrong:
            raise ExportError(f"{f} is {kind}, but {model} is {takes}")


def _config(meta: ExportMetadata, batch_size: int) -> PipelineConfig:
    return PipelineConfig(
        image_size=meta.input_size,
        channels=meta.channels,
        preprocessing=meta.preprocessing,
        resize_mode=meta.resize_mode,
        batch_size=batch_size,
        shuffle=False,
        cache_decoded=False,  # DICOMs decoded in the graph: predicting writes no cache
    )


def image_dataset(paths: list[str], meta: ExportMetadata, *, batch_size: int = 32):
    """``(dataset of (row, batch), skipped)``: ``row`` the index into ``paths``; a file that
    fails to decode is dropped from the stream (its row never comes back)."""
    config = _config(meta, batch_size)
    sources, raw, kept, skipped = resolve_sources(paths, config)
    norm = get_preprocessor(config.preprocessing)
    any_raw = any(raw)

    def load(row, path, is_raw):
        return row, _to_model_input(decode_file(path, is_raw if any_raw else False), config)

    def finish(rows, x):  # as the pipeline's last step: 1 -> 3 channels, then preprocessing
        return rows, norm(tf.image.grayscale_to_rgb(x) if config.channels == 3 else x)

    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant(kept, tf.int64), tf.constant(sources, tf.string), tf.constant(raw, tf.bool))
    )
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
    ds = ds.batch(batch_size).map(finish).prefetch(tf.data.AUTOTUNE)
    return ds, skipped, dict(zip(kept.tolist(), zip(sources, raw, strict=True), strict=True))


def _why(source: str, is_raw: bool) -> str:
    """The decode error of one file the stream dropped (decoded again, eagerly, to say why)."""
    try:
        decode_file(tf.constant(source), tf.constant(is_raw))
    except Exception as err:  # any decode failure is a reason, never fatal
        message = getattr(err, "message", None) or str(err)
        message = message.split("}}")[-1].split(" [Op:")[0].strip()  # TF: drop the op dump
        return f"{type(err).__name__}: {message}".splitlines()[0][:200]
    return "could not be decoded or resized"


def prediction_columns(out, meta: ExportMetadata) -> dict[str, np.ndarray]:
    """Named output columns: ``p_<class>`` + ``predicted`` (classification), or one column a
    target, plus ``<target>_rounded`` (rounded, clipped to ``target_range``) when it has one."""
    if isinstance(out, dict):
        key = meta.target_name if meta.target_name in out else sorted(out)[0]
        out = out[key]
    out = np.asarray(out, np.float64)
    out = out.reshape(len(out), -1)
    if meta.task == "classification":
        cols = {f"p_{c}": out[:, i] for i, c in enumerate(meta.class_names)}
        cols["predicted"] = np.asarray(meta.class_names, dtype=object)[out.argmax(1)]
        return cols
    if meta.target_names and len(meta.target_names) == out.shape[1]:
        cols = {n: out[:, i] for i, n in enumerate(meta.target_names)}
    elif out.shape[1] == 1:
        cols = {meta.target_name or "prediction": out[:, 0]}
    else:
        name = meta.target_name or "prediction"
        cols = {f"{name}_{i}": out[:, i] for i in range(out.shape[1])}
    if meta.target_range is not None:
        lo, hi = meta.target_range
        cols.update({f"{k}_rounded": np.clip(np.rint(v), lo, hi) for k, v in list(cols.items())})
    return cols


def progress(total: int, unit: str):
    """A tqdm bar on stderr (hidden when stderr is not a terminal)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, file=sys.stderr, disable=None, leave=False)


def predict_loaded(
    export: LoadedExport, inputs: Iterable[str | Path], *, batch_size: int = 32
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Rows ``path`` + named outputs for an image export already opened."""
    meta = export.metadata
    files, skipped = collect_files(inputs)
    refuse_wrong_kind(files, meta, export.path)
    paths = [str(f) for f in files]
    ds, unreadable, source_of = image_dataset(paths, meta, batch_size=batch_size)
    skipped.update(unreadable)
    rows, outputs = [], []
    with progress(len(source_of), "image") as bar:
        for row, x in ds:
            outputs.append(as_numpy(export.predict(x.numpy())))
            rows.extend(row.numpy().tolist())
            bar.update(len(row))
    for row in sorted(set(source_of) - set(rows)):
        skipped[paths[row]] = _why(*source_of[row])
    table = pd.DataFrame({"path": [paths[r] for r in rows]})
    if outputs:
        if isinstance(outputs[0], dict):
            merged = {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}
        else:
            merged = np.concatenate(outputs)
        for k, v in prediction_columns(merged, meta).items():
            table[k] = v
    return table, skipped


def predict_files(
    model_path: str | Path, inputs: Iterable[str | Path], *, batch_size: int = 32
) -> tuple[pd.DataFrame, dict[str, str]]:
    """One row per readable image (``path`` + the model's named outputs) and ``{file: reason}``
    for every input left out. ``model_path``: any form of an image export
    (:func:`~kerassev.inference.load.load_export`)."""
    export = load_export(model_path, command="predict")
    if export.metadata.input_kind != "image":
        from kerassev.inference.video import predict_videos_loaded

        return predict_videos_loaded(export, inputs, batch_size=batch_size)
    return predict_loaded(export, inputs, batch_size=batch_size)
