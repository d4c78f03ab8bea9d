"""Grouped cross-validation runner that saves out-of-fold predictions and resumes per fold.

Used by paper 01 (5-fold CV, SPEC 01) and paper 03 (50 repeated ~50/50 grouped splits, SPEC 03):
the folds come from :mod:`kerassev.data.splits`; every comparator is a function
``fit_predict(train_df, test_df, fold) -> predictions for test_df``. Mean and median predictors
fitted on each training fold are added as baselines (the paper-03 "no data" intercept-only model
is the mean baseline).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.dummy import DummyRegressor

from kerassev.data.splits import assert_no_leakage, group_ids
from kerassev.stats.metrics import regression_metrics

__all__ = ["BASELINES", "OOF_COLUMNS", "baseline_name", "per_fold_metrics", "run_cv"]

log = logging.getLogger(__name__)

Comparator = Callable[[pd.DataFrame, pd.DataFrame, int], np.ndarray]
OOF_COLUMNS = ["row_id", "patient_id", "fold", "comparator", "y_true", "y_pred"]
#: Baseline comparators: the training fold's mean or median (sklearn's DummyRegressor strategies).
BASELINES = ("mean", "median")


def baseline_name(kind: str) -> str:
    """Comparator name of a baseline: ``"mean baseline"``, ``"median baseline"``."""
    return f"{kind} baseline"


def _baseline(kind: str, target_col: str) -> Comparator:
    def fit_predict(train: pd.DataFrame, test: pd.DataFrame, fold: int) -> np.ndarray:
        dummy = DummyRegressor(strategy=kind).fit(train[[target_col]], train[target_col])
        return dummy.predict(test[[target_col]]).astype(float)

    fit_predict.__name__ = f"{kind}_baseline"
    return fit_predict


def _check_folds(
    folds, n_rows: int, groups: np.ndarray, group_col: str
) -> list[tuple[np.ndarray, np.ndarray]]:
    if not isinstance(folds, Sequence) or len(folds) == 0:
        raise ValueError("folds must be a non-empty list of (train_idx, test_idx) pairs")
    out = []
    for k, fold in enumerate(folds):
        if len(fold) != 2:
            raise ValueError(f"fold {k} must be a (train_idx, test_idx) pair")
        train, test = (np.asarray(a) for a in fold)
        for label, idx in (("train", train), ("test", test)):
            if idx.ndim != 1 or len(idx) == 0:
                raise ValueError(f"fold {k}: {label} indices must be a non-empty 1-D array")
            if not np.issubdtype(idx.dtype, np.integer):
                raise ValueError(
                    f"fold {k}: {label} indices must be integer positions, got {idx.dtype}"
                )
            if idx.min() < 0 or idx.max() >= n_rows:
                raise ValueError(f"fold {k}: {label} indices outside 0..{n_rows - 1}")
            if len(np.unique(idx)) != len(idx):
                raise ValueError(f"fold {k}: duplicate {label} indices")
        if np.intersect1d(train, test).size:
            raise ValueError(f"fold {k}: some rows are in both train and test")
        assert_no_leakage(groups[train], groups[test], what=f"{group_col} (fold {k})")
        out.append((train.astype(np.int64), test.astype(np.int64)))
    return out


def _as_predictions(pred, n: int, name: str, fold: int) -> np.ndarray:
    where = f"comparator {name!r}, fold {fold}"
    try:
        arr = np.asarray(pred, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: predictions are not numeric ({err})") from err
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.shape != (n,):
        raise ValueError(
            f"{where}: predictions have shape {arr.shape}, expected ({n},) for {n} test rows"
        )
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"{where}: {int(bad.sum())} of {n} predictions are NaN/inf "
            f"(first at test positions {np.flatnonzero(bad)[:5].tolist()})"
        )
    return arr


# ----------------------------------------------------------------------------- progress file
def _read_progress(path: Path) -> pd.DataFrame:
    df = pd.read_csv(
        path,
        dtype={"row_id": str, "patient_id": str, "comparator": str},
        keep_default_na=False,
        float_precision="round_trip",
    )
    missing = [c for c in OOF_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"progress file {path} lacks column(s) {missing}; is it a run_cv file?")
    for col in ("y_true", "y_pred"):
        df[col] = pd.to_numeric(df[col], errors="raise").astype(float)
    df["fold"] = pd.to_numeric(df["fold"], errors="raise").astype(np.int64)
    return df[OOF_COLUMNS]


def _check_progress(
    done: pd.DataFrame, path: Path, test_ids: list[np.ndarray], y_by_id: pd.Series
) -> None:
    """Each saved (comparator, fold) must hold exactly the current fold's test ids and targets."""
    for (comp, k), chunk in done.groupby(["comparator", "fold"], sort=False):
        if k < 0 or k >= len(test_ids):
            raise ValueError(
                f"progress file {path} has fold {k} but only {len(test_ids)} fold(s) are given: "
                "it was made with different folds; delete it or pass the matching folds"
            )
        saved = chunk["row_id"].to_numpy(dtype=object)
        now = test_ids[k]
        if len(saved) != len(now) or set(saved.tolist()) != set(now.tolist()):
            raise ValueError(
                f"progress file {path}: fold {k} (comparator {comp!r}) has {len(saved)} test id(s) "
                f"that differ from the current fold's {len(now)}: it was made with different folds; "
                "delete it or pass the matching folds"
            )
        if not np.allclose(chunk["y_true"].to_numpy(float), y_by_id.loc[saved].to_numpy(float)):
            raise ValueError(
                f"progress file {path}: fold {k} (comparator {comp!r}) has different y_true values "
                "than the current table (a different target column or table?)"
            )


