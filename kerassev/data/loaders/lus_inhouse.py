"""In-house longitudinal lung ultrasound in paper 02's layout (``data_manifests/lus_inhouse.template.yaml``).

```
<root>/scans.csv      patient_id, visit_date (YYYY-MM-DD) and/or scan_index, video, sf_ratio[, split]
<root>/videos/<video> any container PyAV reads, e.g. videos/P001/2021-03-02_left.mp4
```
Scans of one patient are ordered by ``visit_date`` (else ``scan_index``), then file name;
``visit`` numbers them 0, 1 ...
Every patient needs at least two scans (the 3-way task compares consecutive scans).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kerassev.config import DataNotFoundError
from kerassev.data.loaders._common import require_file, resolve_root
from kerassev.data.table import TableError, validate_table

LUS_INHOUSE_COLUMNS = ("patient_id", "video", "sf_ratio")  # and visit_date or scan_index


def _read_visits(csv: Path, required: tuple[str, ...]) -> pd.DataFrame:
    table = pd.read_csv(require_file(csv), dtype={"patient_id": str, "subject_id": str})
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise TableError(f"{csv}: missing column(s) {missing}; expected {list(required)}")
    return table


def _order_visits(table: pd.DataFrame, by: list[str], where: Path) -> pd.DataFrame:
    table = table.sort_values(["patient_id", *by], kind="stable").reset_index(drop=True)
    table["visit"] = table.groupby("patient_id").cumcount()
    singles = table.groupby("patient_id").size()
    singles = singles[singles < 2].index.tolist()
    if singles:
        raise TableError(f"{where}: patient(s) with fewer than 2 scans: {singles[:10]}")
    return table


def load_lus_inhouse(root: str | Path | None = None) -> pd.DataFrame:
    """One row per scan: path, patient_id, visit (0, 1, ...), sf_ratio and the CSV's columns."""
    root = resolve_root(root, "lus_inhouse")
    csv = root / "scans.csv"
    table = _read_visits(csv, LUS_INHOUSE_COLUMNS)
    table["path"] = [str(root / "videos" / v) for v in table["video"]]
    absent = [
        v for v, p in zip(table["video"], table["path"], strict=True) if not Path(p).is_file()
    ]
    if absent:
        raise DataNotFoundError(
            f"{csv}: {len(absent)} video(s) missing under videos/: {absent[:5]}"
        )
    if "visit_date" in table.columns:
        order = pd.to_datetime(table["visit_date"], format="%Y-%m-%d", errors="coerce")
        if order.isna().any():
            bad = table.loc[order.isna(), "visit_date"].tolist()[:5]
            raise TableError(f"{csv}: visit_date must be YYYY-MM-DD, got {bad}")
    elif "scan_index" in table.columns:
        order = pd.to_numeric(table["scan_index"], errors="coerce")
    else:
        raise TableError(f"{csv}: needs a visit_date or a scan_index column to order the scans")
    table["sf_ratio"] = pd.to_numeric(table["sf_ratio"], errors="coerce")
    table = _order_visits(table.assign(_order=order), ["_order", "video"], csv)
    table = table.drop(columns="_order")
    return validate_table(table, label_ranges={"sf_ratio": (0, 1000)})
