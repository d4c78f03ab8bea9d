"""Patient-grouped splits: K-fold, repeated ~50/50 splits, low-shot subsets, train/val/test.

Every helper returns *positional* row indices into the table it was given and, before returning,
calls :func:`assert_no_leakage` so that no patient ever sits on both sides of a split
(SPEC 01: "Splits must keep a patient's images in one fold"; SPEC 03: "50 random ~50/50
train/test splits grouped by patient").
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

__all__ = [
    "LeakageError",
    "assert_no_leakage",
    "group_ids",
    "grouped_stratified_kfold",
    "low_shot_subset",
    "repeated_grouped_splits",
    "score_bins",
    "train_val_test_split",
]

Split = tuple[np.ndarray, np.ndarray]


class LeakageError(AssertionError):
    """The same patient (or other group) appears on both sides of a split."""


def assert_no_leakage(
    train_groups: Iterable, test_groups: Iterable, *, what: str = "patient"
) -> None:
    """Raise :class:`LeakageError` if any group id occurs in both ``train_groups`` and ``test_groups``."""
    overlap = set(np.asarray(list(train_groups), dtype=object).tolist()) & set(
        np.asarray(list(test_groups), dtype=object).tolist()
    )
    if overlap:
        shown = sorted(map(str, overlap))[:5]
        more = f" (and {len(overlap) - 5} more)" if len(overlap) > 5 else ""
        raise LeakageError(
            f"{len(overlap)} {what}(s) on both sides of the split: {', '.join(shown)}{more}"
        )


# ----------------------------------------------------------------------------- validation helpers
def group_ids(table: pd.DataFrame, group_col: str = "patient_id") -> np.ndarray:
    """Group ids of every row as strings; ValueError for a missing column or empty/NaN ids."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    if group_col not in table.columns:
        raise ValueError(f"group column {group_col!r} not in table columns {list(table.columns)}")
    groups = table[group_col]
    bad = groups.isna() | (groups.astype(str).str.strip() == "")
    if bad.any():
        where = np.flatnonzero(bad.to_numpy())[:5].tolist()
        raise ValueError(
            f"group column {group_col!r} has {int(bad.sum())} missing/empty id(s), at rows {where}"
        )
    return groups.astype(str).to_numpy(dtype=object)


def _check_fraction(name: str, value: float, *, allow_one: bool = False) -> None:
    ok = 0 < value <= 1 if allow_one else 0 < value < 1
    if not (isinstance(value, int | float) and ok):
        bound = "(0, 1]" if allow_one else "(0, 1)"
        raise ValueError(f"{name} must be in {bound}, got {value!r}")


def _check_split(train: np.ndarray, test: np.ndarray, groups: np.ndarray, what: str) -> Split:
    train = np.sort(np.asarray(train, dtype=np.int64))
    test = np.sort(np.asarray(test, dtype=np.int64))
    assert_no_leakage(groups[train], groups[test], what=what)
    return train, test


