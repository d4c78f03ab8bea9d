"""ADNI longitudinal MRI with MMSE in paper 02's layout (``data_manifests/adni.template.yaml``).

```
<root>/visits.csv        subject_id, visit_month, scan, mmse[, split]
<root>/mri/<scan>        NIfTI volumes, e.g. mri/002_S_0295/m06.nii.gz
```
Each volume becomes a clip of slices (:func:`kerassev.io.nifti.read_nifti_clip`), so the TSM
encoder applies unchanged; visits of a subject are ordered by ``visit_month``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from kerassev.config import DataNotFoundError
from kerassev.data.loaders._common import resolve_root
from kerassev.data.loaders.lus_inhouse import _order_visits, _read_visits
from kerassev.data.table import validate_table

ADNI_COLUMNS = ("subject_id", "visit_month", "scan", "mmse")


def load_adni(root: str | Path | None = None) -> pd.DataFrame:
    """One row per visit: path, patient_id (= subject_id), visit_month, visit, mmse[, split]."""
    root = resolve_root(root, "adni")
    csv = root / "visits.csv"
    table = _read_visits(csv, ADNI_COLUMNS)
    table["patient_id"] = table["subject_id"].astype(str)
    table["path"] = [str(root / "mri" / s) for s in table["scan"]]
    absent = [s for s, p in zip(table["scan"], table["path"], strict=True) if not Path(p).is_file()]
    if absent:
        raise DataNotFoundError(f"{csv}: {len(absent)} volume(s) missing under mri/: {absent[:5]}")
    table["mmse"] = pd.to_numeric(table["mmse"], errors="coerce")
    table = _order_visits(table, ["visit_month"], csv)
    return validate_table(table, label_ranges={"mmse": (0, 30)})
