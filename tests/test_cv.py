"""Grouped CV runner end to end: OOF predictions, baselines, resume, bad comparators."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

from kerassev.data.splits import LeakageError, grouped_stratified_kfold
from kerassev.evaluation.cv import OOF_COLUMNS, per_fold_metrics, run_cv
from kerassev.stats.significance import paired_tests, paired_tests_on_predictions
from kerassev.stats.tables import summary_table


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    n_pat = 60
    sizes = rng.integers(1, 4, n_pat)
    patient = np.repeat([f"p{i:02d}" for i in range(n_pat)], sizes)
    severity = np.repeat(rng.uniform(0, 24, n_pat), sizes)
    x = severity + rng.normal(0, 2, len(patient))
    return pd.DataFrame(
        {
            "path": [f"/data/img{i:03d}.dcm" for i in range(len(patient))],
            "patient_id": patient,
            "x": x,
            "mrale": np.clip(np.round(severity + rng.normal(0, 1, len(patient))), 0, 24),
        }
    )


@pytest.fixture
def folds(table):
    return grouped_stratified_kfold(table, 5, score_col="mrale", seed=0)


def linear(train, test, fold):
    model = LinearRegression().fit(train[["x"]], train["mrale"])
    return model.predict(test[["x"]])


def test_end_to_end(table, folds):
    oof = run_cv(table, {"linear": linear}, folds=folds, target_col="mrale")
    assert list(oof.columns) == OOF_COLUMNS
    assert list(dict.fromkeys(oof.comparator)) == ["mean baseline", "median baseline", "linear"]
    for _, sub in oof.groupby("comparator"):
        assert sorted(sub.row_id) == sorted(table.path)  # every image predicted once, out of fold
    # baselines are fitted on the training fold only
    train, test = folds[2]
    mean_pred = oof[(oof.comparator == "mean baseline") & (oof.fold == 2)].y_pred
    np.testing.assert_allclose(mean_pred, table.mrale.iloc[train].mean())
    med_pred = oof[(oof.comparator == "median baseline") & (oof.fold == 2)].y_pred
    np.testing.assert_allclose(med_pred, table.mrale.iloc[train].median())

    per_fold = per_fold_metrics(oof, score_range=(0, 24))
    assert len(per_fold) == 3 * 5
    assert per_fold[per_fold.comparator == "mean baseline"].spearman.isna().all()  # constant
    lin = per_fold[per_fold.comparator == "linear"]
    base = per_fold[per_fold.comparator == "mean baseline"]
    assert (lin.mae.to_numpy() < base.mae.to_numpy()).all()

    table1 = summary_table(per_fold, oof, score_range=(0, 24), n_boot=200)
    assert list(table1.comparator) == ["mean baseline", "median baseline", "linear"]
    tests = paired_tests(per_fold, metric="mae")
    assert len(tests) == 3
    row = tests[(tests.comparator_a == "mean baseline") & (tests.comparator_b == "linear")].iloc[0]
    assert row.mean_diff > 0 and row.t_p < 0.01
    by_image = paired_tests_on_predictions(oof)
    assert (by_image.n_pairs == len(table)).all()


class Flaky:
    """Comparator that counts calls per fold and raises on ``fail_fold`` the first time."""

    def __init__(self, fail_fold: int | None = None):
        self.calls: Counter = Counter()
        self.fail_fold = fail_fold

    def __call__(self, train, test, fold):
        self.calls[fold] += 1
        if fold == self.fail_fold:
            self.fail_fold = None
            raise RuntimeError("out of GPU memory")
        return linear(train, test, fold)


def test_resume_after_a_failure(table, folds, tmp_path):
    progress = tmp_path / "progress" / "oof.csv"
    steady, flaky = Flaky(), Flaky(fail_fold=3)
    comparators = {"steady": steady, "flaky": flaky}
    with pytest.raises(RuntimeError, match="out of GPU memory") as info:
        run_cv(table, comparators, folds=folds, target_col="mrale", progress_path=progress)
    assert any("'flaky' raised on fold 3" in note for note in info.value.__notes__)
    saved = pd.read_csv(progress)
    assert set(saved[saved.comparator == "flaky"].fold) == {0, 1, 2}
    assert set(saved[saved.comparator == "steady"].fold) == {0, 1, 2, 3}

    oof = run_cv(table, comparators, folds=folds, target_col="mrale", progress_path=progress)
    assert flaky.calls == Counter({0: 1, 1: 1, 2: 1, 3: 2, 4: 1})  # earlier folds not rerun
    assert steady.calls == Counter({k: 1 for k in range(5)})
    fresh = run_cv(table, {"steady": linear, "flaky": linear}, folds=folds, target_col="mrale")
    pd.testing.assert_frame_equal(oof, fresh)  # resumed == uninterrupted, to the bit

    # a third run has nothing left to do
    again = run_cv(table, comparators, folds=folds, target_col="mrale", progress_path=progress)
    assert sum(flaky.calls.values()) == 6
    pd.testing.assert_frame_equal(again, fresh)


def test_progress_from_other_folds_is_refused(table, folds, tmp_path):
    progress = tmp_path / "oof.csv"
    run_cv(table, {"linear": linear}, folds=folds, target_col="mrale", progress_path=progress)
    other = grouped_stratified_kfold(table, 5, score_col="mrale", seed=1)
    with pytest.raises(ValueError, match="different folds"):
        run_cv(table, {"linear": linear}, folds=other, target_col="mrale", progress_path=progress)
    with pytest.raises(ValueError, match="different y_true"):
        run_cv(
            table.assign(mrale=table.mrale + 1),
            {"linear": linear},
            folds=folds,
            target_col="mrale",
            progress_path=progress,
        )


def test_bad_predictions_name_comparator_and_fold(table, folds):
    def nan_on_fold_1(train, test, fold):
        pred = linear(train, test, fold)
        if fold == 1:
            pred[:2] = np.nan
        return pred

    with pytest.raises(
        ValueError, match=r"comparator 'broken', fold 1: 2 of \d+ predictions are NaN"
    ):
        run_cv(table, {"broken": nan_on_fold_1}, folds=folds, target_col="mrale")
    with pytest.raises(
        ValueError, match=r"comparator 'short', fold 0: predictions have shape \(3,\)"
    ):
        run_cv(table, {"short": lambda tr, te, k: np.zeros(3)}, folds=folds, target_col="mrale")


def test_bad_setup_is_refused(table, folds):
    # one patient with several images, split across train and test
    counts = table.patient_id.value_counts()
    shared = counts.index[counts >= 2][0]
    rows = np.arange(len(table))
    same, other = rows[table.patient_id == shared], rows[table.patient_id != shared]
    leaky = [(np.r_[same[:1], other], same[1:])]
    with pytest.raises(LeakageError, match=shared):
        run_cv(table, {}, folds=leaky, target_col="mrale")
    with pytest.raises(ValueError, match="clashes with a baseline"):
        run_cv(table, {"mean baseline": linear}, folds=folds, target_col="mrale")
    with pytest.raises(ValueError, match="target column 'mrale' has 1 NaN"):
        run_cv(
            table.assign(mrale=table.mrale.where(table.index != 5)),
            {},
            folds=folds,
            target_col="mrale",
        )
    with pytest.raises(ValueError, match="duplicate"):
        run_cv(table.assign(path="same"), {}, folds=folds, target_col="mrale")
    oof = run_cv(table, {}, folds=folds, target_col="mrale", baselines=("mean",))
    assert set(oof.comparator) == {"mean baseline"}


def test_on_fold_done_runs_after_the_fold_is_saved(table, folds, tmp_path):
    progress = tmp_path / "oof.csv"
    seen = []

    def on_fold_done(name, fold):
        saved = pd.read_csv(progress)
        # called only once this fold's predictions are on disk (a kill now loses nothing)
        assert ((saved.comparator == name) & (saved.fold == fold)).sum() > 0
        seen.append((name, fold))

    run_cv(
        table,
        {"linear": linear},
        folds=folds,
        target_col="mrale",
        progress_path=progress,
        on_fold_done=on_fold_done,
    )
    assert [s for s in seen if s[0] == "linear"] == [("linear", k) for k in range(5)]
    assert ("mean baseline", 0) in seen
