"""Paper 03's Table 1: the rows (encoder x feature set), the linear probe over splits, the table.

:func:`evaluate_rows` runs the generic :func:`kerassev.evaluation.linear_probe.linear_probe` (OLS
over the patient-grouped splits) for every :class:`FeatureRow` and shapes the result like the
paper's Table 1: "mean ± std" over splits per target and metric, then "paper:" columns with the
paper's figures, filled only on rows with the paper's configuration (XRV feature sets, no data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kerassev.evaluation.linear_probe import (
    TABLE1_METRICS,
    ProbeResult,
    fit_ols,
    linear_probe,
    n_parameters,
)
from kerassev.models.ssl.factory import METHODS as SSL_KEYS

from .config import (
    FEATURE_SET_LABELS,
    METRIC_LABELS,
    NO_DATA,
    PAPER_PARAMS,
    PAPER_TABLE1,
    TARGET_BY_COLUMN,
)


@dataclass
class FeatureRow:
    """One row of Table 1: an encoder's feature set (features of all frontal images)."""

    encoder: str  # Encoder.key, or "-" for no data
    encoder_label: str
    feature_set: str
    features: np.ndarray  # (n_frontal, d)

    @property
    def name(self) -> str:
        return f"{self.encoder}/{self.feature_set}"


@dataclass
class CohenResults:
    table: pd.DataFrame  # Table-1-shaped, with paper columns
    numeric: pd.DataFrame  # one row per (row, target): mean/std of every metric
    probes: dict[str, ProbeResult]  # row name -> probe result
    rows: list[FeatureRow]


def no_data_row(n_images: int) -> FeatureRow:
    return FeatureRow("-", "none (intercept only)", NO_DATA, np.empty((n_images, 0)))


def evaluate_rows(
    rows: Sequence[FeatureRow],
    scored: pd.DataFrame,
    scored_pos: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    targets: Sequence[str] = ("opacity_mean", "geographic_mean"),
) -> CohenResults:
    """Linear probe of every row on the scored images; Table 1 with paper columns."""
    y = {t: scored[t].to_numpy(dtype=np.float64) for t in targets}
    ranges = {t: TARGET_BY_COLUMN[t].score_range for t in targets}
    probes = {}
    numeric = []
    for row in rows:
        feats = row.features[scored_pos]
        probe = linear_probe(feats, y, splits, score_ranges=ranges)
        probes[row.name] = probe
        summary = probe.summary()
        for t in targets:
            numeric.append(
                {
                    "encoder": row.encoder_label,
                    "features": feature_label(row.feature_set, feats.shape[1]),
                    "row": row.name,
                    "target": t,
                    "n_params": n_parameters(feats),
                    **summary.loc[t].to_dict(),
                }
            )
    numeric_df = pd.DataFrame(numeric)
    return CohenResults(table1(numeric_df, rows, targets), numeric_df, probes, list(rows))


def table1(
    numeric: pd.DataFrame, rows: Sequence[FeatureRow], targets: Sequence[str]
) -> pd.DataFrame:
    """Table 1 shape: rows = encoder x feature set; per target ``<t> r``, ``<t> R2``,
    ``<t> MAE``, ``<t> MSE`` as "mean ± std" over splits; then ``paper <t> <metric>`` columns,
    filled only where the row is the paper's configuration (XRV feature sets, no data)."""
    out = []
    for row in rows:
        sub = numeric[numeric["row"] == row.name].set_index("target")
        rec = {
            "encoder": row.encoder_label,
            "features": sub["features"].iloc[0],
            "# parameters": sub["n_params"].iloc[0],
        }
        for t in targets:
            short = TARGET_BY_COLUMN[t].short
            for m in TABLE1_METRICS:
                rec[f"{short} {METRIC_LABELS[m]}"] = _pm(
                    sub.loc[t, f"{m}_mean"], sub.loc[t, f"{m}_std"]
                )
        paper_key = row.feature_set if row.encoder in ("xrv", "-") else None
        for t in targets:
            short = TARGET_BY_COLUMN[t].short
            paper = PAPER_TABLE1.get(t, {}).get(paper_key) if paper_key else None
            for m in TABLE1_METRICS:
                rec[f"paper: {short} {METRIC_LABELS[m]}"] = _pm(*paper[m]) if paper else ""
        out.append(rec)
    return pd.DataFrame(out)


