"""Paper 05's per-class sensitivity / TNR and weighted F1 against scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, recall_score

from kerassev.stats.multiclass import per_class_table, weighted_f1


def test_matches_sklearn_and_intervals_bracket():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    pred = np.where(rng.uniform(size=200) < 0.7, labels, rng.integers(0, 3, 200))
    probs = np.eye(3)[pred] + 0.01 * rng.uniform(size=(200, 3))
    table = per_class_table(labels, probs, ("covid", "cp", "normal"), negative=2, n_resamples=300)
    assert list(table.metric) == ["Sens (covid)", "Sens (cp)", "TNR (normal)", "F1 (weighted)"]
    np.testing.assert_allclose(table.estimate[:3], recall_score(labels, pred, average=None))
    expected = f1_score(labels, pred, average="weighted")
    assert table.estimate[3] == pytest.approx(expected)
    assert weighted_f1(labels, pred, 3) == pytest.approx(expected)
    assert (table.lo <= table.estimate).all() and (table.estimate <= table.hi).all()
    assert (table.hi - table.lo < 0.3).all() and (table.hi - table.lo > 0).all()


def test_missing_class_and_bad_shape():
    table = per_class_table([0, 0, 1], np.eye(3)[[0, 1, 1]], ("a", "b", "c"), n_resamples=50)
    assert np.isnan(table.estimate[2]) and table.n[2] == 0
    with pytest.raises(ValueError, match="probs must be"):
        per_class_table([0, 1], np.zeros((2, 2)), ("a", "b", "c"))


def test_f1_interval_is_the_percentile_bootstrap_of_sklearn_f1():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 60)
    pred = np.where(rng.uniform(size=60) < 0.6, labels, rng.integers(0, 3, 60))
    table = per_class_table(labels, np.eye(3)[pred], ("a", "b", "c"), n_resamples=150, seed=5)
    idx = np.random.default_rng(5).integers(0, 60, (150, 60))  # the documented resamples
    boot = [
        f1_score(labels[i], pred[i], labels=[0, 1, 2], average="weighted", zero_division=0)
        for i in idx
    ]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    assert table.lo[3] == pytest.approx(lo) and table.hi[3] == pytest.approx(hi)
