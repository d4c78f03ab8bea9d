"""Binary detection metrics with confidence intervals, and a paired test on AUC (paper 04).

Paper 04 takes COVID-19 as positive and every other class as negative: sensitivity (Sen),
specificity (Spe), their harmonic mean (HM), ROC AUC, and the all-class accuracy (Acc).
Intervals: Wilson score for Sen, Spe and Acc (proportions; ``scipy.stats.binomtest``), a
percentile bootstrap over images for AUC and HM (``scipy.stats.bootstrap`` with
``paired=True, vectorized=True``: every resample's AUC from ranks at once).
:func:`paired_auc_test` is a paired bootstrap of the AUC difference of two models on the same
images (DeLong's test targets the same quantity).

Seeds: ``seed`` seeds ``np.random.default_rng``, from which SciPy draws one
``(n_resamples, N)`` matrix of image indices (``rng.integers(0, N, ...)``), so one seed gives
the same resamples for every metric of a call, and the same as this module's earlier
hand-written loop. A resample with one class only has no AUC (nor Sen or Spe): it is left out of
the interval, where SciPy's own interval would be NaN.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import confusion_matrix, roc_auc_score

__all__ = [
    "DETECTION_METRICS",
    "confusion",
    "detection_metrics",
    "detection_table_row",
    "paired_auc_test",
]

DETECTION_METRICS = ("Sen", "Spe", "HM", "AUC", "Acc")


def _hm(sen: float, spe: float) -> float:
    return 0.0 if sen + spe == 0 else 2 * sen * spe / (sen + spe)


def detection_metrics(labels, probs, *, positive: int = 0) -> dict[str, float]:
    """``labels`` (N,) class indices, ``probs`` (N, C) class probabilities -> Sen, Spe, HM, AUC
    (score = P(positive)), Acc (argmax over all classes)."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    pred = probs.argmax(axis=1)
    pos, pred_pos = labels == positive, pred == positive
    sen = float(np.mean(pred_pos[pos])) if pos.any() else float("nan")
    spe = float(np.mean(~pred_pos[~pos])) if (~pos).any() else float("nan")
    both = pos.any() and (~pos).any()
    auc = float(roc_auc_score(pos, probs[:, positive])) if both else float("nan")
    return {
        "Sen": sen,
        "Spe": spe,
        "HM": _hm(sen, spe),
        "AUC": auc,
        "Acc": float(np.mean(pred == labels)),
    }


def _wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence, method="wilson")
    return float(ci.low), float(ci.high)


def _auc_rows(pos: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC AUC along the last axis of ``(..., N)`` labels/scores (Mann-Whitney U with
    mid-ranks); NaN where a row has one class only."""
    ranks = stats.rankdata(score, axis=-1)
    n_pos = pos.sum(axis=-1)
    n_neg = pos.shape[-1] - n_pos
    u = (ranks * pos).sum(axis=-1) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def _hm_rows(pos: np.ndarray, pred_pos: np.ndarray) -> np.ndarray:
    """HM of Sen and Spe along the last axis; NaN where a row has one class only."""
    with np.errstate(invalid="ignore", divide="ignore"):
        sen = (pred_pos & pos).sum(-1) / pos.sum(-1)
        spe = (~pred_pos & ~pos).sum(-1) / (~pos).sum(-1)
        return np.where(sen + spe == 0, 0.0, 2 * sen * spe / (sen + spe))


def paired_bootstrap(data, statistic, *, confidence: float, n_resamples: int, seed: int):
    """``scipy.stats.bootstrap`` over the observations of the arrays in ``data`` together
    (paired), percentile interval, ``statistic(*arrays, axis)`` vectorised along the last axis.
    Returns ``(lo, hi, bootstrap distribution)``; resamples whose statistic is NaN are left out
    of the interval (see the module docstring)."""
    with warnings.catch_warnings():  # NaN resamples: SciPy warns, and we drop them below
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        res = stats.bootstrap(
            tuple(np.asarray(d) for d in data),
            statistic,
            paired=True,
            vectorized=True,
            method="percentile",
            confidence_level=confidence,
            n_resamples=n_resamples,
            rng=np.random.default_rng(seed),
        )
    dist = np.asarray(res.bootstrap_distribution, dtype=np.float64)
    lo, hi = res.confidence_interval
    if not (np.isfinite(lo) and np.isfinite(hi)):
        lo, hi = _percentile_ci(dist, confidence)
    return float(lo), float(hi), dist


def _percentile_ci(values: np.ndarray, confidence: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def detection_table_row(
    labels,
    probs,
    *,
    positive: int = 0,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """:func:`detection_metrics` plus ``<metric>_lo`` / ``<metric>_hi`` interval bounds and the
    confusion matrix counts (``tp``, ``fn``, ``tn``, ``fp`` for the positive class)."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    m = detection_metrics(labels, probs, positive=positive)
    pred_pos = probs.argmax(1) == positive
    pos = labels == positive
    tp, fn = int(np.sum(pred_pos & pos)), int(np.sum(~pred_pos & pos))
    tn, fp = int(np.sum(~pred_pos & ~pos)), int(np.sum(pred_pos & ~pos))
    out = dict(m, tp=tp, fn=fn, tn=tn, fp=fp)
    out["Sen_lo"], out["Sen_hi"] = _wilson(tp, tp + fn, confidence)
    out["Spe_lo"], out["Spe_hi"] = _wilson(tn, tn + fp, confidence)
    correct = int(np.sum(probs.argmax(1) == labels))
    out["Acc_lo"], out["Acc_hi"] = _wilson(correct, len(labels), confidence)
    boot = dict(confidence=confidence, n_resamples=n_resamples, seed=seed)  # same resamples
    out["AUC_lo"], out["AUC_hi"], _ = paired_bootstrap(
        (pos, probs[:, positive]), lambda p, s, axis: _auc_rows(p, s), **boot
    )
    out["HM_lo"], out["HM_hi"], _ = paired_bootstrap(
        (pos, pred_pos), lambda p, q, axis: _hm_rows(p, q), **boot
    )
    return out


def paired_auc_test(
    labels, probs_a, probs_b, *, positive: int = 0, n_resamples: int = 1000, seed: int = 0
):
    """Paired bootstrap of ``AUC(a) - AUC(b)`` over images: the difference, its 95% percentile
    interval and a two-sided p-value (twice the smaller tail mass at 0)."""
    labels = np.asarray(labels, dtype=np.int64)
    pos = labels == positive
    a, b = np.asarray(probs_a)[:, positive], np.asarray(probs_b)[:, positive]
    lo, hi, diffs = paired_bootstrap(
        (pos, a, b),
        lambda p, x, y, axis: _auc_rows(p, x) - _auc_rows(p, y),
        confidence=0.95,
        n_resamples=n_resamples,
        seed=seed,
    )
    diffs = diffs[np.isfinite(diffs)]
    delta = float(roc_auc_score(pos, a) - roc_auc_score(pos, b))
    p = (
        float(min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))))
        if len(diffs)
        else float("nan")
    )
    return {"auc_diff": delta, "diff_lo": lo, "diff_hi": hi, "p_value": p}


def confusion(labels, probs, n_classes: int) -> pd.DataFrame:
    """Confusion matrix (rows true, columns predicted) as counts."""
    pred = np.asarray(probs).argmax(1)
    return pd.DataFrame(confusion_matrix(labels, pred, labels=list(range(n_classes))))
