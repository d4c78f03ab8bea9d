"""CXR phantom cohorts written as files in the real data sets' formats: MIDRC labels + DICOM,
Cohen covid-chestxray CSVs + PNG, so the real loaders can be tested end to end on them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from kerassev.data.phantoms.cxr import make_phantom_cohort
from kerassev.data.phantoms.cxr_labels import SUBSCORE_COLUMNS
from kerassev.data.phantoms.drawing import phantom_uid

# MIDRC text labels (the real file writes "None" where the README says "blank").
EXTENT_TEXT = {0: "None", 1: "<=25%", 2: "25-50%", 3: "51-75%", 4: ">75%"}
DENSITY_TEXT = {0: "None", 1: "Hazy", 2: "Moderate", 3: "Dense"}
MIDRC_COLUMNS = (
    "StudyInstanceUID",
    "extent_right",
    "density_right",
    "extent_left",
    "density_left",
    "quality_issue",
    "extent_right_numerical",
    "density_right_numerical",
    "extent_left_numerical",
    "density_left_numerical",
    "mRALE Score",
)

_COHEN_HEADER = (
    "## Synthetic kerassev phantoms: exact scores (no raters) in the layout of covid-severity-scores.csv,,\n"
    "## License: generated data; no restrictions,,\n"
    "## Citation: layout after Joseph Paul Cohen et al. Predicting COVID-19 Pneumonia Severity on Chest X-Ray with Deep Learning. May 2020 http://arxiv.org/abs/2005.11856.,,\n"
    "## geographic_extent_mean: The extent of lung involvement by ground glass opacity or consolidation for each lung. The total extent score ranged from 0 to 8.,,\n"
    "## opacity_mean: The degree of opacity. The total opacity score ranged from 0 to 6.,,\n"
)
# Column order of the upstream metadata.csv (covid-chestxray-dataset).
COHEN_METADATA_COLUMNS = (
    "patientid", "offset", "sex", "age", "finding", "survival", "intubated", "intubation_present",
    "went_icu", "in_icu", "needed_supplemental_O2", "extubated", "temperature", "pO2_saturation",
    "leukocyte_count", "neutrophil_count", "lymphocyte_count", "view", "modality", "date",
    "location", "folder", "filename", "doi", "url", "license", "clinical_notes", "other_notes",
)  # fmt: skip


def _midrc_rows(table: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"StudyInstanceUID": table["study_id"]})
    for side in ("right", "left"):
        out[f"extent_{side}"] = table[f"extent_{side}"].map(EXTENT_TEXT)
        out[f"density_{side}"] = table[f"density_{side}"].map(DENSITY_TEXT)
    out["quality_issue"] = ""
    for col in SUBSCORE_COLUMNS:
        out[f"{col}_numerical"] = table[col].astype(int)
    out["mRALE Score"] = table["mrale"].astype(int)
    return out.loc[:, list(MIDRC_COLUMNS)]


def write_phantom_dataset(
    out_dir: str | Path,
    n_patients: int,
    *,
    fmt: Literal["png", "dicom"] = "png",
    size: int = 256,
    seed: int = 0,
    photometric: Literal["MONOCHROME2", "MONOCHROME1", "mixed"] = "MONOCHROME2",
    bits_stored: Literal[8, 12, 16] = 12,
    timepoints: tuple[int, int] = (1, 3),
    source: Literal["midrc", "uniform"] = "midrc",
) -> pd.DataFrame:
    """Write a phantom cohort as files plus labels in the real data sets' formats.

    Writes ``labels.csv`` (MIDRC columns and strings), ``annotations/covid-severity-scores.csv``
    and ``metadata.csv`` (Cohen layout), and the images: 8-bit PNG in ``images/`` (``fmt="png"``)
    or DICOM at ``<StudyInstanceUID>/<SOPInstanceUID>.dcm`` (``fmt="dicom"``; ``photometric`` and
    ``bits_stored`` apply, ``"mixed"`` draws MONOCHROME1/2 per image; a full-range window is
    written so VOI-applying readers recover the phantom exactly). For DICOM the Cohen CSVs name
    ``<SOPInstanceUID>.dcm`` with ``folder`` = the study UID, so Cohen loaders that look in
    ``images/`` need ``fmt="png"``. Refuses a non-empty ``out_dir`` (FileExistsError).
    Returns the dataset table (path, patient_id, study_id, view, timepoint, offset, labels ...).
    """
    from PIL import Image

    from kerassev.io.dicom_write import full_range_window, write_dicom

    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} exists and is not empty; refusing to overwrite it")
    if fmt not in ("png", "dicom"):
        raise ValueError(f"fmt must be 'png' or 'dicom', got {fmt!r}")
    if photometric not in ("MONOCHROME2", "MONOCHROME1", "mixed"):
        raise ValueError(
            f"photometric must be MONOCHROME1, MONOCHROME2 or mixed, got {photometric!r}"
        )
    if bits_stored not in (8, 12, 16):
        raise ValueError(f"bits_stored must be 8, 12 or 16, got {bits_stored!r}")

    cohort = make_phantom_cohort(
        n_patients, timepoints=timepoints, size=size, seed=seed, source=source
    )
    table = cohort.table.copy()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 303]))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths, folders, filenames, photometrics = [], [], [], []
    for i, row in table.iterrows():
        img = cohort.images[i]
        if fmt == "png":
            name = f"{row.patient_id}_t{row.timepoint}.png"
            path = out_dir / "images" / name
            path.parent.mkdir(exist_ok=True)
            Image.fromarray(np.rint(img * 255).astype(np.uint8), mode="L").save(path)
            folders.append("images")
            phot = "MONOCHROME2"
        else:
            phot = photometric
            if phot == "mixed":
                phot = ("MONOCHROME1", "MONOCHROME2")[int(rng.integers(0, 2))]
            sop = phantom_uid(seed, row.study_id, "sop")
            name = f"{sop}.dcm"
            path = write_dicom(
                out_dir / row.study_id / name,
                img,
                photometric=phot,
                bits_stored=bits_stored,
                patient_id=row.patient_id,
                study_uid=row.study_id,
                series_uid=phantom_uid(seed, row.study_id, "series"),
                sop_uid=sop,
                view_position="AP",
                window=full_range_window(bits_stored),  # readers recover the phantom exactly
                pixel_spacing=(430.0 / size, 430.0 / size),  # a 43 cm detector
                extra={
                    "StudyDate": (
                        pd.Timestamp("2020-04-01") + pd.Timedelta(days=int(row.offset))
                    ).strftime("%Y%m%d"),
                    "SeriesDescription": "kerassev phantom",
                },
            )
            folders.append(row.study_id)
        paths.append(str(path.resolve()))
        filenames.append(name)
        photometrics.append(phot)

    # MIDRC: one row per study (one image per study here).
    _midrc_rows(table).to_csv(out_dir / "labels.csv", index=False)

    # Cohen: severity scores with the upstream '##' header, and metadata.csv.
    (out_dir / "annotations").mkdir()
    scores = pd.DataFrame(
        {
            "filename": filenames,
            "geographic_mean": table["geographic_mean"],
            "opacity_mean": table["opacity_mean"],
        }
    )
    with open(out_dir / "annotations" / "covid-severity-scores.csv", "w", newline="") as fh:
        fh.write(_COHEN_HEADER)
        scores.to_csv(fh, index=False)
    worst = table.groupby("patient_id")["mrale"].transform("max")
    meta = pd.DataFrame({c: [""] * len(table) for c in COHEN_METADATA_COLUMNS})
    meta["patientid"] = table["patient_id"]
    meta["offset"] = table["offset"]
    meta["finding"] = np.where(table["mrale"] > 0, "COVID-19", "No Finding")
    meta["survival"] = np.where(worst >= 20, "N", "Y")  # synthetic: worst score decides
    meta["view"] = "PA"
    meta["modality"] = "X-ray"
    meta["folder"] = folders
    meta["filename"] = filenames
    meta["license"] = "synthetic"
    meta.to_csv(out_dir / "metadata.csv", index=False)

    table.insert(0, "path", paths)
    table.insert(3, "view", "PA" if fmt == "png" else "AP")
    table["filename"] = filenames
    if fmt == "dicom":
        table["photometric"] = photometrics
    return table
