"""Binary detection metrics with confidence intervals, and a paired test on AUC (paper 04).

Paper 04 takes COVID-19 as positive and every other class as negative: sensitivity (Sen),
specificity (Spe), their harmonic mean (HM), ROC AUC, and the all-class accuracy (Acc).
Intervals: Wilson score for Sen, Spe and Acc (proportions; ``scipy.stats.binomtest``), a
percentile bootstrap over images for AUC and HM (vectorised: every resample's AUC from ranks at
once, which ``scipy.stats.bootstrap`` cannot do for a two-array statistic without a loop).
:func:`paired_auc_test` is a paired bootstrap of the AUC difference of two models on the same
images (DeLong's test targets the same quantity).
"""

from __future__ import annotations

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
    """ROC AUC per row of ``(R, N)`` labels/scores (Mann-Whitney U with mid-ranks); NaN where a
    row has one class only."""
    ranks = stats.rankdata(score, axis=1)
    n_pos = pos.sum(axis=1)
    n_neg = pos.shape[1] - n_pos
    u = (ranks * pos).sum(axis=1) - n_pos * (n_pos + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


def _resampled(labels, probs, positive, n_resamples, seed):
    """AUC and HM of ``n_resamples`` bootstrap resamples of the images (vectorised)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(labels), (n_resamples, len(labels)))
    pos = labels[idx] == positive
    pred_pos = probs.argmax(1)[idx] == positive
    with np.errstate(invalid="ignore", divide="ignore"):
        sen = (pred_pos & pos).sum(1) / pos.sum(1)
        spe = (~pred_pos & ~pos).sum(1) / (~pos).sum(1)
        hm = np.where(sen + spe > 0, 2 * sen * spe / (sen + spe), 0.0)
    return {"AUC": _auc_rows(pos, probs[:, positive][idx]), "HM": hm}


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
    for name, values in _resampled(labels, probs, positive, n_resamples, seed).items():
        out[f"{name}_lo"], out[f"{name}_hi"] = _percentile_ci(values, confidence)
    return out


def paired_auc_test(
    labels, probs_a, probs_b, *, positive: int = 0, n_resamples: int = 1000, seed: int = 0
):
    """Paired bootstrap of ``AUC(a) - AUC(b)`` over images: the difference, its 95% percentile
    interval and a two-sided p-value (twice the smaller tail mass at 0)."""
    labels = np.asarray(labels, dtype=np.int64)
    pos = labels == positive
    a, b = np.asarray(probs_a)[:, positive], np.asarray(probs_b)[:, positive]
    idx = np.random.default_rng(seed).integers(0, len(labels), (n_resamples, len(labels)))
    diffs = _auc_rows(pos[idx], a[idx]) - _auc_rows(pos[idx], b[idx])
    diffs = diffs[np.isfinite(diffs)]
    delta = float(roc_auc_score(pos, a) - roc_auc_score(pos, b))
    p = (
        float(min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0))))
        if len(diffs)
        else float("nan")
    )
    lo, hi = np.percentile(diffs, [2.5, 97.5]) if len(diffs) else (np.nan, np.nan)
    return {"auc_diff": delta, "diff_lo": float(lo), "diff_hi": float(hi), "p_value": p}


def confusion(labels, probs, n_classes: int) -> pd.DataFrame:
    """Confusion matrix (rows true, columns predicted) as counts."""
    pred = np.asarray(probs).argmax(1)
    return pd.DataFrame(confusion_matrix(labels, pred, labels=list(range(n_classes))))