# ----------------------------------------------------------------------------- K-fold
def score_bins(scores, n_bins: int = 5) -> np.ndarray:
    """Integer stratification bins for a score column.

    Robust to ties and to few distinct values: with ``<= n_bins`` distinct values each value is its
    own bin; otherwise each distinct value goes to the quantile bin of its mid-rank
    (``(#smaller + #equal / 2) / n``), so tied scores always share a bin and a heavy tie never
    swallows its neighbours (unlike ``pd.qcut(..., duplicates="drop")``). Non-numeric columns
    (class labels) are used as categories directly.
    """
    s = pd.Series(scores)
    if s.isna().any():
        where = np.flatnonzero(s.isna().to_numpy())[:5].tolist()
        raise ValueError(f"score column has {int(s.isna().sum())} NaN value(s), at rows {where}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return pd.factorize(s.astype(str), sort=True)[0].astype(np.int64)
    values, inverse, counts = np.unique(
        s.to_numpy(dtype=float), return_inverse=True, return_counts=True
    )
    if len(values) <= n_bins:
        return inverse.astype(np.int64)
    before = np.cumsum(counts) - counts
    mid = (before + counts / 2) / counts.sum()
    value_bin = np.minimum((mid * n_bins).astype(np.int64), n_bins - 1)
    return np.unique(value_bin[inverse], return_inverse=True)[1].astype(np.int64)


def grouped_stratified_kfold(
    table: pd.DataFrame,
    n_splits: int = 5,
    *,
    score_col: str,
    group_col: str = "patient_id",
    n_bins: int = 5,
    seed: int = 0,
) -> list[Split]:
    """Patient-grouped K-fold stratified on a binned score (SPEC 01: 5-fold CV).

    Returns ``n_splits`` ``(train_idx, test_idx)`` pairs of positional indices; the test folds
    partition the rows and every fold holds whole patients. Uses sklearn's
    ``StratifiedGroupKFold(shuffle=True)`` on :func:`score_bins`.
    """
    groups = group_ids(table, group_col)
    if score_col not in table.columns:
        raise ValueError(f"score column {score_col!r} not in table columns {list(table.columns)}")
    if not isinstance(n_splits, int | np.integer) or n_splits < 2:
        raise ValueError(f"n_splits must be an integer >= 2, got {n_splits!r}")
    n_groups = len(set(groups.tolist()))
    if n_groups < n_splits:
        raise ValueError(
            f"too few groups for K folds: {n_groups} distinct {group_col!r} value(s) "
            f"but n_splits={n_splits}; each fold needs at least one whole patient"
        )
    # merge rare bins so each has >= n_splits rows (sklearn refuses or warns otherwise)
    bins = _merge_small_bins(score_bins(table[score_col], n_bins), n_splits)
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    tests = [test for _, test in cv.split(np.zeros(len(table)), bins, groups)]
    tests = _fill_empty_folds(tests, groups)
    all_rows = np.arange(len(table))
    folds = []
    for k, test in enumerate(tests):
        train = np.setdiff1d(all_rows, test)
        folds.append(_check_split(train, test, groups, what=f"{group_col} (fold {k})"))
    return folds


def _merge_small_bins(bins: np.ndarray, min_count: int) -> np.ndarray:
    """Merge the smallest bin into its smaller neighbour until every bin has ``min_count`` rows."""
    labels = np.arange(bins.max() + 1)  # current bin of each original bin
    while True:
        counts = np.bincount(labels[bins])
        if len(counts) == 1 or counts.min() >= min_count:
            return labels[bins]
        i = int(np.argmin(counts))
        if i == 0:
            j = 1
        elif i == len(counts) - 1:
            j = i - 1
        else:
            j = i - 1 if counts[i - 1] <= counts[i + 1] else i + 1
        labels = np.where(labels == i, j, labels)
        labels = np.unique(labels, return_inverse=True)[1]


def _fill_empty_folds(tests: list[np.ndarray], groups: np.ndarray) -> list[np.ndarray]:
    """StratifiedGroupKFold's greedy assignment can leave a fold empty with very few groups; move
    one whole group from the fold with the most groups into each empty fold."""
    tests = [np.asarray(t, dtype=np.int64) for t in tests]
    for k in range(len(tests)):
        if len(tests[k]):
            continue
        donor = max(range(len(tests)), key=lambda j: len(set(groups[tests[j]].tolist())))
        moved = groups[tests[donor]][0]
        take = groups[tests[donor]] == moved
        tests[k] = tests[donor][take]
        tests[donor] = tests[donor][~take]
    return tests


# ----------------------------------------------------------------------------- repeated splits
def repeated_grouped_splits(
    table: pd.DataFrame,
    n_repeats: int = 50,
    *,
    test_fraction: float = 0.5,
    group_col: str = "patient_id",
    seed: int = 0,
) -> list[Split]:
    """``n_repeats`` random train/test splits by patient (SPEC 03: 50 random ~50/50 splits).

    ``test_fraction`` is the fraction of *patients* in the test half (sklearn ``GroupShuffleSplit``).
    """
    groups = group_ids(table, group_col)
    _check_fraction("test_fraction", test_fraction)
    if not isinstance(n_repeats, int | np.integer) or n_repeats < 1:
        raise ValueError(f"n_repeats must be an integer >= 1, got {n_repeats!r}")
    n_groups = len(set(groups.tolist()))
    if n_groups < 2:
        raise ValueError(f"need at least 2 distinct {group_col!r} values to split, got {n_groups}")
    n_test = min(max(1, round(test_fraction * n_groups)), n_groups - 1)
    gss = GroupShuffleSplit(n_splits=n_repeats, test_size=n_test, random_state=seed)
    return [
        _check_split(train, test, groups, what=f"{group_col} (repeat {r})")
        for r, (train, test) in enumerate(gss.split(np.zeros(len(table)), groups=groups))
    ]


# ----------------------------------------------------------------------------- train/val/test
def train_val_test_split(
    table: pd.DataFrame,
    *,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    group_col: str = "patient_id",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One patient-grouped train/val/test split; fractions are of patients (each side >= 1)."""
    groups = group_ids(table, group_col)
    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}"
        )
    unique = np.array(sorted(set(groups.tolist())), dtype=object)
    if len(unique) < 3:
        raise ValueError(f"need at least 3 distinct {group_col!r} values, got {len(unique)}")
    perm = np.random.default_rng(seed).permutation(len(unique))
    n_test = min(max(1, round(test_fraction * len(unique))), len(unique) - 2)
    n_val = min(max(1, round(val_fraction * len(unique))), len(unique) - n_test - 1)
    test_g = set(unique[perm[:n_test]].tolist())
    val_g = set(unique[perm[n_test : n_test + n_val]].tolist())
    test = np.flatnonzero([g in test_g for g in groups])
    val = np.flatnonzero([g in val_g for g in groups])
    train = np.setdiff1d(np.arange(len(table)), np.concatenate([test, val]))
    assert_no_leakage(groups[train], groups[val], what=f"{group_col} (train vs val)")
    assert_no_leakage(groups[train], groups[test], what=f"{group_col} (train vs test)")
    assert_no_leakage(groups[val], groups[test], what=f"{group_col} (val vs test)")
    return train, val, test


# ----------------------------------------------------------------------------- low-shot
def low_shot_subset(
    table: pd.DataFrame,
    fraction: float,
    *,
    group_col: str = "patient_id",
    stratify_col: str | None = None,
    within: np.ndarray | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Positional indices of a patient-grouped low-shot subset (paper 04: 1%, 10%, 50%, 100%).

    ``within`` restricts sampling to those positions (e.g. a fold's ``train_idx``); the result is
    always a subset of it. Patients are visited in one seeded random order (per class when
    ``stratify_col`` is given; a patient's class is its most frequent label) and the shortest
    prefix holding at least ``fraction`` of the rows is kept, with at least one patient per class.

    Nested: for the same table, ``within`` and ``seed``, a smaller fraction's subset is contained
    in a larger fraction's subset (1% in 10% in 50% in 100%), because each is a prefix of the same
    order.
    """
    groups = group_ids(table, group_col)
    _check_fraction("fraction", fraction, allow_one=True)
    pool = (
        np.arange(len(table)) if within is None else np.unique(np.asarray(within, dtype=np.int64))
    )
    if len(pool) == 0:
        raise ValueError("low_shot_subset: nothing to sample from (`within` is empty)")
    if pool.min() < 0 or pool.max() >= len(table):
        raise ValueError(f"`within` has positions outside 0..{len(table) - 1}")
    pool_groups = groups[pool]
    if stratify_col is None:
        classes = np.zeros(len(pool), dtype=np.int64)
    else:
        if stratify_col not in table.columns:
            raise ValueError(f"stratify column {stratify_col!r} not in table columns")
        labels = table[stratify_col].iloc[pool]
        if labels.isna().any():
            raise ValueError(
                f"stratify column {stratify_col!r} has {int(labels.isna().sum())} NaN(s)"
            )
        classes = pd.factorize(labels.astype(str), sort=True)[0]
    frame = pd.DataFrame({"g": pool_groups, "c": classes})
    # a patient's class = its most frequent label (ties -> smallest class code)
    group_class = frame.groupby("g")["c"].agg(lambda c: c.value_counts().sort_index().idxmax())
    group_rows = frame.groupby("g").size()
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    for cls in sorted(group_class.unique()):
        members = np.array(sorted(group_class.index[group_class == cls]), dtype=object)
        order = members[rng.permutation(len(members))]
        rows = group_rows.loc[order].to_numpy()
        target = fraction * rows.sum()
        n_take = max(1, int(np.searchsorted(np.cumsum(rows), target - 1e-9) + 1))
        chosen.extend(order[: min(n_take, len(order))].tolist())
    keep = set(chosen)
    mask = np.array([g in keep for g in pool_groups], dtype=bool)
    subset, rest = pool[mask], pool[~mask]
    assert_no_leakage(groups[subset], groups[rest], what=f"{group_col} (low-shot subset vs rest)")
    return subset
