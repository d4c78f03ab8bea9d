"""Linear probe over repeated patient-grouped splits (the protocol of paper 03, Cohen et al. 2020).

Given a fixed feature matrix (one row per image, from any frozen encoder) and one or more
continuous targets, fit ordinary least squares on the training half of each split and score the
held-out half. Repeating over many random ~50/50 patient-grouped splits gives a mean and a
standard deviation for every metric.

* OLS is :class:`sklearn.linear_model.LinearRegression` (with intercept). When there are more
  features than training images (1024-d features, ~47 training images) ``lstsq`` returns the
  minimum-norm solution, as the paper's sklearn code did.
* A feature matrix with zero columns is the paper's "no data" baseline (``0+1`` parameters):
  the prediction is the training-half mean of the target
  (:class:`sklearn.dummy.DummyRegressor`, ``strategy="mean"``).
* Features are used as given (no standardisation), as in the paper.

Splits come from :func:`kerassev.data.splits.repeated_grouped_splits`; metrics from
:func:`kerassev.stats.metrics.regression_metrics`. The Pearson correlation of a constant
prediction (the "no data" row) is undefined and reported as NaN; the paper prints 0.00.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression
from threadpoolctl import threadpool_limits  # a scikit-learn dependency

from kerassev.stats.metrics import regression_metrics

#: Metrics of the paper's Table 1, in its column order.
TABLE1_METRICS: tuple[str, ...] = ("pearson", "r2", "mae", "mse")


def fit_ols(x: np.ndarray, y: np.ndarray) -> LinearRegression | DummyRegressor:
    """Least squares with an intercept; ``x`` with zero columns gives the intercept-only fit,
    a mean :class:`~sklearn.dummy.DummyRegressor`.

    ``y`` is ``(n,)`` or ``(n, k)`` (k targets fitted at once, each independently: one
    factorisation of ``x`` serves all). Both have ``predict``; the OLS fit has ``coef_``
    ((d,) or (k, d)) and ``intercept_``.
    """
    x = _as_2d(x)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if len(x) != len(y):
        raise ValueError(f"features have {len(x)} rows but the target has {len(y)}")
    if x.shape[1] == 0:
        return DummyRegressor(strategy="mean").fit(x, y)
    return LinearRegression().fit(x, y)


def n_parameters(features: np.ndarray) -> str:
    """The paper's "# parameters" column: ``"<d>+1"`` (weights + intercept)."""
    return f"{_as_2d(features).shape[1]}+1"


@dataclass(frozen=True)
class ProbeResult:
    """Per-split metrics and held-out predictions of one feature set.

    ``per_split``: one row per (split, target) with ``n_train``, ``n_test`` and every metric.
    ``predictions``: one row per (split, target, held-out image) with ``row`` (position in the
    table the features came from), ``y_true`` and ``y_pred``.
    """

    per_split: pd.DataFrame
    predictions: pd.DataFrame

    def summary(self, metrics: Sequence[str] = TABLE1_METRICS, *, ddof: int = 0) -> pd.DataFrame:
        """Mean and standard deviation over splits: index = target, columns ``<metric>_mean``,
        ``<metric>_std``, plus ``n_splits``. ``ddof=0`` is numpy's default, as the paper's
        numpy code used."""
        rows = {}
        for target, group in self.per_split.groupby("target", sort=False):
            row: dict[str, float] = {"n_splits": float(len(group))}
            for name in metrics:
                values = group[name].to_numpy(dtype=np.float64)
                finite = values[np.isfinite(values)]
                row[f"{name}_mean"] = float(finite.mean()) if finite.size else np.nan
                row[f"{name}_std"] = float(finite.std(ddof=ddof)) if finite.size > ddof else np.nan
            rows[target] = row
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "target"
        return out

    def split_predictions(self, split: int, target: str) -> pd.DataFrame:
        """Held-out predictions of one split for one target (for the scatter figure)."""
        sel = (self.predictions["split"] == split) & (self.predictions["target"] == target)
        return self.predictions.loc[sel].reset_index(drop=True)


# One BLAS thread: the fits are tiny (~47 x 1024), and a second thread only spin-waits; on two
# cores shared with TensorFlow or another pytest worker that wait made each fit ~130x slower
# (183 ms vs 1.4 ms for 47 x 512 under load, issue 23).
@threadpool_limits.wrap(limits=1)
def linear_probe(
    features: np.ndarray,
    targets: Mapping[str, np.ndarray] | pd.DataFrame,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    score_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> ProbeResult:
    """Fit OLS on each split's training rows and score its test rows, for every target.

    ``features``: (n, d) array, d may be 0 ("no data"). ``targets``: name -> (n,) values (or a
    DataFrame whose columns are the targets). ``splits``: ``(train_idx, test_idx)`` pairs of
    row positions. ``score_ranges``: optional ``{target: (lo, hi)}`` passed to
    ``regression_metrics`` (used only for the kappa; predictions are not clipped).
    """
    x = _as_2d(features)
    target_arrays = _target_arrays(targets, len(x))
    if not splits:
        raise ValueError("no splits given")
    score_ranges = dict(score_ranges or {})
    metric_rows: list[dict] = []
    pred_frames: list[pd.DataFrame] = []
    for split_id, (train_idx, test_idx) in enumerate(splits):
        train_idx = np.asarray(train_idx, dtype=np.int64)
        test_idx = np.asarray(test_idx, dtype=np.int64)
        if np.intersect1d(train_idx, test_idx).size:
            raise ValueError(f"split {split_id}: train and test rows overlap")
        names = list(target_arrays)
        y_all = np.column_stack([target_arrays[n] for n in names])
        model = fit_ols(x[train_idx], y_all[train_idx])
        pred_all = np.asarray(model.predict(x[test_idx])).reshape(len(test_idx), len(names))
        for j, name in enumerate(names):
            y_pred = pred_all[:, j]
            y_true = y_all[test_idx, j]
            metrics = regression_metrics(y_true, y_pred, score_range=score_ranges.get(name))
            metric_rows.append(
                {
                    "split": split_id,
                    "target": name,
                    "n_train": len(train_idx),
                    "n_test": len(test_idx),
                    **{k: v if k == "note" else float(v) for k, v in metrics.items()},
                }
            )
            pred_frames.append(
                pd.DataFrame(
                    {
                        "split": split_id,
                        "target": name,
                        "row": test_idx,
                        "y_true": y_true,
                        "y_pred": y_pred,
                    }
                )
            )
    return ProbeResult(pd.DataFrame(metric_rows), pd.concat(pred_frames, ignore_index=True))


def _as_2d(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"features must be (n, d); got shape {x.shape}")
    if x.size and not np.all(np.isfinite(x)):
        raise ValueError("features contain NaN or infinite values")
    return x


def _target_arrays(
    targets: Mapping[str, np.ndarray] | pd.DataFrame, n_rows: int
) -> dict[str, np.ndarray]:
    items = targets.items() if isinstance(targets, pd.DataFrame) else dict(targets).items()
    out = {}
    for name, values in items:
        y = np.asarray(values, dtype=np.float64).ravel()
        if len(y) != n_rows:
            raise ValueError(f"target '{name}' has {len(y)} values for {n_rows} feature rows")
        if not np.all(np.isfinite(y)):
            raise ValueError(f"target '{name}' has missing or non-finite values")
        out[str(name)] = y
    if not out:
        raise ValueError("no targets given")
    return out
