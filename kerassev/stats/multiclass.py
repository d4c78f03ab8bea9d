"""Per-class sensitivity and class-share-weighted F1 with confidence intervals (paper 05, eqs. 12-14).

Paper 05 reports for COVID / CP / Normal the sensitivity of each class, ``TP / (TP + FN)`` (for
Normal, the negative class, this is the true-negative rate) and F1 weighted by each class's share
of the test split (``sklearn.metrics.f1_score(average="weighted")``). Intervals: Wilson score for
the per-class proportions (as :mod:`.classification`), a percentile bootstrap over images for the
weighted F1 (``scipy.stats.bootstrap``, paired labels and predictions, vectorised through
per-resample confusion matrices; seeds as in :mod:`.classification`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from kerassev.stats.classification import _wilson, paired_bootstrap

__all__ = ["per_class_table", "weighted_f1"]


def _confusions(labels: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """``(R, K, K)`` confusion matrices (true x predicted) of the rows of ``(R, N)`` arrays."""
    r = labels.shape[0]
    codes = labels * k + pred + (np.arange(r) * k * k)[:, None]
    return np.bincount(codes.ravel(), minlength=r * k * k).reshape(r, k, k)


def _weighted_f1(cm: np.ndarray) -> np.ndarray:
    """Weighted F1 of each ``(K, K)`` confusion matrix in ``(R, K, K)`` (eq. 14, vectorised)."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(float)
    support, predicted = cm.sum(-1), cm.sum(-2)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return (f1 * support).sum(-1) / support.sum(-1)


def weighted_f1(labels, pred, n_classes: int) -> float:
    """F1 per class weighted by its share of ``labels`` (eq. 14); a class never predicted
    scores 0."""
    return float(
        f1_score(labels, pred, labels=list(range(n_classes)), average="weighted", zero_division=0)
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
    lo, hi, _ = paired_bootstrap(
        (labels, pred),
        lambda y, p, axis: _weighted_f1(_confusions(y, p, k)),
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
    )
    rows.append(("F1 (weighted)", weighted_f1(labels, pred, k), lo, hi, len(labels)))
    return pd.DataFrame(rows, columns=["metric", "estimate", "lo", "hi", "n"])
