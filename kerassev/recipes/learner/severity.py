"""Severity on real LUS video: the TSM encoder + health-score head of Algorithm 1 regressing the
Lung Severity Score (0-3) of the scored POCUS videos, patient-grouped K-fold CV (issue 20).

Every comparator predicts each held-out video's score (one uniform clip a video, as pre-training
reads it): one row per pre-training loss (MSE, MSE+CL, MSE+wCL; the head's output, trained with
the contrastive term alongside as in Algorithm 1), the same trained encoder read out by ridge
regression on its frozen embeddings (the control's readout, so encoder and readout are not
confounded), a random-init control (the same untrained encoder + ridge, fitted on the training
fold) and the training fold's mean (``run_cv``'s mean baseline). Per-video Spearman, MAE and quadratic-weighted kappa
(rounded predictions, :func:`kerassev.stats.metrics.qwk`) with patient-bootstrap CIs
(:func:`kerassev.stats.tables.summary_table`), and paired tests on per-video and per-patient errors.

Resumable: ``run_cv`` saves each finished (comparator, fold) and every pre-training is a
``fit_stage``. The fold-0 model of the row with the lowest MAE is exported (``.keras`` +
SavedModel with video metadata), so ``kerassev predict`` applies it to new videos; fold 0's test
videos are patients it never trained on (listed beside the export).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeCV

from kerassev.data.splits import grouped_stratified_kfold
from kerassev.evaluation.cv import baseline_name, per_fold_metrics, run_cv
from kerassev.exports import ExportMetadata, check_exports, export_model
from kerassev.runs import RunFolder
from kerassev.stats.significance import ERROR_KINDS, paired_tests_on_predictions
from kerassev.stats.tables import summary_table

from .config import ROWS, LearnerConfig
from .data import ClipData
from .pretrain import build_pretrainer, embed, pretrain_model

SCORE_RANGE = (0.0, 3.0)
TARGET = "Lung Severity Score"
METRICS = ("spearman", "mae", "qwk")
RANDOM_INIT = "random-init TSM encoder + ridge (control)"
MEAN = baseline_name("mean")
EXPORT_FITS = ("fold0", "all")


@dataclass
class SeverityResult:
    table: pd.DataFrame  # one row per comparator: metrics with CIs
    per_fold: pd.DataFrame
    oof: pd.DataFrame  # out-of-fold predictions, one row per (comparator, video)
    tests: pd.DataFrame  # paired tests on per-video errors between every two rows
    source: str
    exports: dict[str, str] = field(default_factory=dict)


def scored(data: ClipData) -> ClipData:
    """The videos with a severity score, as their own ClipData (positions 0..n-1)."""
    keep = data.table["hs"].notna().to_numpy()
    table = data.table[keep].reset_index(drop=True)
    return ClipData(
        data.clips[keep], table, f"{data.source}; {int(keep.sum())} scored", data.hs_name,
        data.higher_is_better, data.label_mode, data.label_threshold,
    )  # fmt: skip


def severity_folds(data: ClipData, config: LearnerConfig):
    return grouped_stratified_kfold(
        data.table, config.severity_folds, score_col="hs", seed=config.seed
    )


def ridge_name(row: str) -> str:
    return f"{ROWS[row][0]} encoder + ridge"


def fit_ridge(emb_train: np.ndarray, y_train) -> RidgeCV:
    """Ridge on frozen embeddings, alpha by leave-one-out on the training videos only: the
    readout of the control, of the "encoder + ridge" rows and of a ridge export."""
    return RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(emb_train, np.asarray(y_train, float))


def _ridge(emb: np.ndarray, train_df: pd.DataFrame, test_df: pd.DataFrame) -> np.ndarray:
    tr, te = train_df.index.to_numpy(), test_df.index.to_numpy()
    return fit_ridge(emb[tr], train_df["hs"]).predict(emb[te])


class _Trained:
    """One row's fold models (a finished ``fit_stage`` reloads, never retrains), read out by
    its own head or by ridge on its frozen embeddings."""

    def __init__(self, row: str, data: ClipData, config, run: RunFolder, verbose: int):
        self.row, self.data, self.config, self.run, self.verbose = row, data, config, run, verbose
        self.emb: dict[int, np.ndarray] = {}

    def _model(self, train_df: pd.DataFrame, fold: int):
        return pretrain_model(
            self.row, self.data, train_df.index.to_numpy(), self.config, self.run,
            stage_prefix=f"severity/fold{fold}", verbose=self.verbose,
        )  # fmt: skip

    def head(self, train_df: pd.DataFrame, test_df: pd.DataFrame, fold: int) -> np.ndarray:
        model = self._model(train_df, fold)
        self.emb[fold] = embed(model.encoder, self.data)
        return model.predict_hs(self.data.inputs(test_df.index.to_numpy()))

    def ridge(self, train_df: pd.DataFrame, test_df: pd.DataFrame, fold: int) -> np.ndarray:
        if fold not in self.emb:  # the head's row was finished by an earlier (resumed) run
            self.emb[fold] = embed(self._model(train_df, fold).encoder, self.data)
        return _ridge(self.emb.pop(fold), train_df, test_df)


def _random_init(data: ClipData, config: LearnerConfig):
    """Frozen untrained encoder -> ridge on the training fold: what the architecture gives
    before any training (the control every trained row must beat)."""
    cache: dict[str, np.ndarray] = {}

    def fit_predict(train_df: pd.DataFrame, test_df: pd.DataFrame, fold: int) -> np.ndarray:
        if "emb" not in cache:
            keras.utils.set_random_seed(config.seed)
            cache["emb"] = embed(build_pretrainer(config.severity_rows[0], config).encoder, data)
        return _ridge(cache["emb"], train_df, test_df)

    return fit_predict


def run_severity(
    data: ClipData, config: LearnerConfig, run: RunFolder, *, verbose: int = 0
) -> SeverityResult:
    """Cross-validate every severity row on the scored videos of ``data``; export the best."""
    if config.severity_export_fit not in EXPORT_FITS:
        raise ValueError(
            f"severity_export_fit must be one of {EXPORT_FITS}, got {config.severity_export_fit!r}"
        )
    data = scored(data)
    folds = severity_folds(data, config)
    comparators = {}
    for r in config.severity_rows:
        trained = _Trained(r, data, config, run, verbose)
        comparators[ROWS[r][0]] = trained.head
        comparators[ridge_name(r)] = trained.ridge
    comparators[RANDOM_INIT] = _random_init(data, config)
    print(f"severity: {len(data.table)} scored videos, {len(folds)} patient-grouped folds")
    oof = run_cv(
        data.table, comparators, folds=folds, target_col="hs", baselines=("mean",),
        progress_path=run.path / "severity_oof_progress.csv", verbose=True,
    )  # fmt: skip
    per_fold = per_fold_metrics(oof, score_range=SCORE_RANGE)
    for k, sub in per_fold.groupby("fold"):  # one summary line a fold
        cells = "; ".join(
            f"{r.comparator} Spearman {r.spearman:.3f} MAE {r.mae:.3f} QWK {r.qwk:.3f}"
            for r in sub.itertuples()
        )
        print(f"severity fold {k + 1}/{len(folds)} ({sub['n'].iloc[0]} videos): {cells}")
    table = summary_table(
        per_fold, oof, metrics=METRICS, score_range=SCORE_RANGE,
        n_boot=config.n_boot, seed=config.seed, digits=3,
    )  # fmt: skip
    # per video (more pairs; a patient's videos are correlated) and per patient-mean error
    tests = pd.concat(
        [
            paired_tests_on_predictions(oof, kind, level=level).assign(level=level)
            for level in ("image", "patient")
            for kind in ERROR_KINDS
        ],
        ignore_index=True,
    ).replace({"level": {"image": "video"}})
    result = SeverityResult(table, per_fold, oof, tests, data.source)
    if config.export:
        if not run.stage_done("severity/export"):
            run.set_aside("exports")
            run.info["severity_export"] = export_severity(result, data, folds, config, run)
            run.mark_stage_done("severity/export")
        result.exports = run.info["severity_export"]
    return result


def best_row(per_fold: pd.DataFrame, config: LearnerConfig) -> tuple[str, str]:
    """The trained row and its readout (``"head"`` or ``"ridge"``) with the lowest mean MAE over
    folds; the controls are never exported."""
    names = {ROWS[r][0]: (r, "head") for r in config.severity_rows}
    names.update({ridge_name(r): (r, "ridge") for r in config.severity_rows})
    mae = per_fold[per_fold["comparator"].isin(list(names))].groupby("comparator")["mae"].mean()
    return names[mae.idxmin()]


def ridge_scoring_model(encoder, emb_train: np.ndarray, y_train) -> keras.Model:
    """Clip -> frozen ``encoder`` -> the ridge readout (:func:`fit_ridge` on ``emb_train``) as a
    float32 Dense layer, so the exported model is one Keras graph like the head's."""
    ridge = fit_ridge(emb_train, y_train)
    clip = keras.Input(encoder.input_shape[1:], name="clip")
    dense = keras.layers.Dense(1, dtype="float32", name="severity")
    out = dense(keras.ops.cast(encoder(clip), "float32"))
    dense.set_weights(
        [ridge.coef_.reshape(-1, 1).astype("float32"), np.array([ridge.intercept_], "float32")]
    )
    return keras.Model(clip, out, name=f"{encoder.name}_ridge_severity")


