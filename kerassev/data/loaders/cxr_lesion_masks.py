"""GeneralBlockchain CXR segmentations: images, and box-placed masks (lungs, GGO, consolidation).

Masks are crops of one annotation's box: :func:`load_cxr_mask_boxes` lists them with their
placement and :func:`assemble_mask` pastes them into an image-sized boolean mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kerassev.data.loaders._common import require_file, resolve_root
from kerassev.data.table import validate_table

MASK_CLASSES = {
    "Left Lung": "left_lung",
    "Right Lung": "right_lung",
    "Ground Glass Opacities": "ggo",
    "Consolidation": "consolidation",
}


def load_cxr_mask_boxes(root: str | Path | None = None) -> pd.DataFrame:
    """One row per mask: filename, mask_class, mask_path, left, top, width, height."""
    root = resolve_root(root, "cxr_lesion_masks")
    s = pd.read_csv(require_file(root / "structure.csv"))
    boxes = pd.DataFrame(
        {
            "filename": s["Filename"],
            "mask_class": s["Template Name"].map(MASK_CLASSES),
            "mask_path": [str(root / m) for m in s["Mask"]],
            "left": s["Left"].astype(int),
            "top": s["Top"].astype(int),
            "width": s["Width"].astype(int),
            "height": s["Height"].astype(int),
        }
    )
    if boxes["mask_class"].isna().any():
        bad = sorted(set(s.loc[boxes["mask_class"].isna(), "Template Name"]))
        raise ValueError(f"structure.csv: unknown mask classes {bad}")
    return boxes


def load_cxr_lesion_masks(root: str | Path | None = None) -> pd.DataFrame:
    """One row per image: path, patient_id, filename, finding, view, n_masks, and has_<class>."""
    root = resolve_root(root, "cxr_lesion_masks")
    boxes = load_cxr_mask_boxes(root)
    meta = pd.read_csv(require_file(root / "metadata.csv"), dtype={"patientid": str})
    meta = meta.drop_duplicates("filename").set_index("filename")
    images = sorted(p for p in (root / "images").iterdir() if p.is_file())
    rows = []
    for p in images:
        info = meta.loc[p.name] if p.name in meta.index else None
        pid = info["patientid"] if info is not None else f"file:{p.stem}"
        mine = boxes[boxes["filename"] == p.name]
        row = {
            "path": str(p),
            "patient_id": str(pid),
            "filename": p.name,
            "finding": info["finding"] if info is not None else None,
            "view": info["view"] if info is not None else None,
            "n_masks": len(mine),
        }
        row.update({f"has_{c}": c in set(mine["mask_class"]) for c in MASK_CLASSES.values()})
        rows.append(row)
    return validate_table(pd.DataFrame(rows))


def assemble_mask(
    boxes: pd.DataFrame, filename: str, classes: tuple[str, ...], shape: tuple[int, int]
) -> np.ndarray:
    """Boolean (H, W) mask of ``classes`` (e.g. ``("ggo", "consolidation")``) for one image."""
    from PIL import Image

    canvas = np.zeros(shape, dtype=bool)
    sel = boxes[(boxes["filename"] == filename) & boxes["mask_class"].isin(classes)]
    for r in sel.itertuples():
        with Image.open(r.mask_path) as im:
            fg = np.asarray(im.convert("RGB")).any(axis=-1)
        canvas[r.top : r.top + fg.shape[0], r.left : r.left + fg.shape[1]] |= fg[
            : shape[0] - r.top, : shape[1] - r.left
        ]
    return canvas
