"""The images paper 01 trains on: MIDRC mRALE DICOMs when given, phantoms otherwise.

Both become one :class:`MraleData`: grayscale images in ``[0, 1]`` at the configured size held in
memory (2,599 images at 224 px are 0.5 GB), the dataset table with the mRALE labels, and, for
phantoms, the opacity masks that let Grad-CAM be scored against ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kerassev.data.pipeline import load_images
from kerassev.models.heads import SUBSCORE_COLUMNS

from .config import MraleConfig

LABEL_COLS = ("mrale", *SUBSCORE_COLUMNS)


@dataclass
class MraleData:
    images: np.ndarray  # (N, S, S) float32 in [0, 1]
    table: pd.DataFrame  # path/row id, patient_id, mrale and the four sub-scores
    opacity_masks: np.ndarray | None  # (N, S, S) bool for phantoms, None for real data
    source: str  # one line for captions: what data this is

    @property
    def targets(self) -> np.ndarray:
        return self.table["mrale"].to_numpy(np.float32)

    @property
    def subscores(self) -> np.ndarray:
        return self.table[list(SUBSCORE_COLUMNS)].to_numpy(np.float32)


def phantom_data(config: MraleConfig) -> MraleData:
    """Synthetic CXR phantoms with known mRALE (see :mod:`kerassev.data.phantoms`)."""
    from kerassev.data.phantoms import make_phantom_cohort

    cohort = make_phantom_cohort(
        config.phantom_patients,
        timepoints=config.phantom_timepoints,
        size=config.image_size,
        seed=config.seed,
    )
    table = cohort.table.copy()
    table["path"] = [f"phantom/{sid}" for sid in table["study_id"]]  # row ids for OOF files
    n_patients = table["patient_id"].nunique()
    return MraleData(
        images=cohort.images.astype(np.float32),
        table=table.reset_index(drop=True),
        opacity_masks=cohort.opacity_masks,
        source=(
            f"synthetic phantoms (seed {config.seed}): {len(table)} images of "
            f"{n_patients} patients at {config.image_size}px"
        ),
    )


def midrc_data(config: MraleConfig, image_root: str | Path, labels_csv: str | Path) -> MraleData:
    """MIDRC mRALE Mastermind DICOMs (joined to labels by StudyInstanceUID), decoded once."""
    from kerassev.data.loaders.midrc_mrale import load_midrc_mrale

    table = load_midrc_mrale(image_root, labels_csv).reset_index(drop=True)
    images = load_images(table, config.image_size, resize_mode=config.resize_mode)
    return MraleData(
        images=images,
        table=table,
        opacity_masks=None,
        source=(
            f"MIDRC mRALE ({image_root}): {len(table)} images of "
            f"{table['patient_id'].nunique()} patients at {config.image_size}px"
        ),
    )
