"""Paper 01 end to end on phantoms (smoke preset): it must learn, explain and report."""

import json

import numpy as np
import pandas as pd
import pytest

from kerassev.recipes.mrale import MraleConfig, reproduce_mrale

# Every test here reads one end-to-end smoke run (minutes): `make test-fast` leaves them out.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    # The smoke preset as-is, restricted to the comparator the acceptance check is about.
    config = MraleConfig.smoke(comparators=("ssl_scratch",), subscore_head=False)
    return reproduce_mrale(config, tmp_path_factory.mktemp("runs"), export=False)


def _pooled_mae(oof: pd.DataFrame, comparator: str) -> float:
    sub = oof[oof["comparator"] == comparator]
    return float(np.mean(np.abs(sub["y_true"] - sub["y_pred"])))


def test_ssl_scratch_regressor_beats_mean_predictor_by_20_percent(smoke_run):
    oof = smoke_run.oof
    model_mae = _pooled_mae(oof, "ssl_scratch")
    mean_mae = _pooled_mae(oof, "mean baseline")
    assert set(oof["fold"]) == {0, 1, 2, 3, 4}
    assert model_mae <= 0.8 * mean_mae, (model_mae, mean_mae)


def test_out_of_fold_predictions_cover_every_image_once_per_comparator(smoke_run):
    oof = smoke_run.oof
    for _, sub in oof.groupby("comparator"):
        assert sub["row_id"].is_unique and len(sub) == len(oof) // oof["comparator"].nunique()
    # patient-grouped folds: a patient's images are all in one fold
    assert (oof.groupby("patient_id")["fold"].nunique() == 1).all()


def test_gradcam_mass_reported_for_regressor_and_random_control(smoke_run):
    summary = smoke_run.gradcam_summary()
    row = summary.loc["ssl_scratch"]
    assert row["images scored"] > 0
    for col in ("CAM mass in opacity (trained)", "CAM mass in opacity (random-init control)"):
        assert 0.0 <= row[col] <= 1.0
    assert "Grad-CAM mass inside the known opacity mask" in smoke_run.report()


def test_report_says_whether_ssl_beats_the_random_init_regressor(smoke_run):
    # this smoke has no from-scratch row, so the report says the comparison was not made (the
    # verdict sentences are tested in test_stats; notebook 01 runs every comparator)
    assert "SSL vs random init: not tested (no resnet50_scratch row" in smoke_run.report()


def test_table1_has_baselines_cis_and_labelled_paper_columns(smoke_run):
    table = smoke_run.table.set_index("comparator")
    assert {"mean baseline", "median baseline", "ssl_scratch", "ssl_imagenet"} <= set(table.index)
    assert table.loc["ssl_scratch", "paper: MAE"] == "5.71 (5.68-5.76)"
    assert table.loc["mean baseline", "paper: MAE"] in ("", None) or pd.isna(
        table.loc["mean baseline", "paper: MAE"]
    )
    ours = [c for c in table.columns if c.startswith("MAE mean")]
    assert ours and "to" in table.loc["ssl_scratch", ours[0]]  # estimate with a CI
    # the paper-only row (not run here) has blank columns of ours
    assert pd.isna(table.loc["ssl_imagenet", ours[0]]) or table.loc["ssl_imagenet", ours[0]] == ""


def test_run_folder_holds_everything_and_is_marked_complete(smoke_run):
    run = smoke_run.run.path
    for rel in (
        "run.json",
        "REPORT.md",
        "oof_predictions.csv",
        "per_fold_metrics.csv",
        "tables/table1.csv",
        "tables/table1.md",
        "tables/paired_tests_over_folds.csv",
        "figures/fig3_ssl_loss_hot_vs_cold.png",
        "figures/predicted_vs_true.png",
        "figures/fig4_gradcam_best_worst.png",
        "figures/fig4_gradcam_best_worst.txt",  # the caption beside every figure
        "logs/ssl_scratch__stage_a.csv",
        "models/encoder_scratch.weights.h5",  # the SSL product
        "models/ssl_scratch_fold0.weights.h5",  # the fold-0 regressor, for the export
    ):
        assert (run / rel).exists(), rel
    # Finished stages' checkpoints (weights + optimiser, ~375 MB each) are gone once their
    # product is saved: the SSL stages after the encoder, each fold after its predictions.
    assert list((run / "checkpoints").glob("*.weights.h5")) == []
    info = json.loads((run / "run.json").read_text())
    assert "ssl_scratch/stage_b" in info["checkpoints_discarded"]
    assert "ssl_scratch/fold4/finetune" in info["checkpoints_discarded"]
    assert info["completed"] and info["seed"] == 0 and "keras" in info["versions"]
    assert "synthetic phantoms" in (run / "REPORT.md").read_text()
    assert "preset=smoke" in (run / "figures" / "predicted_vs_true.txt").read_text()


def test_run_killed_after_writing_outputs_resumes_and_keeps_the_partial_copy(smoke_run, tmp_path):
    # A copy of the finished run, as if killed after its outputs were written but before it
    # was marked complete: the resume must rewrite them, not stop at "refusing to overwrite".
    import shutil

    run = tmp_path / smoke_run.run.path.name
    shutil.copytree(smoke_run.run.path, run)
    info = json.loads((run / "run.json").read_text())
    info["completed"] = None
    info["stages_done"].remove("outputs")
    (run / "run.json").write_text(json.dumps(info))

    resumed = reproduce_mrale(smoke_run.config, tmp_path, resume=True, export=False)
    assert resumed.run.path == run and resumed.run.info["completed"]
    (aside,) = run.glob("incomplete-*")
    assert (aside / "REPORT.md").is_file() and (run / "REPORT.md").is_file()
    # nothing was trained again: the same out-of-fold predictions come back
    pd.testing.assert_frame_equal(
        resumed.oof.reset_index(drop=True), smoke_run.oof.reset_index(drop=True)
    )
