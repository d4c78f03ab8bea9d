"""Paper 04's detection metrics, their intervals and the paired AUC test."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from kerassev.stats.classification import (
    _auc_rows,
    confusion,
    detection_metrics,
    detection_table_row,
    paired_auc_test,
)


def _data(n=200, seed=0, noise=0.8):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = (y == 0) + noise * rng.normal(size=n)  # class 0 (COVID) is positive
    p0 = 1 / (1 + np.exp(-score))
    return y, np.stack([p0, 1 - p0], 1)


def test_metrics_by_hand():
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    probs = np.array(
        [[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9], [0.2, 0.8]]
    )
    m = detection_metrics(y, probs, positive=0)
    assert m["Sen"] == pytest.approx(2 / 3) and m["Spe"] == pytest.approx(3 / 4)
    assert m["HM"] == pytest.approx(2 * (2 / 3) * 0.75 / (2 / 3 + 0.75))
    assert m["Acc"] == pytest.approx(5 / 7)
    assert m["AUC"] == pytest.approx(roc_auc_score(y == 0, probs[:, 0]))
    assert confusion(y, probs, 2).to_numpy().tolist() == [[2, 1], [1, 3]]


def test_vectorised_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(1)
    pos = rng.random((5, 40)) < 0.4
    score = np.round(rng.random((5, 40)), 1)  # ties
    want = [roc_auc_score(p, s) for p, s in zip(pos, score, strict=True)]
    np.testing.assert_allclose(_auc_rows(pos, score), want)


def test_intervals_contain_the_estimate_and_shrink_with_n():
    small = detection_table_row(*_data(100), n_resamples=300)
    large = detection_table_row(*_data(2000), n_resamples=300)
    for m in ("Sen", "Spe", "HM", "AUC", "Acc"):
        assert small[f"{m}_lo"] <= small[m] <= small[f"{m}_hi"], m
        assert large[f"{m}_hi"] - large[f"{m}_lo"] < small[f"{m}_hi"] - small[f"{m}_lo"], m
    assert small["tp"] + small["fn"] + small["tn"] + small["fp"] == 100


def test_paired_auc_test_separates_a_better_model_only():
    y, good = _data(300, noise=0.5)
    _, bad = _data(300, noise=3.0)
    better = paired_auc_test(y, good, bad, n_resamples=500)
    same = paired_auc_test(y, good, good, n_resamples=500)
    assert better["auc_diff"] > 0 and better["p_value"] < 0.05 and better["diff_lo"] > 0
    assert same["auc_diff"] == 0 and same["p_value"] == 1.0


def test_bootstrap_seed_draws_one_index_matrix_per_call():
    # seed -> np.random.default_rng(seed).integers(0, N, (R, N)): the documented resamples
    y, probs = _data(80, seed=3)
    row = detection_table_row(y, probs, n_resamples=200, seed=7)
    idx = np.random.default_rng(7).integers(0, len(y), (200, len(y)))
    pos = y == 0
    by_hand = [roc_auc_score(pos[i], probs[i, 0]) for i in idx]
    lo, hi = np.percentile(by_hand, [2.5, 97.5])
    assert row["AUC_lo"] == pytest.approx(lo) and row["AUC_hi"] == pytest.approx(hi)
    again = detection_table_row(y, probs, n_resamples=200, seed=7)
    other = detection_table_row(y, probs, n_resamples=200, seed=8)
    assert again == row and other["AUC_lo"] != row["AUC_lo"]


def test_one_class_resamples_are_left_out_not_nan():
    y = np.array([0, 1, 1, 1, 1, 1])  # many resamples hold no positive: no AUC, no Sen
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9], [0.4, 0.6]])
    row = detection_table_row(y, probs, n_resamples=200)
    for m in ("AUC", "HM"):
        assert np.isfinite(row[f"{m}_lo"]) and np.isfinite(row[f"{m}_hi"]), m
    test = paired_auc_test(y, probs, probs[::-1], n_resamples=200)
    assert np.isfinite(test["diff_lo"]) and 0 <= test["p_value"] <= 1
