"""Dataset-table schema validation."""

import numpy as np
import pandas as pd
import pytest

from kerassev.data.table import COHEN_LABELS, TableError, validate_table


def _table(**extra):
    base = {"path": ["/a/1.png", "/a/2.png", "/a/3.png"], "patient_id": ["p1", "p1", "p2"]}
    return pd.DataFrame({**base, **extra})


def test_valid_table_is_returned_unchanged():
    df = _table(geographic_mean=[0.0, 8.0, np.nan], split=["train", "test", "val"])
    assert validate_table(df, label_ranges={"geographic_mean": (0, 8)}) is df


def test_missing_columns_are_named():
    with pytest.raises(TableError, match="patient_id"):
        validate_table(pd.DataFrame({"path": ["/a.png"]}))
    with pytest.raises(TableError, match="mrale"):
        validate_table(_table(), label_cols=["mrale"])


def test_empty_patient_id_names_the_file():
    with pytest.raises(TableError, match=r"empty patient_id in row 1 \(/a/2.png\)"):
        validate_table(_table().assign(patient_id=["p1", "", "p2"]))
    with pytest.raises(TableError, match="empty patient_id"):
        validate_table(_table().assign(patient_id=["p1", None, "p2"]))


def test_duplicated_paths_are_named():
    df = _table().assign(path=["/a/1.png", "/a/1.png", "/a/3.png"])
    with pytest.raises(TableError, match=r"duplicated path in row 0 \(/a/1.png\), row 1"):
        validate_table(df)


def test_label_nan_non_numeric_and_range():
    with pytest.raises(TableError, match=r"NaN 'mrale' in row 2"):
        validate_table(_table(mrale=[1, 2, np.nan]), label_cols=["mrale"])
    with pytest.raises(TableError, match=r"non-numeric 'opacity_mean' in row 0"):
        validate_table(_table(opacity_mean=["x", 1, 2]), label_ranges={"opacity_mean": (0, 6)})
    with pytest.raises(TableError, match=r"'geographic_mean' outside \[0, 8\] in row 1 .*9.5"):
        validate_table(
            _table(geographic_mean=[1, 9.5, 2], opacity_mean=[1, 2, 3]), label_ranges=COHEN_LABELS
        )


def test_bad_split_and_empty_table():
    with pytest.raises(TableError, match="split"):
        validate_table(_table(split=["train", "holdout", "test"]))
    with pytest.raises(TableError, match="no rows"):
        validate_table(_table().iloc[:0])
    assert issubclass(TableError, ValueError)
