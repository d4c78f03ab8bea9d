"""Regression metrics for severity scores: MAE, MSE, RMSE, Spearman, Pearson, R^2, QWK.

SPEC 01 reports MSE, MAE and Spearman rho; SPEC 03 reports Pearson r, R^2, MAE and MSE. QWK
(quadratic-weighted kappa) treats the score as ordinal: predictions are rounded to integers and
clipped to the score range (mRALE 0-24, Cohen extent 0-8 / opacity 0-6).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats
from sklearn.metrics import cohen_kappa_score

__all__ = ["METRIC_NAMES", "HIGHER_IS_BETTER", "check_pair", "qwk", "regression_metrics"]

METRIC_NAMES = ("mae", "mse", "rmse", "spearman", "pearson", "r2", "qwk")
HIGHER_IS_BETTER = {
    "mae": False,
    "mse": False,
    "rmse": False,
    "spearman": True,
    "pearson": True,
    "r2": True,
    "qwk": True,
}


def check_pair(y_true, y_pred, *, name: str = "") -> tuple[np.ndarray, np.ndarray]:
    """1-D float arrays of equal length with no NaN/inf; ValueError naming the problem otherwise."""
    where = f" ({name})" if name else ""
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if t.ndim != 1 or p.ndim != 1:
        raise ValueError(
            f"y_true and y_pred must be 1-D{where}, got shapes {t.shape} and {p.shape}"
        )
    if len(t) != len(p):
        raise ValueError(f"mismatched lengths{where}: y_true has {len(t)}, y_pred has {len(p)}")
    if len(t) == 0:
        raise ValueError(f"empty inputs{where}")
    for label, arr in (("y_true", t), ("y_pred", p)):
        bad = ~np.isfinite(arr)
        if bad.any():
            idx = np.flatnonzero(bad)
            raise ValueError(
                f"{label}{where} has {len(idx)} NaN/inf value(s) of {len(arr)}, at positions "
                f"{idx[:10].tolist()}{' ...' if len(idx) > 10 else ''}"
            )
    return t, p


def _ordinal(
    y_true: np.ndarray, y_pred: np.ndarray, score_range
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Round + clip both to integers in ``score_range`` (default: the observed rounded range)."""
    t = np.rint(y_true).astype(np.int64)
    p = np.rint(y_pred).astype(np.int64)
    if score_range is None:
        lo, hi = int(min(t.min(), p.min())), int(max(t.max(), p.max()))
    else:
        lo, hi = (int(v) for v in score_range)
        if hi < lo:
            raise ValueError(f"score_range must be (low, high) with low <= high, got {score_range}")
    return np.clip(t, lo, hi), np.clip(p, lo, hi), np.arange(lo, hi + 1)


def qwk(y_true, y_pred, *, score_range=None) -> float:
    """Quadratic-weighted Cohen kappa on rounded, clipped scores (NaN when undefined)."""
    t, p = check_pair(y_true, y_pred)
    t, p, labels = _ordinal(t, p, score_range)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(cohen_kappa_score(t, p, weights="quadratic", labels=labels))


def regression_metrics(y_true, y_pred, *, score_range=None) -> dict:
    """All metrics for one set of predictions.

    Returns ``{"n", "mae", "mse", "rmse", "spearman", "pearson", "r2", "qwk", "note"}``. Undefined
    values (correlations with constant inputs, R^2 with constant targets, QWK with one category)
    are NaN and explained in ``note`` (empty string when nothing to say); NaN inputs raise.
    """
    t, p = check_pair(y_true, y_pred)
    err = p - t
    mse = float(np.mean(err**2))
    notes = []
    out = {"n": len(t), "mae": float(np.mean(np.abs(err))), "mse": mse, "rmse": float(np.sqrt(mse))}
    const_t, const_p = np.ptp(t) == 0, np.ptp(p) == 0
    if len(t) < 2 or const_t or const_p:
        which = (
            "n < 2"
            if len(t) < 2
            else "constant "
            + " and ".join(n for n, c in (("y_true", const_t), ("y_pred", const_p)) if c)
        )
        notes.append(f"correlations undefined ({which})")
        out["spearman"] = out["pearson"] = float("nan")
    else:
        out["spearman"] = float(stats.spearmanr(t, p).statistic)
        out["pearson"] = float(stats.pearsonr(t, p).statistic)
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    if ss_tot == 0:
        notes.append("r2 undefined (constant y_true)")
        out["r2"] = float("nan")
    else:
        out["r2"] = 1.0 - float(np.sum(err**2)) / ss_tot
    out["qwk"] = qwk(t, p, score_range=score_range)
    if np.isnan(out["qwk"]):
        notes.append("qwk undefined (a single category after rounding)")
    out["note"] = "; ".join(notes)
    return out
