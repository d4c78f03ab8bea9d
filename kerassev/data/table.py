"""The dataset-table schema: one row per image, with ``path`` and ``patient_id`` (see
docs/architecture.md) and the data set's label columns, and :func:`validate_table`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

REQUIRED_COLUMNS = ("path", "patient_id")
SPLITS = ("train", "val", "test")

# Label columns and ranges of the shared contract (architecture.md).
MRALE_LABELS = {
    "extent_right": (0, 4),
    "density_right": (0, 3),
    "extent_left": (0, 4),
    "density_left": (0, 3),
    "mrale": (0, 24),
}
COHEN_LABELS = {"geographic_mean": (0, 8), "opacity_mean": (0, 6)}

_MAX_NAMED = 5  # rows named in one message; the rest are counted


class TableError(ValueError):
    """A dataset table breaks the schema; the message names the offending rows or files."""


def _name_rows(df: pd.DataFrame, mask: Iterable[bool]) -> str:
    """'row 3 (a.png), row 7 (b.png) and 4 more' for the rows selected by ``mask``."""
    bad = df[np.asarray(list(mask), dtype=bool)]
    parts = []
    for idx, row in bad.head(_MAX_NAMED).iterrows():
        label = row["path"] if "path" in df.columns else ""
        parts.append(f"row {idx} ({label})" if label else f"row {idx}")
    more = len(bad) - _MAX_NAMED
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def validate_table(
    df: pd.DataFrame,
    *,
    label_cols: Sequence[str] = (),
    label_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """Check ``df`` against the schema and return it unchanged; raise :class:`TableError` otherwise.

    ``label_cols`` must be present, numeric and free of NaN; ``label_ranges`` maps a column to
    an inclusive ``(low, high)`` (NaN is allowed there unless the column is also in label_cols).
    """
    if not isinstance(df, pd.DataFrame):
        raise TableError(f"expected a pandas DataFrame, got {type(df).__name__}")
    label_ranges = dict(label_ranges or {})
    wanted = [*REQUIRED_COLUMNS, *label_cols, *label_ranges]
    missing = [c for c in dict.fromkeys(wanted) if c not in df.columns]
    if missing:
        raise TableError(f"table lacks column(s) {missing}; it has {list(df.columns)}")
    if df.empty:
        raise TableError("table has no rows")

    path = df["path"]
    bad_path = path.isna() | (path.astype(str).str.strip() == "")
    if bad_path.any():
        raise TableError(f"empty path in {_name_rows(df, bad_path)}")
    dup = path.astype(str).duplicated(keep=False)
    if dup.any():
        raise TableError(f"duplicated path in {_name_rows(df, dup)}")

    pid = df["patient_id"]
    bad_pid = pid.isna() | (pid.astype(str).str.strip().isin(["", "nan", "None"]))
    if bad_pid.any():
        raise TableError(f"empty patient_id in {_name_rows(df, bad_pid)}")

    if "split" in df.columns:
        bad_split = ~df["split"].isin(SPLITS)
        if bad_split.any():
            raise TableError(f"split not in {SPLITS} in {_name_rows(df, bad_split)}")

    for col in dict.fromkeys([*label_cols, *label_ranges]):
        values = pd.to_numeric(df[col], errors="coerce")
        non_numeric = values.isna() & df[col].notna()
        if non_numeric.any():
            raise TableError(f"non-numeric '{col}' in {_name_rows(df, non_numeric)}")
        if col in label_cols and values.isna().any():
            raise TableError(f"NaN '{col}' in {_name_rows(df, values.isna())}")
        if col in label_ranges:
            low, high = label_ranges[col]
            out = values.notna() & ((values < low) | (values > high))
            if out.any():
                raise TableError(
                    f"'{col}' outside [{low}, {high}] in {_name_rows(df, out)} "
                    f"(values {sorted(values[out].unique().tolist())[:_MAX_NAMED]})"
                )
    return df
