"""COVIDx CT-1 split lists (``splits/v1/{train,val,test}_COVIDx_CT-1.txt``; no images ship).

Line format ``filename class xmin ymin xmax ymax``; file names are
``<CLASS>_<patient>_<scan>_<slice>.png`` and, as upstream, the patient is ``<CLASS>_<patient>``
(patient numbers restart per CNCB class folder).

:func:`load_covidx_ct_cncb` builds paper 05's sets from a user's CNCB image folder
(``<CLASS>/<patient>/<scan>/<slice>.png|jpg``, the layout upstream's ``dataset_construction/
cncb.py`` reads; its output name joins those four parts with ``_``); :func:`read_body_crop` crops a
slice to its body box.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
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


# --------------------------------------------------------------------------- CNCB image folders
#: Extensions upstream's CNCB conversion accepts for a raw slice (it writes PNGs named
#: ``<CLASS>_<patient>_<scan>_<slice>.png`` from ``<CLASS>/<patient>/<scan>/<slice>.<ext>``).
CNCB_EXTENSIONS = (".png", ".jpg", ".jpeg")


class MissingImagesError(FileNotFoundError):
    """COVIDx CT slices listed in the split files that the CNCB folder does not hold."""

    def __init__(self, root: Path, missing: list[str]):
        self.missing = missing
        shown = ", ".join(missing[:5]) + (
            f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
        )
        super().__init__(
            f"{root}: {len(missing)} COVIDx CT slice(s) missing from the CNCB folder "
            f"(<CLASS>/<patient>/<scan>/<slice>.png|jpg): {shown}; pass missing='skip' to "
            "leave them out and report them"
        )


def cncb_candidates(cncb_root: str | Path, filename: str) -> list[Path]:
    """Where ``NCP_96_1328_0032.png`` lies in a CNCB folder: ``NCP/96/1328/0032.<ext>``."""
    parts = Path(filename).stem.split("_")
    if len(parts) != 4:
        raise ValueError(f"{filename}: not a COVIDx CT CNCB name <CLASS>_<patient>_<scan>_<slice>")
    folder = Path(cncb_root).joinpath(*parts[:3])
    return [folder / f"{parts[3]}{ext}" for ext in CNCB_EXTENSIONS]


def _resolve(cncb_root: Path, filename: str, listings: dict) -> Path | None:
    """The existing candidate of ``filename``; each scan folder is listed once (``listings``)."""
    candidates = cncb_candidates(cncb_root, filename)
    folder = candidates[0].parent
    if folder not in listings:
        listings[folder] = set(os.listdir(folder)) if folder.is_dir() else set()
    return next((p for p in candidates if p.name in listings[folder]), None)


def load_covidx_ct_cncb(
    cncb_root: str | Path,
    root: str | Path | None = None,
    *,
    train_per_class: int | None = 1000,
    seed: int = 0,
    missing: str = "error",
) -> tuple[pd.DataFrame, list[str]]:
    """Paper 05's classification sets from a user's CNCB image folder and the COVIDx CT-1 splits.

    Train: ``train_per_class`` slices of each class (paper: 1,000, i.e. 3,000 in all), drawn in a
    seeded order from the training split (``None``: the whole split); val and test in full.
    ``path`` points at the CNCB file; ``patient_id`` and the body box come from the split files.
    ``missing="error"`` raises :class:`MissingImagesError` naming the files; ``"skip"`` leaves
    them out (a training class is filled from the next slices in the seeded order) and returns
    them. Returns ``(table, missing file names)``.
    """
    if missing not in ("error", "skip"):
        raise ValueError(f"missing must be 'error' or 'skip', not {missing!r}")
    cncb_root = Path(cncb_root).expanduser()
    if not cncb_root.is_dir():
        raise FileNotFoundError(f"CNCB image folder {cncb_root} does not exist")
    table = load_covidx_ct(root)
    rng = np.random.default_rng(seed)
    keep, absent, listings = [], [], {}
    for split in ("train", "val", "test"):
        part = table[table["split"] == split]
        groups = [part] if split != "train" or train_per_class is None else [
            part[part["label_index"] == c] for c in range(len(CLASS_NAMES))
        ]  # fmt: skip
        for group in groups:
            want = len(group) if split != "train" or train_per_class is None else train_per_class
            if want > len(group):
                raise ValueError(f"train split has only {len(group)} slices of a class, not {want}")
            order = rng.permutation(len(group)) if split == "train" else np.arange(len(group))
            records = group.to_dict("records")
            found = 0
            for i in order:
                if found == want:
                    break
                row = records[i]
                path = _resolve(cncb_root, row["filename"], listings)
                if path is None:
                    absent.append(row["filename"])
                    continue
                keep.append({**row, "path": str(path)})
                found += 1
    if absent and missing == "error":
        raise MissingImagesError(cncb_root, absent)
    out = pd.DataFrame(keep, columns=table.columns)
    return validate_table(out.reset_index(drop=True), label_cols=["label_index"],
                          label_ranges={"label_index": (0, 2)}), absent  # fmt: skip


def read_body_crop(row, size: int | None = None) -> np.ndarray:
    """The slice of ``row`` cropped to its body box (upstream's ``crop_to_bounding_box``) as
    ``(H, W)`` float32 in [0, 1], resized to ``size`` x ``size`` when given; errors name the file."""
    from PIL import Image

    try:
        with Image.open(row["path"]) as im:
            gray = im.convert("L")
            box = (int(row["xmin"]), int(row["ymin"]), int(row["xmax"]), int(row["ymax"]))
            if box[2] > gray.width or box[3] > gray.height:
                raise ValueError(f"body box {box} exceeds the {gray.width}x{gray.height} image")
            crop = gray.crop(box)
            if size is not None:
                crop = crop.resize((size, size), Image.BILINEAR)
            return np.asarray(crop, np.float32) / 255.0
    except (OSError, ValueError) as err:
        raise ValueError(f"{row['path']}: {err}") from err
