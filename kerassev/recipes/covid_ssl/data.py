"""Paper 04's data: the COVID-19 Radiography Database, a fixed seeded 80/20 split, and the
unlabelled pre-training pool.

The pool is the split's training images plus (``extra_pool``) the frontal images of Cohen's
covid-chestxray collection. Test images never enter it: the radiography COVID class contains
Cohen images (34 of the 250 here look like covid_chestxray images, data README), so every pool
image whose 128-px thumbnail correlates at ``duplicate_threshold`` (0.97, the README's check) or
more with a test image's thumbnail is dropped, and the count is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.model_selection import train_test_split

from kerassev.data.loaders.covid_chestxray import load_covid_chestxray
from kerassev.data.loaders.covid_radiography import load_covid_radiography
from kerassev.recipes.cohen.data import ImageBank

from .config import CovidSSLConfig

THUMB = 128


@dataclass
class CovidData:
    table: pd.DataFrame  # radiography rows with a ``split`` column (train/test)
    classes: tuple[str, ...]
    positive: int  # index of the COVID class
    bank: ImageBank  # radiography images, table order
    pool: ImageBank  # unlabelled pre-training images (no test duplicates)
    pool_sources: dict[str, int]  # rows per source in the pool
    excluded: pd.DataFrame  # pool candidates dropped as duplicates of test images

    @property
    def train_idx(self) -> np.ndarray:
        return np.flatnonzero(self.table["split"].to_numpy() == "train")

    @property
    def test_idx(self) -> np.ndarray:
        return np.flatnonzero(self.table["split"].to_numpy() == "test")

    @property
    def labels(self) -> np.ndarray:
        return self.table["label_index"].to_numpy(np.int64)

    def describe(self) -> str:
        counts = self.table.groupby(["split", "label"]).size().unstack(fill_value=0)
        parts = [
            f"{split}: " + ", ".join(f"{c} {int(counts.loc[split, c])}" for c in counts.columns)
            for split in ("train", "test")
        ]
        pool = ", ".join(f"{k} {v}" for k, v in self.pool_sources.items())
        return (
            f"COVID-19 Radiography ({len(self.classes)} classes: {', '.join(self.classes)}); "
            f"{'; '.join(parts)}; pre-training pool {len(self.pool.table)} images ({pool}; "
            f"{len(self.excluded)} look-alikes of test images excluded)"
        )


def split_table(table: pd.DataFrame, test_fraction: float, seed: int) -> pd.DataFrame:
    """The paper's random 80/20 split, stratified by class and seeded (no patient ids exist;
    ``patient_id`` is the file stem, so this is also the grouped split)."""
    train, _ = train_test_split(
        np.arange(len(table)),
        test_size=test_fraction,
        stratify=table["label_index"],
        random_state=seed,
    )
    out = table.copy()
    out["split"] = "test"
    out.loc[out.index[train], "split"] = "train"
    return out


def thumbnails(paths) -> np.ndarray:
    """Whole images squashed to ``THUMB`` x ``THUMB`` grey (no crop: the radiography files were
    squashed to 224 px upstream, so a crop would misalign them with their Cohen originals)."""
    out = np.empty((len(paths), THUMB, THUMB), np.float32)
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            out[i] = np.asarray(im.convert("L").resize((THUMB, THUMB), Image.BILINEAR), np.float32)
    return out


def _thumbs(images: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-norm flattened thumbnails, so a dot product is a correlation."""
    x = images.reshape(len(images), -1).astype(np.float64)
    x -= x.mean(axis=1, keepdims=True)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def test_lookalikes(candidates: np.ndarray, test: np.ndarray, threshold: float) -> np.ndarray:
    """For each candidate thumbnail, its highest correlation with any test thumbnail."""
    if len(candidates) == 0 or len(test) == 0:
        return np.zeros(len(candidates))
    return (_thumbs(candidates) @ _thumbs(test).T).max(axis=1)


def load_data(config: CovidSSLConfig) -> CovidData:
    table = load_covid_radiography(config.data_root)
    classes = tuple(
        sorted(
            table["label"].unique(),
            key=lambda c: table.loc[table.label == c, "label_index"].iloc[0],
        )
    )
    if config.positive not in classes:
        raise ValueError(f"positive class {config.positive!r} not among {classes}")
    table = split_table(table, config.test_fraction, config.seed)
    bank = ImageBank(table)
    test_thumbs = thumbnails(table.loc[table["split"] == "test", "path"])

    parts = [table.loc[table["split"] == "train", ["path"]].assign(source="radiography train")]
    if config.extra_pool:
        extra = load_covid_chestxray(config.pool_root)[["path"]].assign(source="covid_chestxray")
        parts.append(extra)
    candidates = pd.concat(parts, ignore_index=True)
    candidates["patient_id"] = candidates["path"]
    corr = test_lookalikes(thumbnails(candidates["path"]), test_thumbs, config.duplicate_threshold)
    dup = corr >= config.duplicate_threshold
    pool = candidates[~dup].reset_index(drop=True)
    excluded = candidates[dup].assign(max_corr=corr[dup]).reset_index(drop=True)
    return CovidData(
        table=table,
        classes=classes,
        positive=classes.index(config.positive),
        bank=bank,
        pool=ImageBank(pool),
        pool_sources=pool["source"].value_counts().to_dict(),
        excluded=excluded,
    )
