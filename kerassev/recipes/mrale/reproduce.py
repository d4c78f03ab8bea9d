"""Paper 01 end to end: SSL encoders, 5-fold grouped CV of every comparator, Table 1 with
confidence intervals and significance tests, Grad-CAM, figures and exports, in one run folder.

Call :func:`reproduce_mrale`; the CLI (``kerassev reproduce mrale``) and notebook 01 both do.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from kerassev.data.splits import grouped_stratified_kfold
from kerassev.distribute import runs_under_configured_distribution
from kerassev.evaluation.cv import per_fold_metrics, run_cv
from kerassev.explain.gradcam import overlay_grid
from kerassev.exports import ExportMetadata, check_exports, export_model
from kerassev.models.backbones import (
    RESNET50_NOTOP_FILE,
    BackboneWeightsError,
    cached_weights_file,
    can_download_weights,
)
from kerassev.plots import predicted_vs_true, save_figure
from kerassev.precision import runs_in_configured_precision
from kerassev.recipes.ssl_pretraining import network_inputs, pretrain_in_run
from kerassev.runs import RunFolder
from kerassev.stats.significance import (
    ERROR_KINDS,
    paired_tests,
    paired_tests_on_predictions,
    verdicts_against_control,
)
from kerassev.stats.tables import summary_table, to_markdown, write_table

from . import figures
from .config import COMPARATOR_LABELS, PAPER_TABLE1, MraleConfig
from .data import MraleData, midrc_data, phantom_data
from .regression import (
    MraleFolds,
    build_mrale_regressor,
    build_scratch_regressor,
    fold_model_path,
)

log = logging.getLogger(__name__)
SCORE_RANGE = (0, 24)
#: What _write_outputs writes into the run folder.
OUTPUTS = (
    "oof_predictions.csv",
    "per_fold_metrics.csv",
    "gradcam_mass.csv",
    "REPORT.md",
    "tables",
    "figures",
)
TABLE_METRICS = ("mae", "mse", "spearman", "rmse", "pearson", "r2", "qwk")
#: Table 1's metrics, each compared between every pair of comparators (the abstract's p-claims).
PAIRED_TEST_METRICS = ("mae", "mse", "spearman")


@dataclass
class MraleResult:
    run: RunFolder
    config: MraleConfig
    data_source: str
    table: pd.DataFrame  # Table-1-shaped summary (ours + labelled paper columns)
    per_fold: pd.DataFrame
    oof: pd.DataFrame
    tests: pd.DataFrame  # paired t / Wilcoxon over folds, one block per metric (MAE, MSE, Spearman)
    tests_per_image: pd.DataFrame  # paired tests of per-image absolute and squared errors
    gradcam: pd.DataFrame  # per-image CAM mass inside the opacity mask (phantoms)
    skipped: dict[str, str] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)
    ssl_health: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per SSL encoder

    @property
    def caption(self) -> str:
        return f"Data: {self.data_source}. Config: {self.config.describe()}. {self.run.describe()}."

    def compact_table(self) -> pd.DataFrame:
        """Table 1's own metrics (MAE, MSE, Spearman) with their CIs and the paper's columns;
        the full table (RMSE, Pearson, R^2, QWK too) is ``table`` / tables/table1.csv."""
        keep = [
            c
            for c in self.table.columns
            if c in ("comparator", "model", "folds", "n (pooled)")
            or c.split(" ")[0] in ("MAE", "MSE", "Spearman")
            or c.startswith("paper:")
        ]
        return self.table[keep]

    def gradcam_comparators(self) -> list[str]:
        """Comparators whose held-out Grad-CAM maps were saved."""
        files = (self.run.path / "gradcam").glob("*_fold*.npz")
        return sorted({f.stem.rsplit("_fold", 1)[0] for f in files})

    def gradcam_summary(self) -> pd.DataFrame:
        if self.gradcam.empty:
            return pd.DataFrame()
        g = self.gradcam.groupby("comparator")
        return pd.DataFrame(
            {
                "CAM mass in opacity (trained)": g["mass"].mean(),
                "CAM mass in opacity (random-init control)": g["mass_control"].mean(),
                "opacity area fraction (chance level)": g["mask_area"].mean(),
                "images scored": g["mass"].count(),
            }
        )

    def report(self) -> str:
        lines = [f"Table 1 (ours; paper figures in the 'paper:' columns). {self.caption}"]
        lines.append(to_markdown(self.compact_table().drop(columns="model")))
        if self.skipped:
            lines += [f"skipped {k}: {v}" for k, v in self.skipped.items()]
        for row in self.ssl_health.itertuples():
            lines.append(
                f"SSL encoder ({row.init} start): {row.verdict}; collapse monitor z_std_ratio "
                f"{row.z_std_ratio:.3f} at its last epoch (threshold {row.threshold:g}; ~1 healthy)"
            )
        lines += self._ssl_verdicts()
        gs = self.gradcam_summary()
        if not gs.empty:
            lines += ["", "Grad-CAM mass inside the known opacity mask (held-out phantoms):"]
            lines.append(to_markdown(gs.round(3).reset_index()))
        return "\n".join(lines)

    def _ssl_verdicts(self) -> list[str]:
        """Issue 18: does SSL beat the random-init (from-scratch) regressor, by a paired test?"""
        tests = self.tests_per_image
        if tests.empty or "resnet50_scratch" not in {*tests.comparator_a, *tests.comparator_b}:
            return ["", "SSL vs random init: not tested (no resnet50_scratch row in this run)"]
        ssl = sorted({c for c in (*tests.comparator_a, *tests.comparator_b) if c.startswith("ssl")})
        abs_err = tests[tests.metric == "abs_error"]
        return [
            "",
            "SSL regressors vs the random-init (from-scratch) regressor, paired per image:",
        ] + [f"- {line}" for line in verdicts_against_control(abs_err, "resnet50_scratch", ssl)]


def ssl_health(logs: dict[str, pd.DataFrame], threshold: float) -> pd.DataFrame:
    """Per SSL encoder, the collapse monitor at its last epoch and the verdict: "collapsed" when
    ``z_std_ratio`` is below ``threshold`` (every image mapped near one vector)."""
    rows = []
    for init, log in logs.items():
        if len(log) == 0 or "z_std_ratio" not in log:
            continue
        last = float(log["z_std_ratio"].iloc[-1])
        verdict = "collapsed" if not last >= threshold else "not collapsed"
        rows.append({"init": init, "z_std_ratio": last, "threshold": threshold, "verdict": verdict})
    return pd.DataFrame(rows, columns=["init", "z_std_ratio", "threshold", "verdict"])


def resolve_imagenet_weights(
    weights: str | None, backbone: str = "resnet50"
) -> tuple[str | None, str | None]:
    """(weights to use, reason for skipping): a given file, else the Keras-cache file
    (``$KERAS_HOME/models/`` or ``~/.keras/models/``), else a download when online; offline
    without a file, or for a backbone without ImageNet weights, the ImageNet row is skipped."""
    if backbone != "resnet50":
        return None, f"backbone {backbone} has no ImageNet weights (the paper's is resnet50)"
    if weights:
        if not Path(weights).is_file():
            return None, f"--weights file {weights} does not exist"
        return str(weights), None
    if cached_weights_file(RESNET50_NOTOP_FILE) is not None or can_download_weights():
        return "imagenet", None
    return None, (
        "no ImageNet ResNet-50 weights offline: pass --weights "
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 (see README)"
    )


@runs_in_configured_precision
@runs_under_configured_distribution
def reproduce_mrale(
    config: MraleConfig,
    out: str | Path,
    *,
    image_root: str | Path | None = None,
    labels_csv: str | Path | None = None,
    weights: str | None = None,
    resume: bool = False,
    verbose: int = 0,
    export: bool = True,
) -> MraleResult:
    """Run paper 01 on MIDRC data (``image_root`` + ``labels_csv``) or on phantoms (neither)."""
    if (image_root is None) != (labels_csv is None):
        raise ValueError(
            "give both image_root and labels_csv for MIDRC data, or neither for phantoms"
        )
    kind = f"mrale-{config.preset}"
    stored = {**dataclasses.asdict(config), "image_root": image_root, "labels_csv": labels_csv}
    if resume:
        run = RunFolder.resume(out, kind, config=stored)
    else:
        run = RunFolder.create(out, kind, config=stored, seed=config.seed)
    _seed_everything(config.seed)

    data = (
        phantom_data(config) if image_root is None else midrc_data(config, image_root, labels_csv)
    )
    inputs = network_inputs(data.images, config.image_size)
    log.info("%s; %s", data.source, config.describe())

    skipped: dict[str, str] = {}
    ssl_inits = {"ssl_imagenet": "imagenet", "ssl_scratch": "scratch"}
    logs = {}
    ssl_ready = []
    for name in config.comparators:
        if name not in ssl_inits:
            continue
        init = ssl_inits[name]
        init_weights = None
        if init == "imagenet":
            init_weights, reason = resolve_imagenet_weights(weights, config.backbone)
            if reason:
                skipped[name] = reason
                continue
        try:
            # §3.1: stage A frozen backbone, stage B top-20 layers; "init" names the start
            _, log_ = pretrain_in_run(
                config.encoder_spec(),
                data.images,
                [("stage_a", config.ssl_stage_a), ("stage_b", config.ssl_stage_b)],
                run=run,
                key=init,
                policy=config.augment_policy,
                batch_size=config.batch_size,
                seed=config.seed,
                weights=init_weights,
                verbose=verbose,
            )
            if len(log_):
                log_.insert(log_.columns.get_loc("stage") + 1, "init", init)
            logs[init] = log_
        except BackboneWeightsError as err:
            skipped[name] = str(err)
            continue
        ssl_ready.append(name)

    folds_ctx = MraleFolds(
        data=data,
        inputs=inputs,
        config=config,
        run=run,
        verbose=verbose,
        gradcam_for=(*ssl_ready, "resnet50_scratch"),
    )
    comparators = {}
    for name in ssl_ready:
        comparators[name] = folds_ctx.ssl_regressor(ssl_inits[name], name=name)
    if "resnet50_scratch" in config.comparators:
        comparators["resnet50_scratch"] = folds_ctx.resnet50_scratch()
    if config.subscore_head and ssl_ready:
        # Beyond the paper, on the best-available SSL encoder (ImageNet start when present).
        comparators["ssl_subscores"] = folds_ctx.ssl_regressor(
            ssl_inits[ssl_ready[0]], name="ssl_subscores", subscores=True
        )

    folds = grouped_stratified_kfold(
        data.table, config.n_folds, score_col="mrale", seed=config.seed
    )
    oof = run_cv(
        data.table,
        comparators,
        folds=folds,
        target_col="mrale",
        progress_path=run.path / "oof_progress.csv",
        on_fold_done=folds_ctx.fold_done,
        verbose=bool(verbose),
    )
    for name in comparators:  # folds finished by an attempt killed before it discarded them
        for fold in range(config.n_folds):
            folds_ctx.fold_done(name, fold)
    per_fold = per_fold_metrics(oof, score_range=SCORE_RANGE)
    table = summary_table(
        per_fold,
        oof,
        metrics=TABLE_METRICS,
        paper=PAPER_TABLE1,
        score_range=SCORE_RANGE,
        seed=config.seed,
    )
    tests = pd.concat(
        [paired_tests(per_fold, metric=m) for m in PAIRED_TEST_METRICS], ignore_index=True
    )
    tests_per_image = pd.concat(
        [paired_tests_on_predictions(oof, kind) for kind in ERROR_KINDS], ignore_index=True
    )
    gradcam_table = _collect_gradcam(run, data)

    result = MraleResult(
        run=run,
        config=config,
        data_source=data.source,
        table=_label_rows(table, config.backbone),
        per_fold=per_fold,
        oof=oof,
        tests=tests,
        tests_per_image=tests_per_image,
        gradcam=gradcam_table,
        skipped=skipped,
        ssl_health=ssl_health(logs, config.collapse_threshold),
    )
    if not run.stage_done("outputs"):
        run.set_aside(*OUTPUTS)  # a killed attempt's partial outputs: kept, not overwritten
        _write_outputs(result, logs, data)
        run.mark_stage_done("outputs")
    if export:
        if not run.stage_done("exports"):
            run.set_aside("exports")
            run.info["exports"] = _export_chosen(result, config, inputs)
            run.mark_stage_done("exports")
        result.exports = run.info["exports"]
    run.mark_complete(
        comparators=list(comparators), skipped=skipped, exports=result.exports, data=data.source
    )
    return result


def _seed_everything(seed: int) -> None:
    import keras

    keras.utils.set_random_seed(seed)


def _label_rows(table: pd.DataFrame, backbone: str = "resnet50") -> pd.DataFrame:
    """Adds the human-readable "model" column, naming the backbone that really ran."""
    table = table.copy()
    first = table.columns[0]
    labels = table[first].map(lambda c: COMPARATOR_LABELS.get(c, c))
    if backbone != "resnet50":  # e.g. the smoke preset's tiny CNN in the from-scratch row
        labels = labels.str.replace("ResNet-50", backbone, regex=False)
    table.insert(1, "model", labels)
    return table


def _collect_gradcam(run: RunFolder, data: MraleData) -> pd.DataFrame:
    rows = []
    for path in sorted((run.path / "gradcam").glob("*_fold*.npz")):
        name, fold = path.stem.rsplit("_fold", 1)
        z = np.load(path)
        if "mass" not in z:
            continue
        rows.append(
            pd.DataFrame(
                {
                    "comparator": name,
                    "fold": int(fold),
                    "row": z["rows"],
                    "mrale": data.targets[z["rows"]],
                    "mass": z["mass"],
                    "mass_control": z["mass_control"],
                    "mask_area": z["mask_area"],
                }
            )
        )
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def best_comparator(per_fold: pd.DataFrame, among) -> str | None:
    """The comparator in ``among`` with the lowest mean MAE over folds (None if none ran)."""
    per = per_fold[per_fold["comparator"].isin(list(among))]
    return None if per.empty else per.groupby("comparator")["mae"].mean().idxmin()


def _write_outputs(result: MraleResult, logs: dict, data: MraleData) -> None:
    run, caption = result.run, result.caption
    result.oof.to_csv(run.new_file("oof_predictions.csv"), index=False)
    result.per_fold.to_csv(run.new_file("per_fold_metrics.csv"), index=False)
    write_table(result.table, run.subdir("tables"), "table1")
    write_table(result.tests, run.subdir("tables"), "paired_tests_over_folds")
    write_table(result.tests_per_image, run.subdir("tables"), "paired_tests_per_image")
    if not result.gradcam.empty:
        result.gradcam.to_csv(run.new_file("gradcam_mass.csv"), index=False)
        write_table(result.gradcam_summary().reset_index(), run.subdir("tables"), "gradcam_mass")
    (run.new_file("REPORT.md")).write_text(result.report() + "\n")

    figs = run.subdir("figures")
    if logs:
        fig = figures.ssl_curves(logs)
        save_figure(fig, figs / "fig3_ssl_loss_hot_vs_cold.png", f"Fig. 3 reproduction. {caption}")
    models = [c for c in result.oof["comparator"].unique() if "baseline" not in c]
    panels = {c: result.oof[result.oof["comparator"] == c] for c in models}
    fig = predicted_vs_true(
        panels, ranges=dict.fromkeys(panels, SCORE_RANGE), xlabel="true mRALE (out of fold)"
    )
    save_figure(fig, figs / "predicted_vs_true.png", f"Out-of-fold predictions. {caption}")
    if not result.gradcam.empty:
        fig = figures.gradcam_mass_plot(result.gradcam)
        save_figure(fig, figs / "gradcam_mass.png", f"Grad-CAM mass vs control. {caption}")
    name = best_comparator(result.per_fold, result.gradcam_comparators())
    if name is not None:
        fig = gradcam_best_worst(result, data, name)
        label = COMPARATOR_LABELS.get(name, name)
        save_figure(fig, figs / "fig4_gradcam_best_worst.png", f"Grad-CAM, {label}. {caption}")
    plt.close("all")


def gradcam_best_worst(result: MraleResult, data: MraleData, name: str, n: int = 4):
    """Grad-CAM overlays of comparator ``name``'s best- and worst-predicted held-out images
    (the paper's Fig. 4 shows its best regressor)."""
    rows, heat = [], []
    for path in sorted((result.run.path / "gradcam").glob(f"{name}_fold*.npz")):
        z = np.load(path)
        rows.append(z["rows"])
        heat.append(z["heatmaps"].astype(np.float32))
    rows, heat = np.concatenate(rows), np.concatenate(heat)
    oof = result.oof[result.oof["comparator"] == name].set_index("row_id")
    ids = data.table["path"].astype(str).to_numpy()[rows]
    err = np.abs(oof.loc[ids, "y_pred"].to_numpy() - oof.loc[ids, "y_true"].to_numpy())
    order = np.argsort(err)
    pick = np.concatenate([order[:n], order[-n:]])
    titles = [
        f"{'best' if i < n else 'worst'}: true {oof.loc[ids[j], 'y_true']:.0f}, "
        f"pred {oof.loc[ids[j], 'y_pred']:.1f}"
        for i, j in enumerate(pick)
    ]
    return overlay_grid(data.images[rows[pick]], heat[pick], titles=titles, ncols=n)


def _export_chosen(result: MraleResult, config: MraleConfig, inputs: np.ndarray) -> dict[str, str]:
    """Export the fold-0 model of the paper comparator with the lowest mean MAE over folds
    (the sub-score model has two outputs and stays a research row)."""
    chosen = best_comparator(result.per_fold, PAPER_TABLE1)
    if chosen is None:
        return {}
    if chosen == "resnet50_scratch":
        model = build_scratch_regressor(config)
    else:
        model = build_mrale_regressor(config)
    model.load_weights(fold_model_path(result.run, chosen, 0))
    metadata = ExportMetadata(  # what `kerassev predict` needs: the pipeline's input recipe
        task="regression",
        input_size=config.image_size,
        channels=3,
        preprocessing="imagenet",
        resize_mode="crop",
        target_name="mrale",
        source=f"kerassev reproduce mrale ({config.preset}); {chosen} fold 0; run {result.run.path.name}",
    )
    paths = export_model(
        model, result.run.subdir("exports"), name=f"{chosen}_fold0", metadata=metadata
    )
    diffs = check_exports(model, paths, inputs[:4], atol=1e-3)
    note = (
        f"{chosen}, fold 0 model (trained on folds 1-{config.n_folds - 1}); input: "
        f"{config.image_size}x{config.image_size}x3, ImageNet 'caffe' preprocessing; "
        f"max abs diff on reload: {diffs}"
    )
    (result.run.path / "exports" / "README.txt").write_text(note + "\n")
    return {
        "chosen": chosen,
        "keras": str(paths.keras_file),
        "saved_model": str(paths.saved_model),
        "tflite": str(paths.tflite_file),
        "note": note,
    }
