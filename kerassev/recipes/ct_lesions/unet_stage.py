"""Issue 19 "Beyond the paper": a plain semantic U-Net beside the Mask R-CNN, on the same split.

Does the instance model beat a U-Net on these 50 / 48 slices? The U-Net
(:func:`kerassev.models.unet.build_unet`) sees what the detector sees: the same training slices
(``train_limit`` included), letterboxed to the same ``image_size`` and z-scored with the same
training mean / std; its target is the union of the same ground-truth instances (components
with a box side under ``min_lesion_size`` are background for both). The budget is the
detector's: the same epochs (``unet_epochs=None``), batch size and optimiser (built by the
detector's own ``compile_fn``, so a change there reaches both); the loss is
:func:`~kerassev.models.unet.bce_dice`. Nothing is tuned on the test slices.

Evaluation is the detector's union Dice: the sigmoid map is mapped back to each test slice's own
resolution (soft, then thresholded at 0.5) and scored by ``evaluate.slice_overlaps``; the mean
over slices is Inf-Net's "mean Dice". Inf-Net's own U-Net (0.439) and Inf-Net (0.682) on these
48 slices go in the ``paper:`` column, never as ours. Stages: ``unet`` (``fit_stage``,
resumable), ``unet_evaluate`` (``unet_per_slice.csv``, ``dice_table.csv`` / ``.md``).
"""

from __future__ import annotations

import time

import keras
import numpy as np
import pandas as pd

from kerassev.models.unet import bce_dice, build_unet
from kerassev.runs import RunFolder
from kerassev.stats.classification import paired_bootstrap
from kerassev.stats.tables import to_markdown
from kerassev.training import fit_stage

from .config import CtLesionsConfig
from .data import Slice, letterbox, unletterbox
from .evaluate import slice_overlaps

#: Inf-Net (Fan et al. 2020, IEEE TMI), Table II: mean Dice on these 48 test slices, models
#: trained on the 50 labelled slices. Their figures, not ours.
INFNET_DICE = {"U-Net": 0.439, "Inf-Net": 0.682}
INFNET_SOURCE = "Inf-Net (Fan et al. 2020, IEEE TMI), Table II, the same 48 test slices"
MASK_RCNN_ROW = "Mask R-CNN (ours)"
UNET_ROW = "U-Net (ours, same split and budget)"
OUTPUTS = ("unet_per_slice.csv", "dice_table.csv", "dice_table.md")


def unet_epochs(config: CtLesionsConfig) -> int:
    return config.epochs if config.unet_epochs is None else config.unet_epochs


def build(config: CtLesionsConfig, mean: float, std: float) -> keras.Model:
    return build_unet(
        config.image_size, width=config.unet_width, depth=config.unet_depth,
        norm=config.unet_norm, mean=mean, std=std,
    )  # fmt: skip


def training_arrays(slices: list[Slice], size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images, masks)`` ``(N, S, S, 1)``: letterboxed slices and their lesion unions."""
    images = np.stack([letterbox(s.image, size)[..., None] for s in slices])
    masks = np.stack(
        [letterbox(s.instances.union.astype(np.float32), size, nearest=True) > 0.5 for s in slices]
    )
    return images.astype(np.float32), masks[..., None].astype(np.float32)


def predict_unions(model: keras.Model, slices: list[Slice], size: int) -> list[np.ndarray]:
    """Binary lesion masks at each slice's resolution (the soft map is resized, then cut)."""
    out = []
    for s in slices:
        prob = model(letterbox(s.image, size)[None, ..., None], training=False)
        out.append(unletterbox(np.asarray(prob)[0, ..., 0][None], s.image.shape)[0])
    return out


def _unet_compile(detector_compile):
    def compile_fn(model):
        # The detector's optimiser (same family, lr and weight decay), then the U-Net's loss.
        detector_compile(model)
        model.compile(optimizer=model.optimizer, loss=bce_dice)

    return compile_fn


