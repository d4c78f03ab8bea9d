"""The OLS-over-repeated-grouped-splits protocol (paper 03) on synthetic features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor

from kerassev.data.splits import repeated_grouped_splits
from kerassev.evaluation.linear_probe import (
    TABLE1_METRICS,
    fit_ols,
    linear_probe,
    n_parameters,
)


def _synthetic(n_patients=60, per_patient=2, d=3, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    n = n_patients * per_patient
    table = pd.DataFrame(
        {
            "path": [f"/x/{i}.png" for i in range(n)],
            "patient_id": np.repeat([f"p{k}" for k in range(n_patients)], per_patient),
        }
    )
    x = rng.normal(size=(n, d))
    w = np.array([1.5, -2.0, 0.5])[:d]
    y = x @ w + 3.0 + noise * rng.normal(size=n)
    return table, x, w, y


def test_ols_recovers_planted_linear_relation():
    table, x, w, y = _synthetic()
    model = fit_ols(x, y)
    np.testing.assert_allclose(model.coef_, w, atol=0.02)
    assert model.intercept_ == pytest.approx(3.0, abs=0.02)

    splits = repeated_grouped_splits(table, n_repeats=20, seed=1)
    result = linear_probe(x, {"score": y}, splits)
    summary = result.summary()
    assert list(summary.index) == ["score"]
    assert summary.loc["score", "n_splits"] == 20
    assert summary.loc["score", "pearson_mean"] > 0.999
    assert summary.loc["score", "r2_mean"] > 0.99
    # MAE of Gaussian noise with sigma 0.05 is 0.05 * sqrt(2/pi) ~ 0.04
    assert summary.loc["score", "mae_mean"] == pytest.approx(0.04, abs=0.01)
    assert summary.loc["score", "mse_mean"] == pytest.approx(0.0025, rel=0.3)
    for m in TABLE1_METRICS:
        assert summary.loc["score", f"{m}_std"] >= 0


def test_no_data_baseline_predicts_training_mean():
    table, _, _, y = _synthetic(noise=1.0)
    no_features = np.empty((len(y), 0))
    splits = repeated_grouped_splits(table, n_repeats=10, seed=2)
    result = linear_probe(no_features, {"score": y}, splits)
    for split_id, (train, test) in enumerate(splits):
        preds = result.split_predictions(split_id, "score")
        np.testing.assert_array_equal(preds["row"].to_numpy(), test)
        np.testing.assert_allclose(preds["y_pred"], y[train].mean())
        np.testing.assert_allclose(preds["y_true"], y[test])
    per_split = result.per_split
    # the training mean never beats the test mean: test R^2 <= 0 on every split
    assert (per_split["r2"] <= 1e-12).all()
    # Pearson r of a constant prediction is undefined, reported as NaN with a note
    assert per_split["pearson"].isna().all()
    assert per_split["note"].str.contains("constant y_pred").all()
    assert np.isnan(result.summary().loc["score", "pearson_mean"])
    assert n_parameters(no_features) == "0+1"
    assert isinstance(fit_ols(no_features, y), DummyRegressor)


def test_more_features_than_rows_gives_min_norm_interpolant():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 100))
    y = rng.normal(size=20)
    model = fit_ols(x, y)
    np.testing.assert_allclose(model.predict(x), y, atol=1e-8)  # interpolates the training set
    assert n_parameters(x) == "100+1"


def test_several_targets_and_summary_std_matches_numpy():
    table, x, _, y = _synthetic(noise=0.5)
    splits = repeated_grouped_splits(table, n_repeats=8, seed=3)
    result = linear_probe(x, pd.DataFrame({"a": y, "b": -2 * y}), splits)
    assert set(result.per_split["target"]) == {"a", "b"}
    assert len(result.per_split) == 16
    summary = result.summary()
    maes = result.per_split.loc[result.per_split.target == "a", "mae"].to_numpy()
    assert summary.loc["a", "mae_mean"] == pytest.approx(maes.mean())
    assert summary.loc["a", "mae_std"] == pytest.approx(maes.std(ddof=0))
    # b = -2 a: OLS is equivariant, so b's MAE is exactly twice a's on every split
    maes_b = result.per_split.loc[result.per_split.target == "b", "mae"].to_numpy()
    np.testing.assert_allclose(maes_b, 2 * maes, rtol=1e-6)


def test_bad_input_is_refused():
    table, x, _, y = _synthetic()
    splits = repeated_grouped_splits(table, n_repeats=2)
    with pytest.raises(ValueError, match="overlap"):
        linear_probe(x, {"s": y}, [(np.arange(10), np.arange(5, 15))])
    with pytest.raises(ValueError, match="values for"):
        linear_probe(x, {"s": y[:-1]}, splits)
    bad = y.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        linear_probe(x, {"s": bad}, splits)
    with pytest.raises(ValueError, match="no splits"):
        linear_probe(x, {"s": y}, [])
