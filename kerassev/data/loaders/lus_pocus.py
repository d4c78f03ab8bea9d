"""POCUS lung-ultrasound videos and images (covid19_ultrasound ``data/`` layout).

The class is the file-name prefix (Cov/Pne/Reg/Vir, as upstream ``build_image_dataset.py``);
``label_uncertain/`` files get class ``uncertain``. Patient id and severity come from
``dataset_metadata.csv`` matched on the file stem.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kerassev.data.loaders._common import notice, require_file, resolve_root
from kerassev.data.table import validate_table

CLASS_NAMES = ("covid", "pneumonia", "regular", "viral")
PREFIXES = {"cov": "covid", "pne": "pneumonia", "reg": "regular", "vir": "viral"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mpeg", ".mov", ".gif"}


def class_from_name(path: Path) -> str | None:
    """Class of a LUS file from its name (``uncertain`` in label_uncertain/), else None."""
    if path.parent.name == "label_uncertain":
        return "uncertain"
    return PREFIXES.get(path.name[:3].lower())


def load_lus_pocus(root: str | Path | None = None, *, kind: str = "all") -> pd.DataFrame:
    """One row per video/image: path, patient_id, filename, kind, probe, label, label_index
    (-1 for uncertain), severity (Lung Severity Score 0-3, NaN when not scored)."""
    if kind not in {"all", "video", "image"}:
        raise ValueError(f"kind must be 'all', 'video' or 'image', got {kind!r}")
    root = resolve_root(root, "lus_pocus")
    meta = pd.read_csv(require_file(root / "dataset_metadata.csv"))
    meta = meta.drop_duplicates("Filename").set_index("Filename")
    rows, unlabelled = [], []
    for folder in ("pocus_videos", "pocus_images"):
        for path in sorted(p for p in (root / folder).rglob("*") if p.is_file()):
            label = class_from_name(path)
            if label is None:
                unlabelled.append(path.name)
                continue
            info = meta.loc[path.stem] if path.stem in meta.index else None
            pid = info["Patient ID / Name"] if info is not None else None
            # patient ids are floats in the CSV (36.0); files without one are their own patient
            pid = str(int(pid)) if pd.notna(pid) else f"file:{path.stem}"
            severity = info["Lung Severity Score"] if info is not None else float("nan")
            kind_ = "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"
            probe = path.relative_to(root / folder).parts[0]
            rows.append((str(path), pid, path.name, kind_, probe, label, severity))
    if unlabelled:
        notice("LUS files without a class prefix, skipped", unlabelled)
    cols = ["path", "patient_id", "filename", "kind", "probe", "label", "severity"]
    table = pd.DataFrame(rows, columns=cols)
    if table.empty:
        raise FileNotFoundError(f"no files under {root}/pocus_videos or pocus_images")
    table["label_index"] = table["label"].map({c: i for i, c in enumerate(CLASS_NAMES)})
    table["label_index"] = table["label_index"].fillna(-1).astype(int)
    table["severity"] = pd.to_numeric(table["severity"], errors="coerce")
    if kind != "all":
        table = table[table["kind"] == kind].reset_index(drop=True)
    return validate_table(table, label_ranges={"severity": (0, 3)})
