"""Tables shaped like a paper's results table, with the paper's own figures in labelled columns.

Conventions (docs/architecture.md): paper figures are targets, printed in columns labelled
"paper: ...", never as ours. SPEC 01 Table 1 (header swap fixed): MAE, MSE, Spearman rho each as
mean with 95% CI; we give a t-interval over folds and a bootstrap interval over pooled predictions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kerassev.stats.intervals import bootstrap_interval, t_interval
from kerassev.stats.metrics import METRIC_NAMES

__all__ = ["DISPLAY_NAMES", "summary_table", "to_markdown", "write_table"]

DISPLAY_NAMES = {
    "mae": "MAE",
    "mse": "MSE",
    "rmse": "RMSE",
    "spearman": "Spearman rho",
    "pearson": "Pearson r",
    "r2": "R^2",
    "qwk": "QWK",
}


def _fmt(value, digits: int) -> str:
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return f"{float(value):.{digits}f}"


def _paper_lookup(paper: dict | None, metrics) -> tuple[dict, list[str]]:
    """Normalise ``paper`` to {comparator: {metric_key: value}}; metric keys may be given as
    ``"mae"`` or ``"MAE"`` / ``"Spearman rho"``. Returns it and the metric keys in column order."""
    if not paper:
        return {}, []
    by_display = {v.lower(): k for k, v in DISPLAY_NAMES.items()}
    norm, keys = {}, list(metrics)
    for comp, figures in paper.items():
        if not isinstance(figures, dict):
            raise ValueError(f"paper[{comp!r}] must be a dict of metric -> figure, got {figures!r}")
        norm[comp] = {}
        for m, v in figures.items():
            key = by_display.get(str(m).lower(), str(m).lower())
            norm[comp][key] = v
            if key not in keys:
                keys.append(key)
    used = [k for k in keys if any(k in f for f in norm.values())]
    return norm, used


def summary_table(
    per_fold: pd.DataFrame,
    oof: pd.DataFrame,
    *,
    metrics=("mae", "mse", "spearman"),
    paper: dict[str, dict[str, str | float]] | None = None,
    score_range=None,
    confidence: float = 0.95,
    n_boot: int = 2000,
    cluster: bool = True,
    seed: int = 0,
    digits: int = 2,
) -> pd.DataFrame:
    """One row per comparator (baselines included), shaped like the paper's Table 1.

    For each metric: ``"<M> mean (95% t-CI over folds)"`` from ``per_fold`` and
    ``"<M> pooled (95% ... bootstrap CI)"`` from the pooled ``oof`` predictions (a patient-cluster
    bootstrap when ``cluster`` and ``oof`` has ``patient_id``). Then ``"paper: <M>"`` columns filled
    from ``paper`` (``{comparator: {metric: figure}}``), blank where the paper has no figure; a
    comparator only the paper has gets a row with our columns blank.
    """
    for name, df, cols in (
        ("per_fold", per_fold, ["comparator", "fold"]),
        ("oof", oof, ["comparator", "y_true", "y_pred"]),
    ):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"{name} lacks column(s) {missing}")
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; expected some of {METRIC_NAMES}")
    missing = [m for m in metrics if m not in per_fold.columns]
    if missing:
        raise ValueError(f"per_fold lacks metric column(s) {missing}")
    use_groups = cluster and "patient_id" in oof.columns
    pct = f"{round(confidence * 100):g}%"
    boot_label = "patient-bootstrap" if use_groups else "bootstrap"
    paper_norm, paper_keys = _paper_lookup(paper, metrics)

    comparators = list(dict.fromkeys(per_fold["comparator"].tolist() + oof["comparator"].tolist()))
    rows = []
    for comp in comparators + [c for c in paper_norm if c not in comparators]:
        row = {"comparator": comp}
        folds = per_fold[per_fold["comparator"] == comp]
        preds = oof[oof["comparator"] == comp]
        row["folds"] = str(folds["fold"].nunique()) if len(folds) else ""
        row["n (pooled)"] = str(len(preds)) if len(preds) else ""
        for m in metrics:
            name = DISPLAY_NAMES[m]
            fold_col = f"{name} mean ({pct} t-CI over folds)"
            pool_col = f"{name} pooled ({pct} {boot_label} CI)"
            row[fold_col] = (
                t_interval(folds[m].to_numpy(float), confidence).format(digits)
                if len(folds)
                else ""
            )
            if len(preds):
                iv = bootstrap_interval(
                    preds["y_true"].to_numpy(float),
                    preds["y_pred"].to_numpy(float),
                    m,
                    groups=preds["patient_id"].to_numpy() if use_groups else None,
                    n_boot=n_boot,
                    confidence=confidence,
                    seed=seed,
                    score_range=score_range,
                )
                row[pool_col] = iv.format(digits)
            else:
                row[pool_col] = ""
        for key in paper_keys:
            label = f"paper: {DISPLAY_NAMES.get(key, key)}"
            row[label] = _fmt(paper_norm.get(comp, {}).get(key), digits)
        rows.append(row)
    return pd.DataFrame(rows).fillna("")


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (columns and values as strings, NaN blank)."""
    header = [_cell(c) for c in df.columns]
    body = [[_cell(v) for v in row] for row in df.itertuples(index=False, name=None)]
    widths = [max([len(h), 3] + [len(r[i]) for r in body]) for i, h in enumerate(header)]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(header), "| " + " | ".join("-" * w for w in widths) + " |"]
    out += [line(r) for r in body]
    return "\n".join(out) + "\n"


def write_table(
    df: pd.DataFrame, out_dir: str | Path, stem: str, *, overwrite: bool = False
) -> dict[str, Path]:
    """Write ``<out_dir>/<stem>.csv`` and ``<stem>.md``; refuse to overwrite unless ``overwrite``.

    Raises ``FileExistsError`` naming the existing file before writing anything.
    """
    out_dir = Path(out_dir)
    paths = {"csv": out_dir / f"{stem}.csv", "md": out_dir / f"{stem}.md"}
    if not overwrite:
        for path in paths.values():
            if path.exists():
                raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    out_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(paths["csv"], index=False)
    paths["md"].write_text(to_markdown(df), encoding="utf-8")
    return paths
