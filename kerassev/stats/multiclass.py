"""Per-class sensitivity and class-share-weighted F1 with confidence intervals (paper 05, eqs. 12-14).

Paper 05 reports for COVID / CP / Normal the sensitivity of each class, ``TP / (TP + FN)`` (for
Normal, the negative class, this is the true-negative rate) and F1 weighted by each class's share
of the test split (sklearn's ``average="weighted"``). Intervals: Wilson score for the per-class
proportions (as :mod:`.classification`), a percentile bootstrap over images for the weighted F1,
vectorised through per-resample confusion matrices.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kerassev.stats.classification import _percentile_ci, _wilson

__all__ = ["per_class_table", "weighted_f1"]


def _confusions(labels: np.ndarray, pred: np.ndarray, k: int, rows: np.ndarray) -> np.ndarray:
    """``(R, K, K)`` confusion matrices (true x predicted) of the index rows ``(R, N)``."""
    r = rows.shape[0]
    codes = labels[rows] * k + pred[rows] + (np.arange(r) * k * k)[:, None]
    return np.bincount(codes.ravel(), minlength=r * k * k).reshape(r, k, k)


def _weighted_f1(cm: np.ndarray) -> np.ndarray:
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(float)
    support, predicted = cm.sum(-1), cm.sum(-2)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return (f1 * support).sum(-1) / support.sum(-1)


def weighted_f1(labels, pred, n_classes: int) -> float:
    """F1 per class weighted by its share of ``labels`` (eq. 14)."""
    labels, pred = np.asarray(labels, np.int64), np.asarray(pred, np.int64)
    return float(
        _weighted_f1(_confusions(labels, pred, n_classes, np.arange(len(labels))[None]))[0]
    )


def per_class_table(
    labels,
    probs,
    class_names,
    *,
    negative: int | None = None,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Rows ``metric, estimate, lo, hi, n``: the sensitivity of each class (``negative``'s named
    TNR) and the weighted F1. ``probs (N, K)`` scores; the prediction is their argmax."""
    labels = np.asarray(labels, np.int64)
    probs = np.asarray(probs)
    k = len(class_names)
    if probs.ndim != 2 or probs.shape != (len(labels), k):
        raise ValueError(f"probs must be ({len(labels)}, {k}), got {probs.shape}")
    pred = probs.argmax(1)
    rows = []
    for c, name in enumerate(class_names):
        mine = labels == c
        hits = int((pred[mine] == c).sum())
        n = int(mine.sum())
        lo, hi = _wilson(hits, n, confidence)
        metric = f"TNR ({name})" if c == negative else f"Sens ({name})"
        rows.append((metric, hits / n if n else float("nan"), lo, hi, n))
    rng = np.random.default_rng(seed)
    resamples = rng.integers(0, len(labels), (n_resamples, len(labels)))
    boot = _weighted_f1(_confusions(labels, pred, k, resamples))
    lo, hi = _percentile_ci(boot, confidence)
    rows.append(("F1 (weighted)", weighted_f1(labels, pred, k), lo, hi, len(labels)))
    return pd.DataFrame(rows, columns=["metric", "estimate", "lo", "hi", "n"])
