"""The images paper 03 works on: the covid-chestxray frontal images and their 94 scored ones.

:func:`load_tables` gives the dataset tables, :func:`make_splits` the 50 patient-grouped ~50/50
splits of the scored images, :class:`ImageBank` the decoded images held in memory (per size).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kerassev.data.pipeline import load_images

from .config import CohenConfig


def load_tables(config: CohenConfig) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """``(frontal, scored, scored_pos)``: all distinct frontal images, the 94 scored images,
    and the position of each scored image in ``frontal``.

    The collection lists 4 files under two patient ids each (README); ``frontal`` keeps one row
    per file (the first), which is what SSL and t-SNE need. ``scored`` (the rows with severity
    scores, as the loader's ``scored_only=True``) is the table the splits are drawn from.
    """
    from kerassev.data.loaders.covid_chestxray import load_covid_chestxray

    everything = load_covid_chestxray(config.data_root)
    frontal = everything.drop_duplicates("path", keep="first").reset_index(drop=True)
    # the rows of load_covid_chestxray(root, scored_only=True), without reading metadata twice
    scored_pos = np.flatnonzero(frontal["geographic_mean"].notna().to_numpy())
    scored = frontal.iloc[scored_pos].reset_index(drop=True)
    return frontal, scored, scored_pos


def make_splits(scored: pd.DataFrame, config: CohenConfig) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``n_splits`` patient-grouped ~50/50 splits of the scored images (SPEC 03)."""
    from kerassev.data.splits import repeated_grouped_splits

    return repeated_grouped_splits(
        scored,
        n_repeats=config.n_splits,
        test_fraction=config.test_fraction,
        group_col="patient_id",
        seed=config.seed,
    )


def data_description(scored: pd.DataFrame, frontal: pd.DataFrame) -> str:
    """One line naming the data, for captions."""
    return (
        f"covid-chestxray snapshot (README): {len(scored)} severity-scored frontal CXRs of "
        f"{scored.patient_id.nunique()} patients; {len(frontal)} frontal images in all"
    )


class ImageBank:
    """Decoded ``[0, 1]`` images of one table, cached per size (each file decoded once per size)."""

    def __init__(self, table: pd.DataFrame):
        self.table = table
        self._by_size: dict[int, np.ndarray] = {}

    def at(self, size: int) -> np.ndarray:
        if size not in self._by_size:
            self._by_size[size] = load_images(self.table, size)
        return self._by_size[size]
