"""Paper 02's data in memory: clips ``(N, T, S, S)`` and a table with one row per clip.

Sources: longitudinal LUS phantoms (default), the in-house LUS layout or ADNI (``--data``), and
the real POCUS videos for the cross-video proxy run. Every table has ``patient_id``, ``hs`` (the
health score the encoder regresses) and ``visit`` (order within a patient, where it exists).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from kerassev.data.phantoms.lus import make_lus_cohort
from kerassev.io.video import ClipReader

from .config import LearnerConfig


@dataclass
class ClipData:
    clips: np.ndarray  # (N, T, S, S) float32 in [0, 1]
    table: pd.DataFrame  # RangeIndex aligned with clips
    source: str
    hs_name: str
    higher_is_better: bool = True
    label_mode: str = "bins"
    label_threshold: float = 0.0
    skipped: dict[str, str] = field(default_factory=dict)

    def inputs(self, idx=None) -> np.ndarray:
        """Clips with a channel axis, ``(n, T, S, S, 1)``."""
        clips = self.clips if idx is None else self.clips[np.asarray(idx)]
        return clips[..., None]


def phantom_data(config: LearnerConfig) -> ClipData:
    cohort = make_lus_cohort(
        config.phantom_patients,
        visits=config.phantom_visits,
        n_frames=config.n_frames,
        size=config.frame_size,
        step_sd=config.phantom_step_sd,
        seed=config.seed,
    )
    table = cohort.table.assign(hs=cohort.table["sf_ratio"])
    return ClipData(
        cohort.clips,
        table,
        source=(
            f"longitudinal LUS phantoms ({table['patient_id'].nunique()} patients, {len(table)} "
            f"clips, seed {config.seed}; hidden S/F trajectories)"
        ),
        hs_name="S/F",
        label_mode=config.label_mode,
        label_threshold=config.label_threshold,
    )


def _read_clips(table: pd.DataFrame, config: LearnerConfig, reader=None):
    reader = reader or ClipReader(config.n_frames, size=config.frame_size, mode="uniform")
    report = reader.read_many(table["path"])
    keep = table["path"].isin(list(report.clips)).to_numpy()
    # uniform sampling gives one clip a video
    clips = np.stack([report.clips[p][0] for p in table.loc[keep, "path"]])
    return clips, table[keep].reset_index(drop=True), report.failed


def inhouse_data(config: LearnerConfig, root, layout: str = "lus_inhouse") -> ClipData:
    """The in-house LUS layout (S/F, bin-change labels) or ADNI (MMSE, threshold labels)."""
    if layout == "lus_inhouse":
        from kerassev.data.loaders import load_lus_inhouse

        table = load_lus_inhouse(root)
        clips, table, failed = _read_clips(table, config)
        return ClipData(
            clips,
            table.assign(hs=table["sf_ratio"]),
            source=f"in-house LUS at {root} ({len(table)} videos)",
            hs_name="S/F",
            label_mode=config.label_mode,
            label_threshold=config.label_threshold,
            skipped=failed,
        )
    if layout == "adni":
        from kerassev.data.loaders import load_adni
        from kerassev.io.nifti import read_nifti_clip

        table = load_adni(root)
        clips = np.concatenate(
            [read_nifti_clip(p, config.n_frames, size=config.frame_size) for p in table["path"]]
        )
        return ClipData(
            clips,
            table.assign(hs=table["mmse"]),
            source=f"ADNI at {root} ({len(table)} volumes)",
            hs_name="MMSE",
            # MMSE has no bins in the paper: a change beyond the threshold (default 1 point)
            label_mode="threshold",
            label_threshold=max(config.label_threshold, 1.0),
        )
    raise ValueError(f"layout must be 'lus_inhouse' or 'adni', got {layout!r}")


def pocus_data(config: LearnerConfig, root=None) -> ClipData:
    """Real POCUS videos (all classes): ``hs`` is the Lung Severity Score (NaN when unscored)."""
    from kerassev.data.loaders import load_lus_pocus

    table = load_lus_pocus(root, kind="video")
    table = table[table["label_index"] >= 0].reset_index(drop=True)  # drop label_uncertain
    clips, table, failed = _read_clips(table, config)
    return ClipData(
        clips,
        table.assign(hs=table["severity"]),
        source=(
            f"real POCUS videos (covid19_ultrasound, {len(table)} videos of 4 classes, "
            f"{int(table['severity'].notna().sum())} with a Lung Severity Score)"
        ),
        hs_name="Lung Severity Score",
        higher_is_better=False,
        label_mode="threshold",
        label_threshold=0.0,
        skipped=failed,
    )
