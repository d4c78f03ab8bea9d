"""Paper 05 end to end: train the affinity model (Algorithm 1) on CT phantoms + real lesion slices,
evaluate classification (Table 5) and segmentation AP (Table 4), draw X2 after epoch 1 and the
last epoch (Fig. 3), fine-tune on a 2-class set (§4.4, iCTCF) and sweep A (Table 5).

Stages (each resumable with ``--resume``; results are never overwritten): ``train``
(``training.fit_stage`` with the :class:`DetectionWeightCopy` callback and the epoch-1 X2
snapshot), ``evaluate``, ``generalise`` (fine-tuning stage ``generalise_finetune``), one
``sweep_A<A>`` per swept A and ``sweep`` (the table).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from kerassev.distribute import runs_under_configured_distribution
from kerassev.models.detection.affinity_branches import DetectionWeightCopy
from kerassev.models.detection.affinity_model import AffinityMaskRCNN
from kerassev.plots import save_figure
from kerassev.precision import runs_in_configured_precision
from kerassev.recipes.ct_lesions.config import adam
from kerassev.recipes.ct_lesions.data import letterbox
from kerassev.recipes.ct_lesions.export import export_segmenter
from kerassev.runs import RunFolder
from kerassev.stats.tables import to_markdown
from kerassev.training import discard_stage_checkpoints, fit_stage

from .config import CLASS_NAMES, PAPER_SOURCE, RUN_KIND, CtAffinityConfig
from .data import AffinityData, generalisation_sets, load_data, train_labels, training_items
from .evaluate import (
    ap_rows,
    binary_table,
    class_probs,
    classification_table,
    confusion_table,
    heatmap_indices,
    predict,
    sweep_row,
    x2_of,
)
from .figures import shared_scale, x2_figure

OUTPUTS = ("classification_table.csv", "classification_table.md", "confusion_matrix.csv",
           "confusion_matrix.md", "ap_table.csv", "ap_table.md", "predictions.csv",
           "per_slice_phantoms.csv", "per_slice_lesions.csv", "x2_last.npz", "x2_epoch1.png",
           "x2_epoch1.txt", "x2_last.png", "x2_last.txt", "sweep_main_row.json",
           "export")  # fmt: skip
MAIN_ROW = "sweep_main_row.json"  # the main model's A-sweep row (reused when the sweep matches it)


def build_model(config: CtAffinityConfig, data: AffinityData, affinities: int | None = None):
    return AffinityMaskRCNN(
        config.model_config(mean=data.mean, std=data.std), config.affinity_config(affinities)
    )


def _compile(config: CtAffinityConfig):
    def compile_fn(model):
        # Paper: Adam, fixed lr 1e-5, weight decay 1e-3; "coupled" is the author's torch Adam
        # (L2 added to the gradient), "decoupled" Keras' AdamW-style weight_decay.
        model.compile(
            optimizer=adam(config.learning_rate, config.weight_decay, config.weight_decay_kind)
        )

    return compile_fn


class X2Snapshot(keras.callbacks.Callback):
    """Save X2 of fixed images after the first epoch (Fig. 3 "after epoch 1"), once."""

    def __init__(self, images: np.ndarray, path: Path):
        super().__init__()
        self.images, self.path = images, Path(path)

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0 and not self.path.exists():
            partial = self.path.with_name("partial-" + self.path.name)
            with open(partial, "wb") as f:
                np.savez(f, x2=x2_of(self.model, self.images))
            partial.replace(self.path)


def _train(model, items, config, run, stage, epochs, *, callbacks=(), verbose=0, seed=0,
           keep_optimiser=False):  # fmt: skip
    """One resumable ``fit_stage``; ``keep_optimiser``: continue a compiled model's optimiser
    (and its traced train step) instead of compiling afresh."""
    from .data import training_dataset

    keep = keep_optimiser and getattr(model, "optimizer", None) is not None
    return fit_stage(
        model,
        training_dataset(items, config, seed=seed).repeat(),
        run=run,
        stage=stage,
        epochs=epochs,
        compile_fn=None if keep else _compile(config),
        steps_per_epoch=max(1, len(items) // config.batch_size),
        extra_callbacks=[DetectionWeightCopy(frequency=config.copy_frequency), *callbacks],
        verbose=verbose,
    )


def _write(run: RunFolder, name: str, table: pd.DataFrame, caption: str) -> None:
    table.to_csv(run.new_file(f"{name}.csv"), index=False)
    run.new_file(f"{name}.md").write_text(caption + "\n\n" + to_markdown(table) + "\n")


def _evaluate_classification(model, data: AffinityData, config: CtAffinityConfig):
    """``(table, phantom AP rows or None, per-slice frame, probs)`` on the classification test set."""
    if data.covidx:  # streamed: 21,191 slices do not fit in memory; no lesion masks, no AP
        images = (c.image() for c in data.covidx_test)
        probs = class_probs(model, images, config.image_size)
        ap, per_slice = None, pd.DataFrame()
    else:
        preds, probs = predict(model, data.test, config.image_size)
        ap, per_slice = ap_rows(data.test, preds, config, "CT phantoms (test)")
    labels = train_labels(data)
    table = classification_table(data.test_labels, probs, labels, seed=config.seed)
    return table, ap, per_slice, probs


def _heat_examples(data: AffinityData, config: CtAffinityConfig):
    """``(images (K, S, S, 1), titles)``: the first test images of each class, for X2."""
    idx = heatmap_indices(data.test_labels, config.heatmap_images)
    if data.covidx:
        picks = [data.covidx_test[i] for i in idx]
        images = [letterbox(c.image(), config.image_size) for c in picks]
        names = [Path(c.filename).stem for c in picks]
    else:
        images = [data.test[i].image for i in idx]
        names = [Path(data.test[i].path).stem for i in idx]
    titles = [f"{CLASS_NAMES[data.test_labels[i]]}: {n}" for i, n in zip(idx, names, strict=True)]
    return np.stack(images)[..., None].astype(np.float32), titles


def _segm_summary(ap, ap_real) -> tuple[float | None, str]:
    """The pooled segm AP the sweep reports: phantoms when scored, else the real slices."""
    for table, label in ((ap, "phantoms"), (ap_real, "real ct_lesions slices")):
        if table is not None and "AP@[.5:.95]" in table and table["AP@[.5:.95]"].notna().any():
            return float(table["AP@[.5:.95]"].iloc[0]), label
    return None, "none"


def _lesion_ap(model, data: AffinityData, config: CtAffinityConfig):
    if not data.lesion_test:
        skipped = pd.DataFrame([{"data": "real ct_lesions slices (test)",
                                 "evaluation": f"skipped: {data.lesion_note}"}])  # fmt: skip
        return skipped, pd.DataFrame()
    preds, _ = predict(model, data.lesion_test, config.image_size)
    return ap_rows(data.lesion_test, preds, config, "real ct_lesions slices (test; no image class)")


def _control_sentence(table: pd.DataFrame) -> str:
    f1 = table.set_index("metric").loc["F1 (weighted)"]
    verdict = "beats" if f1["beats control"] == "yes" else "does NOT beat"
    return (
        f"Weighted F1 {f1['estimate']:.3f} [{f1['95% CI lo']:.3f}, {f1['95% CI hi']:.3f}] "
        f"{verdict} the majority-class control ({f1['majority-class control']:.3f})."
    )


@runs_in_configured_precision
@runs_under_configured_distribution
def reproduce(
    config: CtAffinityConfig, out: str | Path, *, resume: bool = False, verbose: int = 0
) -> dict:
    """Run (or resume) the whole protocol into a run folder; returns tables, figures, captions."""
    keras.utils.set_random_seed(config.seed)
    data = load_data(config)
    model = build_model(config, data)  # before the run folder: a bad config leaves none
    if resume:
        run = RunFolder.resume(out, RUN_KIND, config=config)
    else:
        run = RunFolder.create(out, RUN_KIND, config=config, seed=config.seed)
    items = training_items(data)
    heat_images, heat_titles = _heat_examples(data, config)
    log = _train(
        model, items, config, run, "train", config.epochs, verbose=verbose, seed=config.seed,
        callbacks=[X2Snapshot(heat_images, run.path / "x2_epoch1.npz")],
    )  # fmt: skip
    base = f"{config.describe()}. Data: {data.describe()}. {run.describe()}."
    paper_note = f" The paper columns are {PAPER_SOURCE}."
    if not run.stage_done("evaluate"):
        started = time.perf_counter()
        run.set_aside(*OUTPUTS)
        table, ap, per_phantom, probs = _evaluate_classification(model, data, config)
        ap_real, per_real = _lesion_ap(model, data, config)
        what = "the COVIDx CT-1 test slices" if data.covidx else "the test phantoms"
        caption = (
            f"Classification of {what} (COVID / CP / Normal; sensitivity per class, "
            f"TNR for Normal, weighted F1; 95 % Wilson / bootstrap CIs). {_control_sentence(table)} "
            + base
            + paper_note
        )
        _write(run, "classification_table", table, caption)
        _write(run, "confusion_matrix", confusion_table(data.test_labels, probs),
               f"Confusion matrix (rows true, columns predicted), {what}. " + base)  # fmt: skip
        ap_all = pd.concat([t for t in (ap, ap_real) if t is not None], ignore_index=True)
        _write(
            run, "ap_table", ap_all,
            "Segmentation AP (COCO, one 'lesion' class) of the same model on the test phantoms "
            "(when they are the classification data) and on the real ct_lesions test slices (these have no COVID / CP / Normal label: "
            "segmentation only); per-slice mean uses the paper's negative-image rule. "
            + base + paper_note,
        )  # fmt: skip
        frame = pd.DataFrame(probs, columns=[f"p_{n}" for n in CLASS_NAMES])
        frame.insert(0, "label", [CLASS_NAMES[i] for i in data.test_labels])
        files = [c.path for c in data.covidx_test] if data.covidx else [s.path for s in data.test]
        frame.insert(0, "file", files)
        frame.to_csv(run.new_file("predictions.csv"), index=False)
        per_phantom.to_csv(run.new_file("per_slice_phantoms.csv"), index=False)
        per_real.to_csv(run.new_file("per_slice_lesions.csv"), index=False)
        with open(run.new_file("x2_last.npz"), "wb") as f:
            np.savez(f, x2=x2_of(model, heat_images))
        _x2_figures(run, heat_titles, base, config)
        # the evaluated model, for `kerassev segment`: masks, lesion areas and class probabilities
        export_segmenter(
            model, run.subdir("export"), class_names=["lesion"], name="affinity",
            description=f"kerassev reproduce affinity; {base}",
            image_class_names=CLASS_NAMES,
        )  # fmt: skip
        segm = _segm_summary(ap, ap_real)
        row = sweep_row(config.affinities, config.epochs, table, *segm, model.count_params())
        run.new_file(MAIN_ROW).write_text(json.dumps(row))
        run.mark_stage_done("evaluate", seconds=time.perf_counter() - started)

    if config.generalise_epochs > 0 and not run.stage_done("generalise"):
        _generalise(model, config, run, base, verbose)
    if config.sweep and not run.stage_done("sweep"):
        _sweep(config, data, run, base + paper_note, verbose)

    table = pd.read_csv(run.path / "classification_table.csv")
    f1 = float(table.loc[table["metric"] == "F1 (weighted)", "estimate"].iloc[0])
    run.mark_complete(f1_weighted=f1)
    return result_of(run, log)


def _x2_figures(run, titles, base, config):
    first_path = run.path / "x2_epoch1.npz"
    last = np.load(run.path / "x2_last.npz")["x2"]
    first = np.load(first_path)["x2"] if first_path.is_file() else None
    vmax = shared_scale(last, *([first] if first is not None else []))
    for name, x2, when in (("x2_epoch1", first, "after epoch 1"),
                           ("x2_last", last, f"after epoch {config.epochs} (last)")):  # fmt: skip
        if x2 is None:  # a run resumed past epoch 1 before the snapshot existed
            run.new_file(f"{name}.txt").write_text("X2 after epoch 1 was not recorded.\n")
            continue
        fig = x2_figure(x2, titles, vmax=vmax, heading=f"X2 = W1^T X1 {when}")
        save_figure(
            fig, run.path / f"{name}.png",
            f"X2 (A x C) {when} for the first test image(s) of each class; colour scale shared by both "
            f"figures (|X2| 99th percentile {vmax:.3g}). " + base,
        )  # fmt: skip
        plt.close(fig)  # saved; the notebook shows the PNG, not a second inline copy


def _generalise(model, config: CtAffinityConfig, run: RunFolder, base: str, verbose: int):
    """§4.4: fine-tune the trained model on Negative vs COVID-19 (no change to the model)."""
    started = time.perf_counter()
    run.set_aside("generalisation_table.csv", "generalisation_table.md")
    train, test, labels = generalisation_sets(config)
    train_labels = [int(s.kind == "covid") for s in train]
    before_file = run.path / "generalise_before.npy"
    if not before_file.is_file():  # the trained model's scores before fine-tuning
        np.save(before_file, predict(model, test, config.image_size)[1])
    before = binary_table(labels, np.load(before_file), train_labels, seed=config.seed)
    # Negative is trained as the Normal class: the 3-logit head stays as it is.
    # Fine-tuning continues the training's Adam (same settings; saves a second trace) when the
    # model is still compiled, else starts a fresh one (a resumed run).
    _train(model, train, config, run, "generalise_finetune", config.generalise_epochs,
           verbose=verbose, seed=config.seed + 1, keep_optimiser=True)  # fmt: skip
    after = binary_table(labels, predict(model, test, config.image_size)[1], train_labels,
                         seed=config.seed)  # fmt: skip
    after.insert(1, "before fine-tuning", before["estimate"].to_numpy())
    n_pos = int(labels.sum())
    caption = (
        f"Generalisation (paper §4.4, iCTCF Negative vs COVID-19, here new phantoms: "
        f"{len(train)} training, {len(test)} test slices, {n_pos} COVID): the trained model "
        f"fine-tuned {config.generalise_epochs} epochs (paper: 20), Negative scored by the "
        f"Normal logit. 'beats control': CI above the majority-class predictor. " + base
    )
    _write(run, "generalisation_table", after, caption)
    run.mark_stage_done("generalise", seconds=time.perf_counter() - started)


def _sweep(config: CtAffinityConfig, data: AffinityData, run: RunFolder, caption: str, verbose):
    """Table 5's A sweep: each A trained as the main model for ``sweep_epochs``."""
    started = time.perf_counter()
    rows = []
    for a in config.sweep:
        main = run.path / MAIN_ROW
        done = run.path / "sweep" / f"A{a}.json"
        if a == config.affinities and config.sweep_epochs == config.epochs and main.is_file():
            rows.append(json.loads(main.read_text()))
            continue
        if not done.is_file():
            keras.utils.set_random_seed(config.seed + a)
            model = build_model(config, data, a)
            _train(model, training_items(data), config, run, f"sweep_A{a}", config.sweep_epochs,
                   verbose=verbose, seed=config.seed)  # fmt: skip
            table, ap, _, _ = _evaluate_classification(model, data, config)
            segm = _segm_summary(ap, _lesion_ap(model, data, config)[0] if ap is None else None)
            row = sweep_row(a, config.sweep_epochs, table, *segm, model.count_params())
            run.new_file("sweep", f"A{a}.json").write_text(json.dumps(row))
            discard_stage_checkpoints(run, f"sweep_A{a}")  # the row is the product
        rows.append(json.loads(done.read_text()))
    run.set_aside("sweep_table.csv", "sweep_table.md")
    _write(
        run, "sweep_table", pd.DataFrame(rows),
        "A sweep (Table 5): test-phantom classification and segmentation AP per number of "
        "affinities A, each model trained the same way; 'F1 beats control': CI above the "
        "majority-class predictor. " + caption,
    )  # fmt: skip
    run.mark_stage_done("sweep", seconds=time.perf_counter() - started)


def result_of(run: RunFolder, log=None) -> dict:
    """The run's tables and figures, read back from its folder."""

    def table(name):
        path = run.path / f"{name}.csv"
        return pd.read_csv(path) if path.is_file() else None

    def caption(name):
        path = run.path / f"{name}.md"
        return path.read_text().split("\n\n", 1)[0] if path.is_file() else ""

    names = ("classification_table", "confusion_matrix", "ap_table", "generalisation_table",
             "sweep_table")  # fmt: skip
    return {
        "run": run,
        "train_log": log,
        **{name: table(name) for name in names},
        "captions": {name: caption(name) for name in names},
        "figures": {n: run.path / f"{n}.png" for n in ("x2_epoch1", "x2_last")},
    }
