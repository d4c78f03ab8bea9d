"""COVID-19 Radiography Database (Kaggle layout ``<CLASS>/images/*.png``).

The database has no patient ids, so ``patient_id`` is the file stem: grouped splits become
per-image splits. Near-duplicates across classes or with covid_chestxray are not merged.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kerassev.data.loaders._common import resolve_root
from kerassev.data.table import validate_table

# Kaggle class folders, in the order that fixes ``label_index`` when all four are present.
CLASS_NAMES = ("COVID", "Lung_Opacity", "Normal", "Viral Pneumonia")


def load_covid_radiography(
    root: str | Path | None = None, *, classes: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """One row per PNG: path, patient_id (file stem), filename, label, label_index.

    ``classes`` defaults to the class folders present (COVID, Normal here) in CLASS_NAMES order;
    ``label_index`` is the position in ``classes``.
    """
    root = resolve_root(root, "covid_radiography")
    if classes is None:
        classes = tuple(c for c in CLASS_NAMES if (root / c / "images").is_dir())
    rows = []
    for index, name in enumerate(classes):
        folder = root / name / "images"
        files = sorted(folder.glob("*.png"))
        if not files:
            raise FileNotFoundError(f"no PNG files in {folder} for class '{name}'")
        rows += [(str(p), p.stem, p.name, name, index) for p in files]
    if not rows:
        raise FileNotFoundError(f"no class folders ({', '.join(CLASS_NAMES)}) under {root}")
    table = pd.DataFrame(rows, columns=["path", "patient_id", "filename", "label", "label_index"])
    return validate_table(table, label_cols=["label_index"])