def _write_progress(df: pd.DataFrame, path: Path) -> None:
    """Replace the progress file atomically (a kill mid-write never leaves a truncated file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- runner
def run_cv(
    table: pd.DataFrame,
    comparators: dict[str, Comparator],
    *,
    folds: list[tuple[np.ndarray, np.ndarray]],
    target_col: str,
    id_col: str = "path",
    group_col: str = "patient_id",
    progress_path: str | Path | None = None,
    baselines: Sequence[str] = ("mean", "median"),
    on_fold_done: Callable[[str, int], None] | None = None,
    verbose: bool = False,
) -> pd.DataFrame:
    """Run every comparator on every fold; return long out-of-fold predictions.

    Columns: ``row_id`` (``table[id_col]`` as str), ``patient_id`` (``table[group_col]`` as str),
    ``fold``, ``comparator``, ``y_true``, ``y_pred``. Baselines (``"mean baseline"``,
    ``"median baseline"``) fitted on each training fold's targets come first.

    Resume: with ``progress_path`` each finished (comparator, fold) is saved at once and skipped on
    a rerun; a progress file made with other folds (other test ids) or targets raises ValueError.
    A comparator that raises is re-raised with a note naming it and the fold; predictions that are
    NaN/inf or of the wrong shape raise ValueError naming comparator and fold.

    ``on_fold_done(comparator, fold)`` is called once a fold's predictions are saved (e.g. to
    delete that fold's checkpoints, which a resume no longer needs).
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    for col in (target_col, id_col):
        if col not in table.columns:
            raise ValueError(f"column {col!r} not in table columns {list(table.columns)}")
    groups = group_ids(table, group_col)
    ids = table[id_col].astype(str).to_numpy(dtype=object)
    if len(set(ids.tolist())) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].head(3).tolist()
        raise ValueError(
            f"id column {id_col!r} has duplicate values, e.g. {dup}; row ids must be unique"
        )
    y = pd.to_numeric(table[target_col], errors="coerce").to_numpy(float)
    if not np.isfinite(y).all():
        bad = np.flatnonzero(~np.isfinite(y))
        raise ValueError(
            f"target column {target_col!r} has {len(bad)} NaN/inf/non-numeric value(s), "
            f"at rows {bad[:5].tolist()}"
        )
    folds = _check_folds(folds, len(table), groups, group_col)

    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; choose from {list(BASELINES)}")
    runners: dict[str, Comparator] = {baseline_name(b): _baseline(b, target_col) for b in baselines}
    for name, fn in comparators.items():
        if name in runners:
            raise ValueError(f"comparator name {name!r} clashes with a baseline; rename it")
        if not callable(fn):
            raise TypeError(f"comparator {name!r} is not callable")
        runners[name] = fn

    test_ids = [ids[test] for _, test in folds]
    done = pd.DataFrame(
        {
            c: pd.Series(dtype=t)
            for c, t in zip(OOF_COLUMNS, [str, str, np.int64, str, float, float], strict=True)
        }
    )
    path = Path(progress_path) if progress_path is not None else None
    if path is not None and path.exists():
        done = _read_progress(path)
        _check_progress(done, path, test_ids, pd.Series(y, index=ids))
    finished = set(zip(done["comparator"], done["fold"], strict=True))

    chunks = []
    for k, (train, test) in enumerate(folds):
        train_df, test_df = table.iloc[train], table.iloc[test]
        started, fold_mae = time.perf_counter(), {}
        for name, fn in runners.items():
            if (name, k) in finished:
                continue
            try:
                raw = fn(train_df, test_df, k)
            except Exception as err:
                msg = f"run_cv: comparator {name!r} raised on fold {k} of {len(folds)}"
                if path is not None:
                    msg += f"; finished folds are saved in {path} and a rerun resumes there"
                log.error("%s: %r", msg, err)
                err.add_note(msg)
                raise
            pred = _as_predictions(raw, len(test), name, k)
            chunk = pd.DataFrame(
                {
                    "row_id": ids[test],
                    "patient_id": groups[test],
                    "fold": k,
                    "comparator": name,
                    "y_true": y[test],
                    "y_pred": pred,
                }
            )
            chunks.append(chunk)
            if path is not None:
                done = pd.concat([done, chunk], ignore_index=True) if len(done) else chunk
                _write_progress(done, path)
            if on_fold_done is not None:
                on_fold_done(name, k)
            fold_mae[name] = float(np.mean(np.abs(pred - y[test])))
        if verbose and fold_mae:  # one line per fold: every comparator's held-out MAE
            maes = ", ".join(f"{name} {mae:.2f}" for name, mae in fold_mae.items())
            secs = time.perf_counter() - started
            print(f"fold {k + 1}/{len(folds)} ({len(test)} held out, {secs:.0f} s): MAE {maes}")
    if path is not None:
        result = done
    else:
        result = pd.concat(chunks, ignore_index=True) if chunks else done
    result = result[result["comparator"].isin(list(runners))]
    # order: fold, then comparator in the order given (baselines first), then test order
    order = {name: i for i, name in enumerate(runners)}
    result = result.assign(_c=result["comparator"].map(order)).sort_values(
        ["fold", "_c"], kind="stable"
    )
    return result.drop(columns="_c").reset_index(drop=True)[OOF_COLUMNS]


def per_fold_metrics(oof: pd.DataFrame, *, score_range=None) -> pd.DataFrame:
    """:func:`regression_metrics` for each (comparator, fold) of a :func:`run_cv` result.

    Columns: comparator, fold, n, mae, mse, rmse, spearman, pearson, r2, qwk, note.
    """
    missing = [c for c in ("comparator", "fold", "y_true", "y_pred") if c not in oof.columns]
    if missing:
        raise ValueError(f"oof lacks column(s) {missing}")
    rows = []
    for (comp, k), sub in oof.groupby(["comparator", "fold"], sort=False):
        m = regression_metrics(sub["y_true"], sub["y_pred"], score_range=score_range)
        rows.append({"comparator": comp, "fold": k, **m})
    out = pd.DataFrame(rows)
    order = {c: i for i, c in enumerate(dict.fromkeys(oof["comparator"]))}
    out = out.assign(_c=out["comparator"].map(order)).sort_values(["_c", "fold"], kind="stable")
    return out.drop(columns="_c").reset_index(drop=True)
