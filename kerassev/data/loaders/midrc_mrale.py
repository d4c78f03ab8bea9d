"""MIDRC mRALE Mastermind: DICOMs anywhere under an image root, joined to the label CSV by the
StudyInstanceUID tag. ``patient_id`` is the DICOM PatientID (the CSV has none)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kerassev import config
from kerassev.data.loaders._common import notice, require_file, resolve_root
from kerassev.data.table import MRALE_LABELS, TableError, validate_table

LABELS_CSV = "MIDRC mRALE Mastermind Training Annotations_2079_20230428.csv"
EXTENT_CODES = {"<=25%": 1, "25-50%": 2, "51-75%": 3, ">75%": 4}
DENSITY_CODES = {"Hazy": 1, "Moderate": 2, "Dense": 3}
SUBSCORES = ("extent_right", "density_right", "extent_left", "density_left")


def _default_labels(image_root: Path | None) -> Path:
    if image_root is not None:
        for candidate in [image_root / "labels.csv", *sorted(image_root.glob("*Annotations*.csv"))]:
            if candidate.is_file():
                return candidate
    return config.dataset_dir("midrc_mrale") / LABELS_CSV


def load_midrc_labels(csv: str | Path | None = None) -> pd.DataFrame:
    """Labels only: study_id, the four sub-scores (ints), mrale, quality_issue.

    Sub-scores come from the ``*_numerical`` columns, or from the text columns when those are
    absent. Rows where mRALE != extent_r*density_r + extent_l*density_l are named in a warning.
    """
    path = require_file(Path(csv) if csv is not None else _default_labels(None))
    raw = pd.read_csv(path, dtype={"StudyInstanceUID": str})
    if "StudyInstanceUID" not in raw.columns or "mRALE Score" not in raw.columns:
        raise TableError(f"{path}: needs columns StudyInstanceUID and 'mRALE Score'")
    out = pd.DataFrame({"study_id": raw["StudyInstanceUID"].astype(str).str.strip()})
    for col in SUBSCORES:
        codes = EXTENT_CODES if col.startswith("extent") else DENSITY_CODES
        if f"{col}_numerical" in raw.columns:
            out[col] = pd.to_numeric(raw[f"{col}_numerical"], errors="coerce")
        else:  # text only: blank means none (0)
            out[col] = raw[col].map(codes).where(raw[col].notna(), 0)
    out["mrale"] = pd.to_numeric(raw["mRALE Score"], errors="coerce")
    out["quality_issue"] = raw.get("quality_issue")
    for col in (*SUBSCORES, "mrale"):
        bad = out[col].isna() | (out[col] % 1 != 0)
        lo, hi = MRALE_LABELS[col]
        bad |= (out[col] < lo) | (out[col] > hi)
        if bad.any():
            ids = out.loc[bad, "study_id"].head(5).tolist()
            raise TableError(
                f"{path}: '{col}' not an integer in [{lo}, {hi}] for {int(bad.sum())} rows, e.g. {ids}"
            )
        out[col] = out[col].astype(int)
    dup = out["study_id"].duplicated(keep=False)
    if dup.any():
        raise TableError(
            f"{path}: duplicated StudyInstanceUID {out.loc[dup, 'study_id'].unique()[:5].tolist()}"
        )
    formula = out["extent_right"] * out["density_right"] + out["extent_left"] * out["density_left"]
    wrong = formula != out["mrale"]
    if wrong.any():
        notice(
            f"{path.name}: rows where mRALE != extent*density summed over lungs",
            out.loc[wrong, "study_id"].tolist(),
        )
    return out


def load_midrc_mrale(
    image_root: str | Path | None = None, labels_csv: str | Path | None = None
) -> pd.DataFrame:
    """One row per labelled DICOM: path, patient_id, study_id, the sub-scores and mrale.

    Studies without images and images without labels are dropped with a warning giving counts.
    """
    from kerassev.io.dicom import DicomReadError, read_dicom_meta

    root = resolve_root(image_root, "midrc_mrale")
    labels = load_midrc_labels(labels_csv if labels_csv is not None else _default_labels(root))
    files = sorted(p for p in root.rglob("*.dcm") if p.is_file())
    if not files:
        raise config.DataNotFoundError(
            f"no DICOM files under {root}; MIDRC images need a credentialed gen3-client download"
        )
    rows, unreadable = [], []
    for path in files:
        try:
            meta = read_dicom_meta(path)
        except DicomReadError as err:
            unreadable.append(f"{path.name} ({err})")
            continue
        rows.append((str(path), str(meta.patient_id or "").strip(), str(meta.study_instance_uid)))
    if unreadable:
        notice("unreadable DICOM files, skipped", unreadable)
    images = pd.DataFrame(rows, columns=["path", "patient_id", "study_id"])
    no_pid = images["patient_id"] == ""
    if no_pid.any():  # keep the schema's non-empty patient id; a study is then its own group
        notice("DICOMs without PatientID; using the study id", images.loc[no_pid, "path"].tolist())
        images.loc[no_pid, "patient_id"] = "study:" + images.loc[no_pid, "study_id"]
    unlabelled = ~images["study_id"].isin(labels["study_id"])
    if unlabelled.any():
        notice(
            "images whose study has no label, skipped",
            images.loc[unlabelled, "path"].tolist(),
            shown=3,
        )
    no_image = ~labels["study_id"].isin(images["study_id"])
    if no_image.any():
        notice(
            "labelled studies without an image", labels.loc[no_image, "study_id"].tolist(), shown=3
        )
    table = images[~unlabelled].merge(labels.drop(columns="quality_issue"), on="study_id")
    table = table.sort_values(["patient_id", "study_id", "path"]).reset_index(drop=True)
    return validate_table(table, label_cols=list(MRALE_LABELS), label_ranges=MRALE_LABELS)
