"""Apply an exported video model (``input_kind="video"``) to video files: ``kerassev predict``
on MP4, AVI, MOV, GIF... (PyAV) or folders of them.

Clips are sampled exactly as in training, by :func:`kerassev.io.video.read_clip` with the
export's ``frames_per_clip``, ``frame_sampling`` and ``input_size`` (grey, shorter side scaled,
centre crop), then channels and preprocessing as the metadata says. One video is decoded at a
time (memory stays flat). A video's prediction is the mean over its clips (one clip for
``"uniform"`` sampling; TSM's average consensus over ``"sliding"`` windows). One row a video:
``path``, the predicted value(s) on the head's scale (``<target>_rounded`` too, rounded and
clipped to ``target_range``), and ``frames`` (frames in the video). Unreadable or too-short
videos are listed with the reason and skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from kerassev.exports import ExportMetadata
from kerassev.inference.image import collect_files, prediction_columns, progress, refuse_wrong_kind
from kerassev.inference.load import LoadedExport, as_numpy, load_export
from kerassev.io.video import VIDEO_SUFFIXES, VideoReadError, count_frames, read_clip
from kerassev.transforms.preprocess import get_preprocessor

__all__ = ["predict_videos", "prepare_clips"]


def prepare_clips(clips: np.ndarray, meta: ExportMetadata) -> np.ndarray:
    """``(n, T, S, S)`` grey clips in ``[0, 1]`` -> the model's ``(n, T, S, S, C)`` input."""
    x = tf.constant(clips[..., None], tf.float32)
    if meta.channels == 3:
        x = tf.image.grayscale_to_rgb(x)
    return get_preprocessor(meta.preprocessing)(x).numpy()


def _clip_mean(out) -> np.ndarray | dict:
    if isinstance(out, dict):
        return {k: np.asarray(v).mean(0, keepdims=True) for k, v in out.items()}
    return np.asarray(out).mean(0, keepdims=True)


def predict_videos_loaded(
    export: LoadedExport,
    inputs: Iterable[str | Path],
    *,
    batch_size: int = 32,
    min_frames: int | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Rows ``path`` + named outputs + ``frames`` for a video export already opened.

    ``min_frames`` (default ``frames_per_clip``): shorter videos are skipped as too short, since
    a clip would repeat frames (training's sampler pads them that way, prediction refuses).
    """
    meta = export.metadata
    t = meta.frames_per_clip
    min_frames = t if min_frames is None else min_frames
    files, skipped = collect_files(inputs, set(VIDEO_SUFFIXES), "video (MP4/AVI/MOV/GIF...)")
    refuse_wrong_kind(files, meta, export.path)
    paths, frames, outputs = [], [], []
    with progress(len(files), "video") as bar:
        for f in files:
            bar.update(1)
            try:
                n = count_frames(f)
                if n < min_frames:
                    skipped[str(f)] = f"too short: {n} frame(s), the model needs {min_frames}"
                    continue
                clips = read_clip(f, t, size=meta.input_size, mode=meta.frame_sampling)
            except VideoReadError as err:
                skipped[str(f)] = err.problem
                continue
            x = prepare_clips(clips, meta)
            parts = [
                as_numpy(export.predict(x[i : i + batch_size]))
                for i in range(0, len(x), batch_size)
            ]
            if isinstance(parts[0], dict):
                out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            else:
                out = np.concatenate(parts)
            outputs.append(_clip_mean(out))
            paths.append(str(f))
            frames.append(n)
    table = pd.DataFrame({"path": paths})
    if outputs:
        if isinstance(outputs[0], dict):
            merged = {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}
        else:
            merged = np.concatenate(outputs)
        for k, v in prediction_columns(merged, meta).items():
            table[k] = v
    table["frames"] = np.asarray(frames, np.int64)
    return table, skipped


def predict_videos(
    model_path: str | Path, inputs: Iterable[str | Path], **kwargs
) -> tuple[pd.DataFrame, dict[str, str]]:
    """:func:`predict_videos_loaded` from any form of a video export."""
    export = load_export(model_path, command="predict")
    return predict_videos_loaded(export, inputs, **kwargs)
