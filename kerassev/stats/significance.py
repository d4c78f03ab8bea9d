"""Paired significance tests between every pair of comparators.

SPEC 01: "two-sided t-tests between comparators (the paper marks p < 0.01 and p > 0.05)". With five
folds a paired t-test has 4 degrees of freedom and an exact Wilcoxon signed-rank test cannot go
below p = 2 / 2**5 = 0.0625, so :func:`paired_tests_on_predictions` also pairs per-image (or
per-patient) errors. NaNs are reported as NaN with a ``note``, never dropped silently.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["ERROR_KINDS", "holm_adjust", "paired_tests", "paired_tests_on_predictions"]

ERROR_KINDS = ("abs_error", "sq_error")

COLUMNS = [
    "comparator_a",
    "comparator_b",
    "metric",
    "n_pairs",
    "mean_a",
    "mean_b",
    "mean_diff",
    "t_stat",
    "t_p",
    "wilcoxon_stat",
    "wilcoxon_p",
    "note",
]


def _require(df: pd.DataFrame, cols, what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; has {list(df.columns)}")


def _test_pair(a: np.ndarray, b: np.ndarray) -> dict:
    """Paired two-sided t-test and Wilcoxon signed-rank on a - b."""
    nan = float("nan")
    n = len(a)
    out = {"n_pairs": n, "mean_a": nan, "mean_b": nan, "mean_diff": nan}
    out.update(t_stat=nan, t_p=nan, wilcoxon_stat=nan, wilcoxon_p=nan)
    notes = []
    if n == 0:
        out["note"] = "no common pairs"
        return out
    out["mean_a"], out["mean_b"] = float(np.mean(a)), float(np.mean(b))
    d = a - b
    out["mean_diff"] = float(np.mean(d))
    n_nan = int(np.isnan(d).sum())
    if n_nan:
        out["note"] = f"{n_nan} of {n} pair(s) have a NaN value; tests not run"
        return out
    if n < 2:
        notes.append("fewer than 2 pairs; tests not run")
    elif np.all(d == d[0]):
        notes.append(
            "all differences equal; t-test undefined" + ("" if d[0] else ", Wilcoxon undefined")
        )
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = stats.ttest_rel(a, b)
        out["t_stat"], out["t_p"] = float(t.statistic), float(t.pvalue)
    if n >= 2 and np.any(d != 0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = stats.wilcoxon(a, b)
        out["wilcoxon_stat"], out["wilcoxon_p"] = float(w.statistic), float(w.pvalue)
        n_nonzero = int(np.count_nonzero(d))
        if n_nonzero <= 10:
            notes.append(
                f"Wilcoxon with {n_nonzero} non-zero pair(s): smallest possible two-sided p is "
                f"{2 / 2**n_nonzero:.4g}"
            )
    out["note"] = "; ".join(notes)
    return out


def _series_by_key(long: pd.DataFrame, comparator_col: str, key_cols: list[str], value_col: str):
    """{comparator: Series of values indexed by the pairing key}; duplicate keys raise."""
    out = {}
    for name, sub in long.groupby(comparator_col, sort=False):
        key = (
            pd.MultiIndex.from_frame(sub[key_cols])
            if len(key_cols) > 1
            else pd.Index(sub[key_cols[0]])
        )
        if key.has_duplicates:
            dup = key[key.duplicated()][:3].tolist()
            raise ValueError(
                f"comparator {name!r} has duplicate pairing key(s) {dup} in {key_cols}; "
                "each comparator needs one value per key"
            )
        out[name] = pd.Series(sub[value_col].to_numpy(dtype=float), index=key)
    return out


def _all_pairs(series: dict, metric: str, extra_note: str = "") -> pd.DataFrame:
    rows = []
    for a, b in itertools.combinations(list(series), 2):
        sa, sb = series[a], series[b]
        common = sa.index.intersection(sb.index, sort=False)
        res = _test_pair(sa.loc[common].to_numpy(), sb.loc[common].to_numpy())
        unpaired = len(sa) + len(sb) - 2 * len(common)
        notes = [res.pop("note")]
        if unpaired:
            notes.append(f"{unpaired} value(s) present for only one of the two were not paired")
        notes.append(extra_note)
        rows.append({"comparator_a": a, "comparator_b": b, "metric": metric, **res})
        rows[-1]["note"] = "; ".join(x for x in notes if x)
    return pd.DataFrame(rows, columns=COLUMNS)


def paired_tests(
    per_fold: pd.DataFrame,
    *,
    metric: str,
    comparator_col: str = "comparator",
    pair_col: str = "fold",
) -> pd.DataFrame:
    """Paired tests on a per-fold metric for every pair of comparators.

    ``per_fold`` is long: one row per (comparator, fold) with a ``metric`` column (as from
    :func:`kerassev.evaluation.cv.per_fold_metrics`). ``mean_diff`` is ``mean(a - b)``; ``t_p`` is
    the paired two-sided t-test (``scipy.stats.ttest_rel``), ``wilcoxon_p`` the two-sided Wilcoxon
    signed-rank test (``scipy.stats.wilcoxon``); ``note`` flags NaNs, unpaired folds and the
    Wilcoxon floor (5 folds: p >= 0.0625).
    """
    if not isinstance(per_fold, pd.DataFrame):
        raise TypeError(f"per_fold must be a DataFrame, got {type(per_fold).__name__}")
    _require(per_fold, [comparator_col, pair_col, metric], "per_fold")
    series = _series_by_key(per_fold, comparator_col, [pair_col], metric)
    if len(series) < 2:
        raise ValueError(f"need at least 2 comparators to compare, got {list(series)}")
    return _all_pairs(series, metric)


def paired_tests_on_predictions(
    oof: pd.DataFrame,
    metric: str = "abs_error",
    *,
    level: str = "image",
    comparator_col: str = "comparator",
) -> pd.DataFrame:
    """Paired tests on per-image (or per-patient mean) errors between every pair of comparators.

    ``oof`` is the long out-of-fold table from :func:`kerassev.evaluation.cv.run_cv` (``row_id``,
    ``patient_id``, ``fold``, ``comparator``, ``y_true``, ``y_pred``). ``metric`` is ``"abs_error"``
    or ``"sq_error"``. Pairs are (fold, row_id) at ``level="image"`` (more power than 5 fold
    values, but a patient's images are correlated, so p-values are optimistic) or (fold,
    patient_id) means at ``level="patient"``.
    """
    if metric not in ERROR_KINDS:
        raise ValueError(f"metric must be one of {ERROR_KINDS}, got {metric!r}")
    if level not in ("image", "patient"):
        raise ValueError(f"level must be 'image' or 'patient', got {level!r}")
    _require(oof, [comparator_col, "fold", "row_id", "patient_id", "y_true", "y_pred"], "oof")
    err = oof["y_pred"].to_numpy(float) - oof["y_true"].to_numpy(float)
    data = oof[[comparator_col, "fold", "row_id", "patient_id"]].copy()
    data[metric] = np.abs(err) if metric == "abs_error" else err**2
    note = ""
    if level == "patient":
        data = data.groupby([comparator_col, "fold", "patient_id"], sort=False, as_index=False)[
            metric
        ].agg(lambda v: v.mean(skipna=False))
        keys = ["fold", "patient_id"]
    else:
        keys = ["fold", "row_id"]
        if data["patient_id"].nunique() < data["row_id"].nunique():
            note = "per-image pairs: images of one patient are correlated, p-values are optimistic"
    series = _series_by_key(data, comparator_col, keys, metric)
    if len(series) < 2:
        raise ValueError(f"need at least 2 comparators to compare, got {list(series)}")
    return _all_pairs(series, metric, note)


def verdicts_against_control(
    tests: pd.DataFrame, control: str, candidates, *, alpha: float = 0.05, lower_is_better=True
) -> list[str]:
    """One sentence per candidate: whether it beats ``control`` in the paired tests ``tests``
    (rows of :func:`paired_tests_on_predictions` / :func:`paired_tests`, either order): better
    mean and a two-sided Wilcoxon p below ``alpha``. Says so plainly when it does not."""
    lines = []
    for cand in candidates:
        for row in tests.itertuples():
            if {row.comparator_a, row.comparator_b} != {cand, control}:
                continue
            diff = row.mean_diff if row.comparator_a == cand else -row.mean_diff
            better = diff < 0 if lower_is_better else diff > 0
            wins = better and row.wilcoxon_p < alpha
            verdict = "beats" if wins else "does NOT beat"
            lines.append(
                f"{cand} {verdict} {control} on {row.metric}: mean difference {diff:+.4g} "
                f"({cand} - {control}), paired Wilcoxon p = {row.wilcoxon_p:.3g}, t-test p = "
                f"{row.t_p:.3g}, {row.n_pairs} pairs"
            )
    return lines


def holm_adjust(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, family-wise error), same order as given:
    the k-th smallest of m p-values is multiplied by m - k + 1, then made monotone and capped at 1.
    NaNs stay NaN and do not count toward m."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if ok.size == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = p[order] * (ok.size - np.arange(ok.size))
    out[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return out
