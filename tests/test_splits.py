"""Patient-grouped splits never leak a patient across a split (SPEC 01 and 03)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kerassev.data.splits import (
    LeakageError,
    assert_no_leakage,
    grouped_stratified_kfold,
    low_shot_subset,
    repeated_grouped_splits,
    score_bins,
    train_val_test_split,
)

FRACTIONS = (0.01, 0.1, 0.5, 1.0)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def tables(draw, min_groups: int = 1, max_groups: int = 25):
    """Random dataset tables: random group sizes, tied or continuous scores, class labels."""
    sizes = draw(st.lists(st.integers(1, 6), min_size=min_groups, max_size=max_groups))
    n = sum(sizes)
    patient = np.repeat([f"p{i:03d}" for i in range(len(sizes))], sizes)
    perm = np.random.default_rng(draw(st.integers(0, 2**16))).permutation(n)  # rows interleaved
    if draw(st.booleans()):
        scores = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))  # few values, ties
    else:
        scores = draw(st.lists(st.floats(0, 24, allow_nan=False, width=32), min_size=n, max_size=n))
    labels = draw(
        st.lists(st.sampled_from(["covid", "normal", "pneumonia"]), min_size=n, max_size=n)
    )
    return pd.DataFrame(
        {
            "path": [f"/img/{i}.dcm" for i in range(n)],
            "patient_id": patient[perm],
            "mrale": np.asarray(scores, dtype=float),
            "label": labels,
        }
    )


def _assert_split(table, train, test):
    train, test = np.asarray(train), np.asarray(test)
    assert len(train) and len(test)
    assert not np.intersect1d(train, test).size
    assert not set(table.patient_id.iloc[train]) & set(table.patient_id.iloc[test])


# ----------------------------------------------------------------------------- assert_no_leakage
def test_assert_no_leakage_names_the_patients():
    assert_no_leakage(["a", "b"], ["c"])
    with pytest.raises(LeakageError, match=r"1 patient\(s\) on both sides.*\bb\b"):
        assert_no_leakage(["a", "b"], ["b", "c"])
    assert issubclass(LeakageError, AssertionError)
    with pytest.raises(LeakageError, match="study"):
        assert_no_leakage(["x"], ["x"], what="study")


# ----------------------------------------------------------------------------- K-fold
@SETTINGS
@given(table=tables(), n_splits=st.integers(2, 6), seed=st.integers(0, 5))
def test_kfold_partitions_whole_patients(table, n_splits, seed):
    n_groups = table.patient_id.nunique()
    if n_groups < n_splits:
        with pytest.raises(ValueError, match="too few groups"):
            grouped_stratified_kfold(table, n_splits, score_col="mrale", seed=seed)
        return
    folds = grouped_stratified_kfold(table, n_splits, score_col="mrale", seed=seed)
    assert len(folds) == n_splits
    tests = np.concatenate([test for _, test in folds])
    np.testing.assert_array_equal(np.sort(tests), np.arange(len(table)))  # a partition
    for train, test in folds:
        _assert_split(table, train, test)
        np.testing.assert_array_equal(np.sort(np.r_[train, test]), np.arange(len(table)))


def test_kfold_is_stratified_and_seeded():
    rng = np.random.default_rng(0)
    n_pat = 200
    sizes = rng.integers(1, 4, n_pat)
    table = pd.DataFrame(
        {
            "patient_id": np.repeat([f"p{i}" for i in range(n_pat)], sizes),
            "mrale": np.repeat(rng.integers(0, 25, n_pat), sizes).astype(float),
        }
    )
    folds = grouped_stratified_kfold(table, 5, score_col="mrale", seed=3)
    bins = score_bins(table.mrale, 5)
    overall = np.bincount(bins) / len(bins)
    for _, test in folds:
        share = np.bincount(bins[test], minlength=len(overall)) / len(test)
        assert np.abs(share - overall).max() < 0.08
    again = grouped_stratified_kfold(table, 5, score_col="mrale", seed=3)
    other = grouped_stratified_kfold(table, 5, score_col="mrale", seed=4)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other, strict=True))


def test_kfold_bad_input():
    table = pd.DataFrame({"patient_id": ["a", "a", "b", "c"], "mrale": [1.0, 2, 3, 4]})
    with pytest.raises(ValueError, match=r"too few groups.*3 distinct.*n_splits=5"):
        grouped_stratified_kfold(table, 5, score_col="mrale")
    with pytest.raises(ValueError, match="NaN"):
        grouped_stratified_kfold(table.assign(mrale=[1.0, np.nan, 3, 4]), 2, score_col="mrale")
    with pytest.raises(ValueError, match="missing/empty"):
        grouped_stratified_kfold(table.assign(patient_id=["a", "", "b", "c"]), 2, score_col="mrale")
    with pytest.raises(ValueError, match="'nope' not in table"):
        grouped_stratified_kfold(table, 2, score_col="nope")


def test_score_bins_ties_and_few_values():
    # few distinct values: each its own bin, even when one dominates (pd.qcut would merge them)
    assert len(set(score_bins([0] * 90 + [1] * 10, 5))) == 2
    assert len(set(score_bins([0] * 10 + [1] * 90, 5))) == 2
    # continuous: ~equal-count bins; ties always share a bin
    b = score_bins(np.arange(100.0), 5)
    np.testing.assert_array_equal(np.bincount(b), [20] * 5)
    tied = np.r_[np.arange(10.0), np.full(90, 11.0)]
    bt = score_bins(tied, 5)
    assert len(set(bt[10:])) == 1 and len(set(bt)) >= 2
    assert set(score_bins(["a", "b", "a"], 5)) == {0, 1}


# ----------------------------------------------------------------------------- repeated splits
@SETTINGS
@given(table=tables(min_groups=2), seed=st.integers(0, 5))
def test_repeated_splits_are_grouped_halves(table, seed):
    splits = repeated_grouped_splits(table, 7, seed=seed)
    assert len(splits) == 7
    n_groups = table.patient_id.nunique()
    for train, test in splits:
        _assert_split(table, train, test)
        np.testing.assert_array_equal(np.sort(np.r_[train, test]), np.arange(len(table)))
        assert abs(table.patient_id.iloc[test].nunique() - n_groups / 2) <= 1


def test_repeated_splits_default_is_50_and_varies():
    table = pd.DataFrame({"patient_id": [f"p{i // 2}" for i in range(94)]})
    splits = repeated_grouped_splits(table, seed=1)
    assert len(splits) == 50
    assert len({tuple(test) for _, test in splits}) > 40
    with pytest.raises(ValueError, match="test_fraction"):
        repeated_grouped_splits(table, test_fraction=1.0)
    with pytest.raises(ValueError, match="at least 2"):
        repeated_grouped_splits(table.assign(patient_id="p"))


# ----------------------------------------------------------------------------- train/val/test
@SETTINGS
@given(table=tables(min_groups=3), seed=st.integers(0, 5))
def test_train_val_test_split_is_grouped(table, seed):
    train, val, test = train_val_test_split(table, seed=seed)
    np.testing.assert_array_equal(np.sort(np.r_[train, val, test]), np.arange(len(table)))
    for a, b in ((train, val), (train, test), (val, test)):
        _assert_split(table, a, b)


# ----------------------------------------------------------------------------- low-shot
@SETTINGS
@given(table=tables(min_groups=2), seed=st.integers(0, 5), stratify=st.booleans())
def test_low_shot_subsets_are_nested_whole_patient_subsets_of_train(table, seed, stratify):
    train, _ = repeated_grouped_splits(table, 1, seed=seed)[0]
    col = "label" if stratify else None
    subsets = [
        low_shot_subset(table, f, within=train, stratify_col=col, seed=seed) for f in FRACTIONS
    ]
    for small, large in zip(subsets, subsets[1:], strict=False):
        assert set(small) <= set(large)  # nested: 1% in 10% in 50% in 100%
    np.testing.assert_array_equal(subsets[-1], np.sort(train))
    for sub in subsets:
        assert len(sub) and set(sub) <= set(train)
        rest = np.setdiff1d(train, sub)
        assert not set(table.patient_id.iloc[sub]) & set(table.patient_id.iloc[rest])


def test_low_shot_sizes_and_classes():
    rng = np.random.default_rng(0)
    n_pat = 300
    table = pd.DataFrame(
        {
            "patient_id": np.repeat([f"p{i}" for i in range(n_pat)], 2),
            "label": np.repeat(
                rng.choice(["covid", "normal", "viral"], n_pat, p=[0.1, 0.6, 0.3]), 2
            ),
        }
    )
    tiny = low_shot_subset(table, 0.01, stratify_col="label", seed=2)
    assert set(table.label.iloc[tiny]) == {"covid", "normal", "viral"}  # >= 1 patient per class
    half = low_shot_subset(table, 0.5, seed=2)
    assert abs(len(half) - len(table) / 2) <= 2
    np.testing.assert_array_equal(half, low_shot_subset(table, 0.5, seed=2))
    with pytest.raises(ValueError, match="fraction"):
        low_shot_subset(table, 0.0)
    with pytest.raises(ValueError, match="outside"):
        low_shot_subset(table, 0.1, within=np.array([0, len(table)]))
