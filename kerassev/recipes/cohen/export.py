"""Paper 03's deployable model: frozen encoder -> pooled features -> the two OLS fits (extent,
opacity) on all scored images, as one Keras model exported for ``kerassev predict``.

Only encoders whose features are their pooled output (SSL, ImageNet, random ResNet-50) are
exported this way; XRV feature sets are slices of a dict output and stay in the notebook.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd

from kerassev.evaluation.linear_probe import fit_ols
from kerassev.exports import ExportMetadata, check_exports, export_model
from kerassev.runs import RunFolder

from .encoders import Encoder
from .table import FeatureRow


def severity_model(encoder: Encoder, row: FeatureRow, scored: pd.DataFrame, scored_pos, targets):
    """``preprocessed image -> (B, len(targets))`` scores: the encoder and one Dense layer
    holding the OLS coefficients fitted on all scored images."""
    fits = [fit_ols(row.features[scored_pos], scored[t].to_numpy(np.float64)) for t in targets]
    size = encoder.image_size
    inputs = keras.Input((size, size, encoder.channels), name="image")
    head = keras.layers.Dense(len(targets), dtype="float32", name="ols")
    out = head(encoder.model(inputs, training=False))
    head.set_weights(
        [
            np.stack([np.ravel(f.coef_) for f in fits], axis=1).astype(np.float32),
            np.array([float(f.intercept_) for f in fits], np.float32),
        ]
    )
    return keras.Model(inputs, out, name=f"cohen_{encoder.key}")


def export_severity(
    run: RunFolder, encoder: Encoder, row: FeatureRow, scored, scored_pos, targets, preset: str
) -> dict[str, str]:
    model = severity_model(encoder, row, scored, scored_pos, targets)
    metadata = ExportMetadata(
        task="regression",
        input_size=encoder.image_size,
        channels=encoder.channels,
        preprocessing=encoder.preprocess,
        resize_mode="crop",
        target_names=tuple(targets),
        source=f"kerassev reproduce cohen ({preset}); {row.encoder_label}; OLS on all scored images",
    )
    paths = export_model(
        model, run.subdir("exports"), name=model.name, tflite=False, metadata=metadata
    )
    probe = np.zeros((2, encoder.image_size, encoder.image_size, encoder.channels), np.float32)
    diffs = check_exports(model, paths, probe, atol=1e-3)
    return {
        "row": row.name,
        "keras": str(paths.keras_file),
        "saved_model": str(Path(paths.saved_model)),
        "max_abs_diff": str(diffs),
    }


def pooled_row(rows: list[FeatureRow], preferred: FeatureRow) -> FeatureRow | None:
    """The figure row when its features are pooled, else the first pooled SSL/ImageNet/random row."""
    if preferred.feature_set == "pooled":
        return preferred
    return next((r for r in rows if r.feature_set == "pooled"), None)