def feature_label(key: str, dim: int) -> str:
    """Table label of a feature set; the encoder-agnostic "pooled" set names its width."""
    label = FEATURE_SET_LABELS.get(key, key)
    return f"{label} ({dim}-d)" if key == "pooled" else label


def _pm(mean: float, std: float) -> str:
    if mean is None or not np.isfinite(mean):
        return "undefined"
    return f"{mean:.2f} ± {std:.2f}"


def choose_figure_row(results: CohenResults, preference: str = "auto") -> FeatureRow:
    """The row the figures show: ``preference`` ("<encoder>/<feature set>") if given, else the
    paper's choice (XRV "lung opacity" output) when present, else SimSiam, ImageNet, random."""
    by_name = {r.name: r for r in results.rows}
    if preference != "auto":
        if preference not in by_name:
            raise ValueError(f"figure_row {preference!r} not among {sorted(by_name)}")
        return by_name[preference]
    ssl_rows = [n for n in by_name if n.endswith("/pooled") and n.split("/")[0] in SSL_KEYS]
    for key in ("xrv/lung_opacity", *ssl_rows, "imagenet/pooled", "random/pooled"):
        if key in by_name:
            return by_name[key]
    return results.rows[0]


def fit_on_all_scored(row: FeatureRow, scored: pd.DataFrame, scored_pos: np.ndarray, target: str):
    """OLS on all scored images (used only to colour the t-SNE by predicted extent)."""
    return fit_ols(row.features[scored_pos], scored[target].to_numpy(dtype=np.float64))


def paper_table1() -> pd.DataFrame:
    """The paper's Table 1 as printed (rows = task x feature set), every value column 'paper'."""
    rows = []
    for column, by_set in PAPER_TABLE1.items():
        target = TARGET_BY_COLUMN[column]
        for key, metrics in by_set.items():
            row = {
                "task": target.title,
                "features": FEATURE_SET_LABELS[key],
                "# parameters": PAPER_PARAMS[key],
            }
            for m in TABLE1_METRICS:
                row[f"paper: {METRIC_LABELS[m]}"] = _pm(*metrics[m])
            rows.append(row)
    return pd.DataFrame(rows)


def ssl_vs_random_init(results: CohenResults, control: str = "random") -> list[str]:
    """Issue 18: per SSL feature set and target, whether its probe beats the random-init
    encoder's (same feature set) on per-image absolute error, paired over (split, image)."""
    from kerassev.stats.significance import paired_tests_on_predictions, verdicts_against_control

    lines = []
    for row in results.rows:
        ctrl = f"{control}/{row.feature_set}"
        if row.encoder in ("-", "xrv", "imagenet", control) or ctrl not in results.probes:
            continue
        preds = {n: results.probes[n].predictions for n in (row.name, ctrl)}
        for target in sorted(set(preds[row.name]["target"])):
            long = pd.concat(
                [
                    pd.DataFrame(
                        {
                            "comparator": n,
                            "fold": p["split"],
                            "row_id": p["row"],
                            "patient_id": p["row"],
                            "y_true": p["y_true"],
                            "y_pred": p["y_pred"],
                        }
                    )[p["target"] == target]  # fmt: skip
                    for n, p in preds.items()
                ]
            )
            tests = paired_tests_on_predictions(long, "abs_error")
            lines += [f"- {target}: {v}" for v in verdicts_against_control(tests, ctrl, [row.name])]
    return lines or [
        "- not tested: no SSL encoder and random-init control with a shared feature set"
    ]
