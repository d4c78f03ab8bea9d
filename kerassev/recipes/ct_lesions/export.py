"""Exported lesion segmenter: ``.keras`` + SavedModel whose ``serve`` endpoint does everything.

``serve(images (N, S, S, 1) float32 in [0, 1])`` returns boxes, scores, labels, num_detections,
binary masks at ``S`` and each detection's 28x28 mask probabilities ``roi_masks`` (which
``kerassev segment`` pastes at each slice's own resolution before thresholding), and, for paper
05's affinity model, ``class_probs``; the global
mean/std normalisation is inside the model. The suite's one
:class:`~kerassev.exports.ExportMetadata` (task ``"segmentation"``, ``resize_mode="letterbox"``:
longer side to ``S`` keeping aspect, zero pad bottom/right, applied by ``kerassev segment``)
travels inside and beside both, as for every other export.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from kerassev.exports import ExportMetadata, ExportPaths, float32_copy, write_metadata

OUTPUTS = ("boxes", "scores", "labels", "num_detections", "masks", "roi_masks")


def export_segmenter(
    model,
    out_dir: str | Path,
    *,
    class_names,
    description: str,
    name: str = "segmenter",
    image_class_names=None,
) -> ExportPaths:
    """Write ``<name>.keras`` and ``<name>_savedmodel/`` with their metadata (refuses to
    overwrite). ``image_class_names``: the classes of a ``class_probs`` output (paper 05)."""
    out_dir = Path(out_dir)
    keras_file, saved = out_dir / f"{name}.keras", out_dir / f"{name}_savedmodel"
    for p in (keras_file, saved):
        if p.exists():
            raise FileExistsError(f"{p} already exists; refusing to overwrite an export")
    out_dir.mkdir(parents=True, exist_ok=True)
    # An uncompiled float32 copy: the exports hold the weights only, not Adam's two extra
    # copies, and run on any hardware whatever precision trained them (variables are float32).
    model = float32_copy(model)
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
    outputs = OUTPUTS if image_class_names is None else (*OUTPUTS, "class_probs")
    meta = ExportMetadata(
        task="segmentation",
        input_size=c.image_size,
        channels=1,
        preprocessing="unit",  # mean/std normalisation is inside the model
        resize_mode="letterbox",
        class_names=("background", *class_names),
        image_class_names=None if image_class_names is None else tuple(image_class_names),
        output_names=outputs,
        score_threshold=c.score_threshold,
        mask_threshold=c.mask_threshold,
        source=description,
    )
    paths = ExportPaths(keras_file, saved, None)
    write_metadata(paths, meta)
    return paths