def dice_table(
    per_slice: dict[str, pd.DataFrame], *, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Mean union Dice over slices per model, with a slice-bootstrap 95 % CI, and each U-Net
    vs Mask R-CNN paired difference; Inf-Net's figures in the ``paper:`` column.

    ct_lesions has no patient ids (MedSeg's 100 slices come from over 40 patients), so slices are
    resampled, not patients: slices of one patient are correlated and the CI is too narrow.
    """

    def ci(*arrays, stat):
        lo, hi, _ = paired_bootstrap(arrays, stat, confidence=0.95, n_resamples=n_boot, seed=seed)
        return f"[{lo:.3f}, {hi:.3f}]"

    rows = []
    for name, frame in per_slice.items():
        d = frame["dice"].to_numpy()
        rows.append(
            {
                "model": name,
                "union Dice (mean over slices)": round(float(d.mean()), 3),
                "95% CI (slice bootstrap)": ci(d, stat=lambda x, axis: x.mean(axis)),
                "sd": round(float(d.std(ddof=1)), 3) if len(d) > 1 else np.nan,
                "median": round(float(np.median(d)), 3),
                "slices": len(d),
                "paper: mean Dice": INFNET_DICE["U-Net"] if name == UNET_ROW else np.nan,
            }
        )
    if MASK_RCNN_ROW in per_slice and UNET_ROW in per_slice:
        a, b = per_slice[UNET_ROW], per_slice[MASK_RCNN_ROW]
        if a["slice_id"].tolist() != b["slice_id"].tolist():
            raise ValueError("the U-Net and Mask R-CNN were scored on different slices")
        da, db = a["dice"].to_numpy(), b["dice"].to_numpy()
        rows.append(
            {
                "model": "U-Net minus Mask R-CNN (paired, same slices)",
                "union Dice (mean over slices)": round(float((da - db).mean()), 3),
                "95% CI (slice bootstrap)": ci(da, db, stat=lambda x, y, axis: (x - y).mean(axis)),
                "slices": len(da),
            }
        )
    # their figure is over the full 48 test slices (whatever test_limit is)
    theirs = {"model": "Inf-Net (Fan et al. 2020; theirs)", "slices": 48}
    rows.append({**theirs, "paper: mean Dice": INFNET_DICE["Inf-Net"]})
    return pd.DataFrame(rows)


def run_unet(
    config: CtLesionsConfig,
    slices: dict[str, list[Slice]],
    run: RunFolder,
    *,
    mean: float,
    std: float,
    detector_compile,
    detector_per_slice: pd.DataFrame | None = None,
    verbose: int = 0,
) -> dict:
    """Train (or load) and evaluate the U-Net in ``run``; ``detector_per_slice`` (the detector's
    ``per_slice.csv``) adds the Mask R-CNN and paired-difference rows to the Dice table."""
    keras.utils.set_random_seed(config.seed)
    model = build(config, mean, std)
    images, masks = training_arrays(slices["train"], config.image_size)
    log = fit_stage(
        model,
        (images, masks),
        run=run,
        stage="unet",
        epochs=unet_epochs(config),
        compile_fn=_unet_compile(detector_compile),
        batch_size=config.batch_size,  # the detector's batch: the same number of steps
        shuffle=True,
        verbose=verbose,
    )
    if not run.stage_done("unet_evaluate"):
        started = time.perf_counter()
        run.set_aside(*OUTPUTS)
        unions = predict_unions(model, slices["test"], config.image_size)
        per_slice = slice_overlaps(slices["test"], unions)
        per_slice.to_csv(run.new_file("unet_per_slice.csv"), index=False)
        frames = {} if detector_per_slice is None else {MASK_RCNN_ROW: detector_per_slice}
        table = dice_table({**frames, UNET_ROW: per_slice}, seed=config.seed)
        table.to_csv(run.new_file("dice_table.csv"), index=False)
        caption = (
            f"Union Dice on the {len(per_slice)} test slices (mean over slices of each slice's "
            f"Dice, at its own resolution). U-Net: width {config.unet_width}, depth "
            f"{config.unet_depth}, {config.unet_norm} norm, {config.image_size} px, "
            f"{unet_epochs(config)} epochs at batch {config.batch_size} on "
            f"{len(slices['train'])} training slices, BCE + soft Dice. {run.describe()}. "
            f"The paper column is {INFNET_SOURCE}: their figures, not ours."
        )
        run.new_file("dice_table.md").write_text(caption + "\n\n" + to_markdown(table) + "\n")
        run.mark_stage_done("unet_evaluate", seconds=time.perf_counter() - started)
    return {
        "unet_per_slice": pd.read_csv(run.path / "unet_per_slice.csv"),
        "dice_table": pd.read_csv(run.path / "dice_table.csv"),
        "unet_log": log,
    }
