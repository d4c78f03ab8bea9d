"""Pairs of scans and their 3-way change labels (paper 02 §2; SPEC 02).

Within a patient, consecutive scans (t, t+1) form a pair. Its class is ``improved``, ``same``
or ``deteriorated``, from either the change of S/F bin (>430, 275-430, 180-275, <180; the
default) or a threshold on the raw score change. ``higher_is_better`` says which way the score
points (True for S/F and MMSE, False for a severity score such as POCUS's LUS score).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PAIR_CLASSES = ("improved", "same", "deteriorated")
#: The cross-video POCUS proxy reads the same classes as "B is less / equally / more severe than A".
PROXY_CLASSES = ("less severe", "equally severe", "more severe")
SF_BIN_EDGES = (180.0, 275.0, 430.0)  # bins: <180, 180-275, 275-430, >430
LABEL_MODES = ("bins", "threshold")


def sf_bin(sf) -> np.ndarray:
    """S/F bin index: 0 for >430 (healthiest) ... 3 for <180 (most hypoxaemic)."""
    return 3 - np.digitize(np.asarray(sf, float), SF_BIN_EDGES, right=True)


def change_labels(
    before,
    after,
    *,
    mode: str = "bins",
    threshold: float = 0.0,
    higher_is_better: bool = True,
) -> np.ndarray:
    """Class index (0 improved, 1 same, 2 deteriorated) of each (before, after) pair."""
    if mode not in LABEL_MODES:
        raise ValueError(f"label mode must be one of {LABEL_MODES}, got {mode!r}")
    before, after = np.asarray(before, float), np.asarray(after, float)
    if mode == "bins":
        # a lower bin is healthier
        change = sf_bin(before) - sf_bin(after)
    else:
        delta = after - before if higher_is_better else before - after
        change = np.where(np.abs(delta) > threshold, np.sign(delta), 0)
    return np.select([change > 0, change < 0], [0, 2], default=1).astype(int)


def sequential_pairs(table: pd.DataFrame, *, order_col: str = "visit") -> pd.DataFrame:
    """Row indices ``a``, ``b`` of each patient's consecutive scans, with ``patient_id``."""
    rows = []
    for pid, group in table.groupby("patient_id", sort=True):
        idx = group.sort_values(order_col, kind="stable").index.to_numpy()
        rows += [(pid, a, b) for a, b in zip(idx[:-1], idx[1:], strict=True)]
    return pd.DataFrame(rows, columns=["patient_id", "a", "b"])


def cross_pairs(table: pd.DataFrame) -> pd.DataFrame:
    """Every ordered pair of different rows (the POCUS proxy: no longitudinal data exists);
    ``patient_id`` is clip A's patient."""
    idx = table.index.to_numpy()
    a, b = np.meshgrid(idx, idx, indexing="ij")
    keep = a != b
    pairs = pd.DataFrame({"a": a[keep], "b": b[keep]})
    pairs.insert(0, "patient_id", table.loc[pairs["a"], "patient_id"].to_numpy())
    return pairs


def pair_features(embeddings: np.ndarray, pairs: pd.DataFrame) -> np.ndarray:
    """``[u_t, u_t+1, u_t+1 - u_t]`` per pair (paper 02 §3.3)."""
    ua, ub = embeddings[pairs["a"].to_numpy()], embeddings[pairs["b"].to_numpy()]
    return np.concatenate([ua, ub, ub - ua], axis=1).astype(np.float32)
