"""Cohen covid-chestxray-dataset: frontal X-rays, metadata and the 94 severity scores.

Duplicate files: 4 images are listed twice upstream, under patient ids 285/339 and 287/340.
We keep one row per file and merge every patient id that shares a file into one group
(``"285+339"``) for *all* of those patients' rows, so grouped splits never put one image on
both sides.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kerassev.data.loaders._common import notice, require_file, resolve_root
from kerassev.data.table import COHEN_LABELS, validate_table

FRONTAL_VIEWS = ("PA", "AP", "AP Supine")
SCORES_CSV = "annotations/covid-severity-scores.csv"
COLUMNS = [
    "path", "patient_id", "filename", "view", "finding", "survival", "offset",
    "geographic_mean", "opacity_mean",
]  # fmt: skip


def _merge_shared_patients(frame: pd.DataFrame) -> pd.Series:
    """Patient id per row, with ids that share a file merged (union-find) into 'a+b'."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for ids in frame.groupby("filename")["patientid"].unique():
        for other in ids[1:]:
            parent[find(other)] = find(ids[0])
    groups: dict[str, list[str]] = {}
    for pid in frame["patientid"].unique():
        groups.setdefault(find(pid), []).append(pid)
    name = {
        pid: "+".join(sorted(members, key=lambda s: (len(s), s)))
        for members in groups.values()
        for pid in members
    }
    return frame["patientid"].map(name)


def load_covid_chestxray(
    root: str | Path | None = None, *, scored_only: bool = False
) -> pd.DataFrame:
    """Frontal X-rays (PA, AP, AP Supine) with metadata; severity scores NaN unless scored.

    Rows whose image is not in ``images/`` are skipped with a warning naming them.
    ``scored_only=True`` keeps the images with severity scores (94 in the real data).
    """
    root = resolve_root(root, "covid_chestxray")
    meta = pd.read_csv(require_file(root / "metadata.csv"), dtype={"patientid": str})
    meta["patientid"] = meta["patientid"].astype(str).str.strip()
    frontal = meta[meta["view"].isin(FRONTAL_VIEWS) & (meta["modality"] == "X-ray")].copy()
    frontal["patient_id"] = _merge_shared_patients(frontal)

    exists = frontal["filename"].map(lambda f: (root / "images" / f).is_file())
    if not exists.all():
        notice(
            "metadata rows without an image file, skipped",
            frontal.loc[~exists, "filename"].tolist(),
        )
    frontal = frontal[exists].drop_duplicates("filename", keep="first")

    scores_path = root / SCORES_CSV
    if scores_path.is_file():
        scores = pd.read_csv(scores_path, comment="#")
        unknown = sorted(set(scores["filename"]) - set(frontal["filename"]))
        if unknown:
            notice("scored files not among the frontal images present, skipped", unknown)
        frontal = frontal.merge(scores, on="filename", how="left", validate="one_to_one")
    elif scored_only:
        require_file(scores_path)
    else:
        notice("severity scores file absent; scores are NaN", [str(scores_path)])
        frontal["geographic_mean"] = np.nan
        frontal["opacity_mean"] = np.nan

    frontal["path"] = [str(root / "images" / f) for f in frontal["filename"]]
    frontal["offset"] = pd.to_numeric(frontal["offset"], errors="coerce")  # '?' -> NaN
    table = frontal[COLUMNS].reset_index(drop=True)
    if scored_only:
        table = table[table["geographic_mean"].notna()].reset_index(drop=True)
    return validate_table(table, label_ranges=COHEN_LABELS)
