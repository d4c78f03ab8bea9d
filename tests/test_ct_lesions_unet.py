"""Issue 19's U-Net comparator stage (recipes/ct_lesions/unet_stage.py): its Dice table, and the
stage at the smoke preset on the real ct_lesions slices (trained, scored, resumed)."""

import keras
import numpy as np
import pandas as pd
import pytest

from kerassev.recipes.ct_lesions import CtLesionsConfig
from kerassev.recipes.ct_lesions.data import load_slices
from kerassev.recipes.ct_lesions.evaluate import slice_overlaps
from kerassev.recipes.ct_lesions.unet_stage import (
    INFNET_DICE,
    MASK_RCNN_ROW,
    UNET_ROW,
    dice_table,
    run_unet,
    training_arrays,
    unet_epochs,
)
from kerassev.runs import RunFolder


def _frame(dice, ids=None):
    ids = list(range(len(dice))) if ids is None else ids
    return pd.DataFrame({"slice_id": ids, "dice": dice})


def test_dice_table_rows_and_paired_difference():
    rng = np.random.default_rng(0)
    det = rng.uniform(0.4, 0.8, 48)
    unet = det - 0.1 + rng.normal(0, 0.01, 48)  # worse on every slice by about 0.1
    t = dice_table({MASK_RCNN_ROW: _frame(det), UNET_ROW: _frame(unet)}, n_boot=500).set_index(
        "model"
    )
    assert t.loc[UNET_ROW, "paper: mean Dice"] == INFNET_DICE["U-Net"] == 0.439
    assert np.isnan(t.loc[MASK_RCNN_ROW, "paper: mean Dice"])  # no paper figure is ours
    assert t.loc["Inf-Net (Fan et al. 2020; theirs)", "paper: mean Dice"] == 0.682
    assert t["slices"].dtype.kind == "i"  # printed as 48, not 48.0
    assert t.loc[UNET_ROW, "union Dice (mean over slices)"] == round(unet.mean(), 3)
    lo, hi = (float(v) for v in t.loc[UNET_ROW, "95% CI (slice bootstrap)"].strip("[]").split(","))
    assert lo < unet.mean() < hi and hi - lo < 0.15
    diff = t.loc["U-Net minus Mask R-CNN (paired, same slices)"]
    lo, hi = (float(v) for v in diff["95% CI (slice bootstrap)"].strip("[]").split(","))
    assert -0.11 < lo < hi < -0.09  # paired: the slice-to-slice spread cancels
    with pytest.raises(ValueError, match="different slices"):
        dice_table({MASK_RCNN_ROW: _frame(det), UNET_ROW: _frame(unet, ids=list(range(1, 49)))})


def test_unet_epochs_follow_the_detector():
    assert unet_epochs(CtLesionsConfig.cpu()) == CtLesionsConfig.cpu().epochs
    assert unet_epochs(CtLesionsConfig.cpu(unet_epochs=5)) == 5
    smoke = CtLesionsConfig.smoke()
    assert smoke.unet and smoke.unet_width <= 8  # CI stays fast


def test_smoke_unet_stage_on_real_slices(shared_data, tmp_path):
    config = CtLesionsConfig.smoke(
        data_root=str(shared_data("ct_lesions")), train_limit=6, test_limit=4, epochs=2
    )
    slices = load_slices(config)
    images, masks = training_arrays(slices["train"], config.image_size)
    assert images.shape == masks.shape == (6, 128, 128, 1)
    assert 0 < masks.mean() < 0.5 and set(np.unique(masks)) <= {0.0, 1.0}
    run = RunFolder.create(tmp_path, "ct_lesions", config=config, seed=0)

    def detector_compile(model):
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))

    # a stand-in for the detector's per_slice.csv: a blank prediction on every test slice
    blank = slice_overlaps(slices["test"], [np.zeros(s.image.shape, bool) for s in slices["test"]])
    out = run_unet(config, slices, run, mean=0.5, std=0.25, detector_compile=detector_compile,
                   detector_per_slice=blank)  # fmt: skip
    per = out["unet_per_slice"]
    assert len(per) == 4 and per["dice"].between(0, 1).all()
    assert len(out["unet_log"]) == 2  # the detector's 2 epochs
    table = out["dice_table"].set_index("model")
    assert table.loc[UNET_ROW, "paper: mean Dice"] == 0.439
    assert table.loc[MASK_RCNN_ROW, "union Dice (mean over slices)"] == round(blank.dice.mean(), 3)
    assert UNET_ROW in (run.path / "dice_table.md").read_text()
    assert run.info["stages_done"] == ["unet", "unet_evaluate"]
    # resumed: the trained stage is loaded, the table read back, nothing retrained
    again = run_unet(config, slices, RunFolder.resume(run.path, "ct_lesions", config=config),
                     mean=0.5, std=0.25, detector_compile=detector_compile)  # fmt: skip
    pd.testing.assert_frame_equal(again["dice_table"], out["dice_table"])
