"""COVIDx CT-1 split lists (``splits/v1/{train,val,test}_COVIDx_CT-1.txt``; no images ship).

Line format ``filename class xmin ymin xmax ymax``; file names are
``<CLASS>_<patient>_<scan>_<slice>.png`` and, as upstream, the patient is ``<CLASS>_<patient>``
(patient numbers restart per CNCB class folder).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kerassev.data.loaders._common import require_file, resolve_root
from kerassev.data.table import validate_table

CLASS_NAMES = ("Normal", "Pneumonia", "COVID-19")
PREFIX_CLASS = {"Normal": 0, "CP": 1, "NCP": 2}
SPLIT_FILES = {s: f"splits/v1/{s}_COVIDx_CT-1.txt" for s in ("train", "val", "test")}
_COLUMNS = ["filename", "label_index", "xmin", "ymin", "xmax", "ymax"]


def load_covidx_ct(
    root: str | Path | None = None, *, image_dir: str | Path | None = None
) -> pd.DataFrame:
    """All three splits: path, patient_id, filename, split, label, label_index, bbox columns.

    ``path`` is ``image_dir / filename`` (default ``root/images``); the files exist only after
    you fetch COVIDx CT yourself.
    """
    root = resolve_root(root, "covidx_ct")
    image_dir = Path(image_dir) if image_dir is not None else root / "images"
    parts = []
    for split, rel in SPLIT_FILES.items():
        frame = pd.read_csv(require_file(root / rel), sep=" ", header=None, names=_COLUMNS)
        frame["split"] = split
        parts.append(frame)
    table = pd.concat(parts, ignore_index=True)
    pieces = table["filename"].str.split("_")
    table["patient_id"] = pieces.str[0] + "_" + pieces.str[1]
    prefix_class = pieces.str[0].map(PREFIX_CLASS)
    if not prefix_class.equals(table["label_index"]):
        bad = table.loc[prefix_class != table["label_index"], "filename"].head(5).tolist()
        raise ValueError(f"class column disagrees with the file-name prefix, e.g. {bad}")
    table["label"] = table["label_index"].map(dict(enumerate(CLASS_NAMES)))
    table["path"] = [str(image_dir / f) for f in table["filename"]]
    cols = ["path", "patient_id", "filename", "split", "label", "label_index"]
    table = table[cols + ["xmin", "ymin", "xmax", "ymax"]]
    return validate_table(table, label_cols=["label_index"], label_ranges={"label_index": (0, 2)})
