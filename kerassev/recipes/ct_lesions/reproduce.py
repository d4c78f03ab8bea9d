"""Issue 9 end to end: train Mask R-CNN on the 50 real training slices, evaluate on the 48 test
slices (COCO AP, Dice / IoU), draw the best / worst slices and export the segmenter.

Stages (each resumable with ``--resume``): ``train`` (``training.fit_stage``: per-epoch backups,
final weights), ``evaluate`` (tables, predictions, figure), ``export``; with ``unet=True`` then
``unet`` and ``unet_evaluate``, a U-Net on the same split and budget (``unet_stage``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import tensorflow as tf

from kerassev.data.instances import class_names
from kerassev.distribute import runs_under_configured_distribution
from kerassev.models.detection import MaskRCNN
from kerassev.plots import save_figure
from kerassev.precision import runs_in_configured_precision
from kerassev.runs import RunFolder
from kerassev.stats.tables import to_markdown
from kerassev.training import discard_stage_checkpoints, fit_stage, read_stage_log

from .anchors import anchor_report, format_report, model_boxes
from .config import PAPER_SOURCE, RUN_KIND, CtLesionsConfig, adam
from .data import describe, intensity_stats, letterbox, load_slices, training_dataset
from .evaluate import evaluate, overlap_table, predictor
from .export import export_segmenter
from .figures import masks_figure
from .unet_stage import run_unet

OUTPUTS = ("ap_table.csv", "ap_table.md", "overlap_table.md", "per_slice.csv",
           "coco_results.json", "masks_best_worst.png", "masks_best_worst.txt")  # fmt: skip


def build_model(config: CtLesionsConfig, mean: float, std: float, lesion_boxes=None) -> MaskRCNN:
    """``lesion_boxes``: training boxes at model resolution (``anchors="data"`` sizes from them)."""
    names = class_names(config.variant)
    return MaskRCNN(
        config.model_config(num_classes=len(names), mean=mean, std=std, lesion_boxes=lesion_boxes)
    )


def _compile(config: CtLesionsConfig):
    def compile_fn(model):
        # Paper 05: Adam, fixed lr, weight decay 1e-3 (coupled L2 as the author's torch Adam).
        model.compile(
            optimizer=adam(config.learning_rate, config.weight_decay, config.weight_decay_kind)
        )

    return compile_fn


@runs_in_configured_precision
@runs_under_configured_distribution
def reproduce(
    config: CtLesionsConfig, out: str | Path, *, resume: bool = False, verbose: int = 0
) -> dict:
    """Run (or resume) the whole protocol into a run folder; returns tables, paths and caption."""
    keras.utils.set_random_seed(config.seed)
    slices = load_slices(config)
    names = class_names(config.variant)
    mean, std = intensity_stats(slices["train"])
    data_text = describe(slices, config)
    boxes = model_boxes(slices["train"], config.image_size)
    model = build_model(
        config, mean, std, boxes
    )  # before the run folder: a weights error leaves none
    anchors = anchor_report(slices, model.anchor_generator, config.image_size)
    print(format_report(anchors, config.image_size), flush=True)  # before hours of training
    if resume:
        run = RunFolder.resume(out, RUN_KIND, config=config)
    else:
        run = RunFolder.create(out, RUN_KIND, config=config, seed=config.seed)

    if not (run.path / "anchors.json").exists():
        (run.path / "anchors.json").write_text(json.dumps(anchors, indent=1))
    steps = len(slices["train"]) // config.batch_size
    if "train" in run.info.get("checkpoints_discarded", []):  # exported, then interrupted
        model.load_weights(run.path / "export" / "segmenter.keras")
        log = read_stage_log(run, "train")
    else:
        log = fit_stage(
            model,
            training_dataset(slices["train"], config).repeat(),
            run=run,
            stage="train",
            epochs=config.epochs,
            compile_fn=_compile(config),
            steps_per_epoch=steps,
            shuffle=False,  # the generator shuffles; Keras cannot shuffle a tf.data.Dataset
            verbose=verbose,
        )

    caption = (
        f"Mask R-CNN ({config.backbone}-FPN, {config.image_size} px, backbone weights "
        f"{config.backbone_weights or 'random init'}) trained {config.epochs} epochs on {data_text}; "
        f"evaluated on the test slices at their own resolution. {run.describe()}. The paper "
        f"column is {PAPER_SOURCE} (other data, with the affinity model): a target, not ours."
    )
    if not run.stage_done("evaluate"):
        started = time.perf_counter()
        run.set_aside(*OUTPUTS)
        # norm="bn" only: the moving averages of batch-1 training lag; recompute them (precise BN)
        if model.trains_batch_norm:
            model.precise_batch_norm(
                np.stack(
                    [letterbox(s.image, config.image_size)[..., None] for s in slices["train"]]
                )
            )
        call = tf.function(lambda x: model(x))
        predict = predictor(call, config.image_size, model.config.mask_threshold)
        preds = [predict(s.image) for s in slices["test"]]
        table, per_slice, results = evaluate(slices["test"], preds, config, names)
        overlaps = overlap_table(per_slice, config.union_score_threshold)
        table.to_csv(run.new_file("ap_table.csv"), index=False)
        run.new_file("ap_table.md").write_text(caption + "\n\n" + to_markdown(table) + "\n")
        run.new_file("overlap_table.md").write_text(caption + "\n\n" + to_markdown(overlaps) + "\n")
        per_slice.to_csv(run.new_file("per_slice.csv"), index=False)
        run.new_file("coco_results.json").write_text(json.dumps(results))
        fig = masks_figure(
            slices["test"], preds, per_slice, k=config.figure_examples,
            threshold=config.union_score_threshold,
        )  # fmt: skip
        save_figure(
            fig,
            run.path / "masks_best_worst.png",
            "Best (top) and worst (bottom) test slices by union-mask Dice: true lesions green, "
            f"predicted (score >= {config.union_score_threshold}) red. " + caption,
        )
        plt.close(fig)  # saved; not shown again under a notebook's inline backend
        run.mark_stage_done("evaluate", seconds=time.perf_counter() - started)
    if not run.stage_done("export"):
        run.set_aside("export")
        export_segmenter(model, run.subdir("export"), class_names=names, description=data_text)
        run.mark_stage_done("export")
        # The export holds the weights: the training checkpoint (with Adam state) can go.
        discard_stage_checkpoints(run, "train")
    table = pd.read_csv(run.path / "ap_table.csv")
    per_slice = pd.read_csv(run.path / "per_slice.csv")
    unet = {}
    if config.unet:
        unet = run_unet(
            config, slices, run, mean=mean, std=std, detector_compile=_compile(config),
            detector_per_slice=per_slice, verbose=verbose,
        )  # fmt: skip
    overlaps = overlap_table(per_slice, config.union_score_threshold)
    run.mark_complete(segm_AP=float(table.loc[0, "AP@[.5:.95]"]))
    return {
        "run": run,
        "ap_table": table,
        "overlap_table": overlaps,
        "per_slice": per_slice,
        "train_log": log,
        "caption": caption,
        "figure": run.path / "masks_best_worst.png",
        "export": run.path / "export" / "segmenter_savedmodel",
        **unet,  # dice_table, unet_per_slice, unet_log
    }
