"""Paper 04 end to end: :func:`reproduce_covid_ssl` writes Table 2, the low-shot table and curve,
the linear-probe evidence, figures and an export of the best classifier into a run folder.

Stages (each recorded in ``run.json``, so ``resume=True`` continues an interrupted run):
``ssl_<method>/all`` pre-training on the unlabelled pool (:mod:`kerassev.recipes.ssl_pretraining`)
-> ``finetune/<row>/<pct>`` fine-tuning (:mod:`.finetune`) with per-epoch test predictions
-> tables, probe, figures, export.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from kerassev.data.splits import low_shot_subset
from kerassev.distribute import runs_under_configured_distribution
from kerassev.exports import ExportMetadata, check_exports, export_model
from kerassev.models.backbones import RESNET50_NOTOP_FILE, keras_weights_cache
from kerassev.models.ssl import backbone_of
from kerassev.plots import save_figure
from kerassev.precision import runs_in_configured_precision
from kerassev.recipes.ssl_pretraining import (
    build_ssl_encoder,
    network_inputs,
    pretrain_in_run,
)
from kerassev.runs import RunFolder
from kerassev.stats.classification import confusion
from kerassev.stats.significance import holm_adjust
from kerassev.stats.tables import to_markdown

from . import figures
from .config import LABELS, OURS, PAPER_SOURCE, RUN_KIND, CovidSSLConfig
from .data import CovidData, load_data
from .finetune import build_classifier, fine_tune
from .lr_search import choose_finetune_lr
from .probe import frozen_features, linear_probe, probe_vs_control
from .table import low_shot_table, paired_tests, table2, vs_scratch_tests

log = logging.getLogger(__name__)


@dataclass
class CovidSSLResult:
    run: RunFolder
    config: CovidSSLConfig
    table2: pd.DataFrame
    low_shot: pd.DataFrame
    probe: pd.DataFrame
    paired: pd.DataFrame
    vs_scratch: pd.DataFrame  # each pre-trained row against From Scratch, Holm-adjusted
    ssl_logs: dict[str, pd.DataFrame]
    skipped: dict[str, str]
    figures: dict[str, Path] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)
    data_description: str = ""

    def report(self) -> str:
        cols = ["method"] + [c for c in self.table2.columns if "last" in c or c == "note"]
        lines = [
            f"Paper 04 reproduction ({self.config.describe()}); {self.data_description}",
            to_markdown(self.table2[cols]),
        ]
        if len(self.vs_scratch):
            lines.append("Fine-tuned, each row against From Scratch (paired AUC bootstrap, Holm):")
            lines.append(to_markdown(self.vs_scratch.round(4)))
        if len(self.probe):
            lines.append("Linear probe (frozen encoder, logistic regression):")
            lines.append(to_markdown(self.probe))
        return "\n".join(lines)


def resolve_imagenet(config: CovidSSLConfig) -> tuple[str | None, str | None]:
    """(weights for ``build_backbone``, reason to skip). Offline, only a local file or the
    Keras cache's ResNet-50 notop file will do; no download is attempted here. A given file is
    used for any backbone it fits (tests pass a tiny CNN's weights)."""
    if config.imagenet_weights:
        if not Path(config.imagenet_weights).is_file():
            return None, f"weights file {config.imagenet_weights} does not exist"
        return str(config.imagenet_weights), None
    if config.backbone != "resnet50":
        return None, f"no ImageNet weights for backbone {config.backbone!r}"
    if any((d / RESNET50_NOTOP_FILE).is_file() for d in keras_weights_cache()):
        return "imagenet", None
    return None, f"no ImageNet ResNet-50 weights offline: pass --weights {RESNET50_NOTOP_FILE}"


def knn_split(config: CovidSSLConfig, data: CovidData) -> tuple[np.ndarray, np.ndarray]:
    """The k-NN monitor's labelled images: ``knn_images`` of the *training* split (stratified,
    seeded; never a test image) as network inputs at the view size, and their labels."""
    train = data.train_idx
    n = min(config.knn_images, len(train))
    if n < len(train):
        from sklearn.model_selection import train_test_split

        train, _ = train_test_split(
            train, train_size=n, stratify=data.labels[train], random_state=config.seed
        )
    train = np.sort(train)
    x = network_inputs(data.bank.at(config.view_size)[train], config.view_size)
    return x, data.labels[train]


def _pretrain(config, data, run, key, method, weights, verbose):
    images = data.pool.at(config.view_size)
    encoder, ssl_log = pretrain_in_run(
        config.encoder_spec(method),
        images,
        [("all", config.ssl_stage())],
        run=run,
        key=key,
        policy=config.augmentation,
        batch_size=config.ssl_batch_size,
        seed=config.seed,
        weights=weights,
        verbose=verbose,
        knn=knn_split(config, data) if config.knn_images else None,
    )
    return backbone_of(encoder), ssl_log


def _source_backbones(config, data, run, skipped, verbose):
    """Row -> (backbone to copy, or None for random init; its weights arg)."""
    imagenet, reason = resolve_imagenet(config)
    sources, logs = {}, {}
    for row in config.rows():
        if row in ("transfer", OURS) and imagenet is None:
            skipped[row] = reason
            continue
        if row == "scratch":
            sources[row] = (None, None)
        elif row == "transfer":
            sources[row] = (None, imagenet)
        else:
            method, weights = ("cross", imagenet) if row == OURS else (row, None)
            backbone, logs[row] = _pretrain(config, data, run, row, method, weights, verbose)
            sources[row] = (backbone, None)
    return sources, logs


def _fractions(config, row):
    if config.low_shot_methods is None or row in config.low_shot_methods:
        return tuple(config.low_shot)
    return (1.0,)


def _finetune_all(config, data, run, sources, x, verbose):
    labels = data.labels
    test = data.test_idx
    n_classes = len(data.classes)
    full, lowshot = {}, {}
    for row, (source, weights) in sources.items():
        row_config = config
        if config.finetune_lr_grid:  # issue 18: lr per row on a validation split, never test
            lr, searched = choose_finetune_lr(config, data, run, row, source, weights, x, verbose)
            searched.to_csv(run.subdir("lr_search") / f"{row}.csv", index=False)
            row_config = dataclasses.replace(config, finetune_lr=lr)
        for fraction in _fractions(config, row):
            subset = low_shot_subset(
                data.table,
                fraction,
                stratify_col="label_index",
                within=data.train_idx,
                seed=config.seed,
            )
            pct = f"{round(100 * fraction):g}pct"
            keras.utils.set_random_seed(config.seed)
            model = build_classifier(
                config, n_classes, source=source, weights=weights, name=f"clf_{row}"
            )
            keep = (
                run.subdir("models") / f"classifier_{row}.weights.h5" if fraction == 1.0 else None
            )
            probs = fine_tune(
                model, x[subset], labels[subset], x[test], row_config,
                run=run, stage=f"finetune/{row}/{pct}", keep_weights=keep, verbose=verbose,
            )  # fmt: skip
            lowshot[(row, fraction)] = probs
            if fraction == 1.0:
                full[row] = probs
    return full, lowshot


def _probe(config, data, run, sources, x):
    """Frozen-backbone logistic regression for every SSL row and a random-init control."""
    if not config.linear_probe:
        return pd.DataFrame()
    from kerassev.stats.classification import detection_table_row

    labels, train, test = data.labels, data.train_idx, data.test_idx
    keras.utils.set_random_seed(config.seed + 1)
    random = backbone_of(build_ssl_encoder(config.encoder_spec("simsiam")))
    candidates = {"random init (control)": random}
    candidates.update({LABELS[r]: s for r, (s, _) in sources.items() if s is not None})
    x_view = (
        np.asarray(keras.ops.image.resize(x, (config.view_size,) * 2))
        if config.view_size != config.image_size
        else x
    )
    groups = data.table["patient_id"].to_numpy()[train] if "patient_id" in data.table else None
    rows, control, p_raw, diff_lo = [], None, [], []
    for name, backbone in candidates.items():
        feats = frozen_features(backbone, x_view, bn_images=x_view[train])
        probs, c = linear_probe(
            feats[train], labels[train], feats[test], groups=groups, seed=config.seed
        )
        m = detection_table_row(
            labels[test],
            probs,
            positive=data.positive,
            n_resamples=config.bootstrap_resamples,
            seed=config.seed,
        )
        row = {
            "encoder": name,
            "AUC": round(m["AUC"], 3), "AUC 95% CI": f"[{m['AUC_lo']:.3f}, {m['AUC_hi']:.3f}]",
            "Acc": round(m["Acc"], 3), "HM": round(m["HM"], 3), "C (train CV)": c,
        }  # fmt: skip
        if control is None:
            control = probs
            row.update({"ΔAUC vs control": "-", "ΔAUC 95% CI": "-", "p (paired)": "-"})
            row["beats random init (paired p < 0.05)"] = "-"
            p_raw.append(np.nan)
            diff_lo.append(np.nan)
        else:
            t = probe_vs_control(
                labels[test], probs, control, positive=data.positive,
                n_resamples=config.bootstrap_resamples, seed=config.seed,
            )  # fmt: skip
            beats = t["diff_lo"] > 0 and t["p_value"] < 0.05
            row.update({
                "ΔAUC vs control": round(t["auc_diff"], 3),
                "ΔAUC 95% CI": f"[{t['diff_lo']:.3f}, {t['diff_hi']:.3f}]",
                "p (paired)": round(t["p_value"], 4),
                "beats random init (paired p < 0.05)": "yes" if beats else "no",
            })  # fmt: skip
            p_raw.append(t["p_value"])
            diff_lo.append(t["diff_lo"])
        rows.append(row)
    table = pd.DataFrame(rows)
    # several SSL rows against one control: Holm's step-down keeps the family-wise error at 5 %
    p_holm = holm_adjust(p_raw)
    table[f"p (Holm, {len(p_raw) - 1} rows)"] = [
        "-" if np.isnan(p) else round(p, 4) for p in p_holm
    ]
    table["beats random init (Holm p < 0.05)"] = [
        "-" if np.isnan(p) else ("yes" if p < 0.05 and d > 0 else "no")
        for p, d in zip(p_holm, diff_lo, strict=True)
    ]
    return table


@runs_in_configured_precision
@runs_under_configured_distribution
def reproduce_covid_ssl(
    config: CovidSSLConfig,
    out: str | Path,
    *,
    resume: bool = False,
    verbose: int = 0,
    export: bool = True,
    data: CovidData | None = None,
) -> CovidSSLResult:
    """The whole paper-04 run into a new (or, with ``resume``, the latest unfinished) run folder.
    ``data`` reuses an already loaded :func:`~.data.load_data` of the same configuration."""
    stored = dataclasses.asdict(config)
    run = (
        RunFolder.resume(out, RUN_KIND, config=stored)
        if resume
        else RunFolder.create(out, RUN_KIND, config=stored, seed=config.seed)
    )
    keras.utils.set_random_seed(config.seed)
    data = data if data is not None else load_data(config)
    x = network_inputs(data.bank.at(config.image_size), config.image_size)
    skipped: dict[str, str] = {}
    sources, logs = _source_backbones(config, data, run, skipped, verbose)
    full, lowshot = _finetune_all(config, data, run, sources, x, verbose)
    labels = data.labels[data.test_idx]
    t2, finals = table2(
        full, labels, data.positive, skipped=skipped, rows=config.rows(),
        n_resamples=config.bootstrap_resamples, seed=config.seed,
    )  # fmt: skip
    ls = low_shot_table(lowshot, labels, data.positive)
    paired = paired_tests(
        full, labels, data.positive, n_resamples=config.bootstrap_resamples, seed=config.seed
    )
    vs_scratch = vs_scratch_tests(
        full, labels, data.positive, n_resamples=config.bootstrap_resamples, seed=config.seed
    )
    probe = _probe(config, data, run, sources, x)
    result = CovidSSLResult(
        run, config, t2, ls, probe, paired, vs_scratch, logs, skipped,
        data_description=data.describe(),
    )  # fmt: skip
    if not run.stage_done("outputs"):
        run.set_aside("tables", "figures")
        _write_outputs(result, data, full, finals)
        run.mark_stage_done("outputs")
    result.figures = {p.stem: p for p in sorted(run.subdir("figures").glob("*.png"))}
    if export and full:
        if not run.stage_done("exports"):
            run.set_aside("exports")
            run.info["exports"] = _export_best(result, data, x, finals)
            run.mark_stage_done("exports")
        result.exports = run.info["exports"]
    run.mark_complete(rows=list(full), skipped=skipped)
    return result


def _write_outputs(result: CovidSSLResult, data: CovidData, full, finals) -> None:
    run, config = result.run, result.config
    tables = run.subdir("tables")
    base = f"Data: {result.data_description}. Configuration: {config.describe()}. Paper: {PAPER_SOURCE}."
    for name, df in (
        ("table2", result.table2),
        ("low_shot", result.low_shot),
        ("linear_probe", result.probe),
        ("paired_auc_tests", result.paired),
        ("finetune_vs_scratch", result.vs_scratch),
    ):
        if len(df):
            df.to_csv(tables / f"{name}.csv", index=False)
            (tables / f"{name}.md").write_text(f"{base}\n\n{to_markdown(df)}")
    pd.concat(
        [log.assign(method=k) for k, log in result.ssl_logs.items()] or [pd.DataFrame()]
    ).to_csv(tables / "ssl_logs.csv", index=False)
    data.excluded.to_csv(tables / "pool_excluded_test_lookalikes.csv", index=False)
    searched = sorted(run.subdir("lr_search").glob("*.csv"))
    if searched:  # the validation AUC of every lr tried per row, the chosen one marked
        df = pd.concat([pd.read_csv(f) for f in searched])
        df.to_csv(tables / "lr_search.csv", index=False)
        (tables / "lr_search.md").write_text(f"{base}\n\n{to_markdown(df)}")
    figs = run.subdir("figures")
    methods = [r if r != OURS else "cross" for r in result.ssl_logs]
    if methods:
        fig = figures.view_pairs(
            data.pool.at(config.image_size),
            list(dict.fromkeys(methods)),
            policy=config.augmentation,
            view_size=config.view_size,
            seed=config.seed,
        )
        save_figure(
            fig,
            figs / "views.png",
            f"Example view pairs ({config.augmentation} policy, {config.view_size}px) of one pool image per method; PIRL's view 2 after its pretext transform. {base}",
        )
        plt.close(fig)
        fig = figures.ssl_curves(result.ssl_logs)
        save_figure(
            fig,
            figs / "ssl_curves.png",
            f"Self-supervised loss and collapse monitor per epoch. {base}",
        )
        plt.close(fig)
    if len(result.low_shot):
        fig = figures.low_shot_curve(result.low_shot)
        save_figure(
            fig,
            figs / "fig3_low_shot.png",
            f"Fig. 3 reproduction: HM and Acc (mean over the last {config.last_epochs} fine-tuning epochs) against the share of training images. {base}",
        )
        plt.close(fig)
    if finals:
        best = max(finals, key=lambda r: finals[r]["AUC"])
        matrix = confusion(data.labels[data.test_idx], full[best][-1], len(data.classes)).to_numpy()
        fig = figures.confusion_figure(matrix, data.classes, f"{LABELS[best]} (final model)")
        save_figure(
            fig,
            figs / "fig4_confusion.png",
            f"Fig. 4 reproduction: confusion matrix of the best final model by AUC ({LABELS[best]}) on the {len(data.test_idx)} test images. {base}",
        )
        plt.close(fig)


def export_classifier(model, config, classes, out_dir, *, name: str, source: str):
    """``.keras``, SavedModel and ``.tflite`` of a fine-tuned classifier with the metadata
    ``kerassev predict`` needs (float32 whatever precision trained it)."""
    metadata = ExportMetadata(
        task="classification",
        input_size=config.image_size,
        channels=3,
        preprocessing="imagenet",
        resize_mode="crop",
        class_names=tuple(classes),
        source=source,
    )
    return export_model(model, out_dir, name=name, tflite=True, metadata=metadata)


def _export_best(result: CovidSSLResult, data: CovidData, x, finals) -> dict[str, str]:
    config = result.config
    best = max(finals, key=lambda r: finals[r]["AUC"])
    model = build_classifier(config, len(data.classes), name=f"covid_ssl_{best}")
    model.load_weights(result.run.subdir("models") / f"classifier_{best}.weights.h5")
    paths = export_classifier(
        model,
        config,
        data.classes,
        result.run.subdir("exports"),
        name=f"covid_ssl_{best}",
        source=f"kerassev reproduce covid-ssl ({config.preset}); {LABELS[best]} fine-tuned; run {result.run.path.name}",
    )
    diffs = check_exports(model, paths, x[data.test_idx[:4]], atol=1e-3)
    return {
        "row": best,
        "keras": str(paths.keras_file),
        "saved_model": str(paths.saved_model),
        "tflite": str(paths.tflite_file),
        "max_abs_diff": str(diffs),
    }
