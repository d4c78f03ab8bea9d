"""Inf-Net COVID-SemiSeg multi-class sets: CT slice + label map (0 bg, 1 GGO, 2 consolidation).

MedSeg publishes no patient ids, so ``patient_id`` is ``slice_<id>``: grouped splits are per slice.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kerassev.data.loaders._common import resolve_root
from kerassev.data.table import validate_table

MASK_CLASSES = ("background", "ggo", "consolidation")
SETS = {
    "train": "TrainingSet/MultiClassInfection-Train",
    "test": "TestingSet/MultiClassInfection-Test",
}


def load_ct_lesions(root: str | Path | None = None) -> pd.DataFrame:
    """One row per slice: path (JPEG), mask_path (palette PNG; read with PIL), patient_id, split."""
    root = resolve_root(root, "ct_lesions")
    rows, unpaired = [], []
    for split, rel in SETS.items():
        for img in sorted((root / rel / "Imgs").glob("*.jpg"), key=lambda p: int(p.stem)):
            mask = root / rel / "GT" / f"{img.stem}.png"
            if not mask.is_file():
                unpaired.append(str(img))
                continue
            rows.append((str(img), str(mask), f"slice_{img.stem}", int(img.stem), split))
    if unpaired:
        raise FileNotFoundError(f"CT slices without a GT mask: {unpaired[:5]}")
    if not rows:
        raise FileNotFoundError(f"no Imgs/*.jpg under {root} ({', '.join(SETS.values())})")
    cols = ["path", "mask_path", "patient_id", "slice_id", "split"]
    return validate_table(pd.DataFrame(rows, columns=cols))