def export_severity(
    result: SeverityResult, data: ClipData, folds, config: LearnerConfig, run: RunFolder
) -> dict[str, str]:
    """Export the best row's fold-0 model (loaded from its finished stage, not retrained), or
    with ``severity_export_fit="all"`` the same row pre-trained on every scored video; a ridge
    readout is refitted on the same training videos' embeddings."""
    row, readout = best_row(result.per_fold, config)
    if config.severity_export_fit == "all":
        train, test, prefix = np.arange(len(data.table)), np.arange(0), "severity/all"
        trained_on = f"all {len(train)} scored videos"
    else:
        (train, test), prefix = folds[0], "severity/fold0"
        trained_on = f"fold 0 of {len(folds)} (trained on folds 1-{len(folds) - 1})"
    pretrained = pretrain_model(row, data, train, config, run, stage_prefix=prefix)
    if readout == "head":
        model, label = pretrained.scoring_model(), ROWS[row][0]
    else:
        emb = embed(pretrained.encoder, data)[train]
        model = ridge_scoring_model(pretrained.encoder, emb, data.table["hs"].to_numpy()[train])
        label = ridge_name(row)
    metadata = ExportMetadata(
        task="regression",
        input_size=config.frame_size,
        channels=1,
        preprocessing="unit",  # grey frames in [0, 1], as pre-training read them
        input_kind="video",
        frames_per_clip=config.n_frames,
        frame_sampling="uniform",  # one clip a video (ClipReader(mode="uniform"), data.py)
        target_name=TARGET,
        target_range=SCORE_RANGE,
        source=(
            f"kerassev reproduce learner ({config.preset}); severity {label}, "
            f"{trained_on}; run {run.path.name}"
        ),
    )
    out = run.subdir("exports")
    paths = export_model(model, out, name="lus_severity", tflite=False, metadata=metadata)
    diffs = check_exports(model, paths, data.inputs(train[:2]), atol=1e-3)
    held_out = data.table.iloc[test][["path", "patient_id", "hs"]].rename(columns={"hs": TARGET})
    held_out.to_csv(out / "held_out_videos.csv", index=False)
    note = (
        f"{label} severity model, {trained_on}; input: "
        f"{config.n_frames} uniform grey frames x {config.frame_size}px in [0, 1]; output: "
        f"{TARGET} (0-3); held_out_videos.csv: the patients it never trained on "
        f"({len(held_out)} videos); "
        f"max abs diff on reload: {diffs}"
    )
    (out / "README.txt").write_text(note + "\n")
    return {
        "row": row,
        "readout": readout,
        "keras": str(paths.keras_file),
        "saved_model": str(paths.saved_model),
        "held_out": str(out / "held_out_videos.csv"),
        "note": note,
    }
