"""Exported lesion segmenter: ``.keras`` + SavedModel whose ``serve`` endpoint does everything.

``serve(images (N, S, S, 1) float32 in [0, 1])`` returns boxes, scores, labels, num_detections and
full-size binary masks; the global mean/std normalisation is inside the model. The letterbox to
``S`` (aspect kept, zero pad bottom/right) is described in ``kerassev_metadata.json`` beside the
weights and applied by ``kerassev segment``; the metadata also names the classes, the model
version and the kerassev version.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import tensorflow as tf

from kerassev.precision import precision_scope

METADATA_FILE = "kerassev_metadata.json"


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("kerassev")
    except metadata.PackageNotFoundError:
        return "unknown"


def export_segmenter(model, out_dir: str | Path, *, class_names, description: str) -> dict:
    """Write ``segmenter.keras`` and ``segmenter_savedmodel/`` (refuses to overwrite)."""
    out_dir = Path(out_dir)
    keras_file, saved = out_dir / "segmenter.keras", out_dir / "segmenter_savedmodel"
    for p in (keras_file, saved):
        if p.exists():
            raise FileExistsError(f"{p} already exists; refusing to overwrite an export")
    out_dir.mkdir(parents=True, exist_ok=True)
    # An uncompiled float32 copy: the exports hold the weights only, not Adam's two extra
    # copies, and run on any hardware whatever precision trained them (variables are float32).
    trained = model
    with precision_scope("float32"):
        model = type(trained)(trained.config)
    model.set_weights(trained.get_weights())
    model.save(keras_file)
    c = model.config
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serve",
        lambda images: model(images),
        input_signature=[tf.TensorSpec((None, c.image_size, c.image_size, 1), tf.float32)],
    )
    archive.write_out(str(saved), verbose=False)
    meta = {
        "task": "lesion instance segmentation (Mask R-CNN ResNet-50-FPN)",
        "input": {
            "image_size": c.image_size,
            "channels": 1,
            "range": [0.0, 1.0],
            "letterbox": "scale the longer side to image_size keeping aspect, zero-pad bottom/right",
            "normalisation_inside": {"mean": c.mean, "std": c.std},
        },
        "class_names": ["background", *class_names],
        "mask_threshold": c.mask_threshold,
        "score_threshold": c.score_threshold,
        "trained_on": description,
        "kerassev_version": _version(),
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
    }
    (saved / METADATA_FILE).write_text(json.dumps(meta, indent=2))
    return {"keras": keras_file, "saved_model": saved}


def load_segmenter(path: str | Path):
    """``(serve, metadata)`` of an exported segmenter (its SavedModel folder or the folder above)."""
    path = Path(path)
    if (path / "segmenter_savedmodel").is_dir():
        path = path / "segmenter_savedmodel"
    meta_file = path / METADATA_FILE
    if not meta_file.is_file():
        raise FileNotFoundError(
            f"{path}: not a kerassev segmenter export (no {METADATA_FILE}); pass the "
            "segmenter_savedmodel folder written by `kerassev reproduce ct-lesions`"
        )
    loaded = tf.saved_model.load(str(path))  # the closure keeps it (and its variables) alive
    return (lambda images: loaded.serve(images)), json.loads(meta_file.read_text())
