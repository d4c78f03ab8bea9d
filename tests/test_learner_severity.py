"""Paper 02's severity stage (issue 20): patient-grouped CV of the encoder + score head against
a random-init control and the training mean, its export, and ``kerassev predict`` on videos."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from kerassev.cli import main
from kerassev.data.splits import assert_no_leakage
from kerassev.exports import read_metadata
from kerassev.io.video import read_clip, write_video
from kerassev.recipes.learner import LearnerConfig
from kerassev.recipes.learner.data import phantom_data
from kerassev.recipes.learner.pairs import sf_bin
from kerassev.recipes.learner.severity import MEAN, RANDOM_INIT, TARGET, run_severity
from kerassev.runs import RunFolder

T, S = 2, 16


def _config(**kw):
    base = dict(
        phantom_patients=12, phantom_visits=(2, 3), n_frames=T, frame_size=S, width=4,
        epochs=1, n_boot=20, severity_rows=("tsm_mse",), severity_folds=3,
    )  # fmt: skip
    return LearnerConfig.smoke(**{**base, **kw})


def _scored_phantoms(config, tmp_path):
    """Phantom clips with a 0-3 severity (the S/F bin; 3 = worst), some left unscored, and a
    path per clip (the CV's row id)."""
    data = phantom_data(config)
    sev = sf_bin(data.table["sf_ratio"].to_numpy()).astype(float)
    sev[::7] = np.nan  # unscored videos stay out of the severity stage
    paths = [str(tmp_path / f"clip{i}.mp4") for i in range(len(data.table))]
    data.table = data.table.assign(hs=sev, path=paths)
    return data


@pytest.mark.slow  # ~15 s alone, ~27 s on two busy cores
def test_severity_cv_rows_controls_and_an_export_predict_reads(tmp_path, capsys):
    config = _config()
    data = _scored_phantoms(config, tmp_path)
    run = RunFolder.create(tmp_path / "runs", "learner-test", config=config, seed=0)
    result = run_severity(data, config, run)
    out = capsys.readouterr().out
    assert out.count("severity fold ") == 3 and "severity fold 3/3" in out  # a line a fold
    comps = result.table["comparator"].tolist()
    assert comps == [MEAN, "MSE (TSM)", "MSE (TSM) encoder + ridge", RANDOM_INIT]
    pred = result.oof.pivot(index="row_id", columns="comparator", values="y_pred")
    # the ridge row reads the *trained* encoder: not the random-init control's features
    assert not np.allclose(pred["MSE (TSM) encoder + ridge"], pred[RANDOM_INIT], atol=1e-3)
    assert any("QWK" in c for c in result.table.columns)
    n_scored = int(data.table["hs"].notna().sum())
    assert (result.oof.groupby("comparator").size() == n_scored).all()  # every video once
    mean = result.oof[result.oof["comparator"] == MEAN]
    for k, sub in mean.groupby("fold"):  # the mean predictor: the training fold's mean
        train = result.oof[(result.oof["comparator"] == MEAN) & (result.oof["fold"] != k)]
        assert np.allclose(sub["y_pred"], train.drop_duplicates("row_id")["y_true"].mean())
        assert_no_leakage(sub["patient_id"], train["patient_id"])
    assert set(result.tests["metric"]) == {"abs_error", "sq_error"}
    assert len(result.tests) == 2 * 2 * 6  # every two of four rows, two error kinds, two levels
    assert set(result.tests["level"]) == {"video", "patient"}

    # the export: video metadata, and `kerassev predict` gives one row a video
    meta = read_metadata(result.exports["keras"])
    assert (meta.input_kind, meta.frames_per_clip, meta.frame_sampling) == ("video", T, "uniform")
    assert meta.target_range == (0.0, 3.0) and meta.target_name == TARGET
    assert (meta.channels, meta.preprocessing, meta.input_size) == (1, "unit", S)
    held = pd.read_csv(result.exports["held_out"])
    assert not set(held["patient_id"].astype(str)) & set(
        result.oof.loc[result.oof["fold"] != 0, "patient_id"]
    )  # fold 0's test patients: the exported model never trained on them
    videos = tmp_path / "videos"
    videos.mkdir()
    for i in range(3):
        write_video(videos / f"v{i}.mp4", np.repeat(data.clips[i], 3, axis=0))
    write_video(videos / "short.mp4", data.clips[0][:1])  # fewer frames than T: skipped
    preds = tmp_path / "preds.csv"
    assert main(["predict", result.exports["keras"], str(videos), "--out", str(preds)]) == 0
    table = pd.read_csv(preds)
    assert len(table) == 3 and table["frames"].tolist() == [3 * T] * 3
    assert {"path", TARGET, f"{TARGET}_rounded", "frames"} <= set(table.columns)
    assert table[f"{TARGET}_rounded"].between(0, 3).all()
    model = keras.models.load_model(result.exports["keras"])
    clip = read_clip(videos / "v0.mp4", T, size=S, mode="uniform")[..., None]
    assert table[TARGET].iloc[0] == pytest.approx(float(model(clip)[0, 0]), abs=1e-4)


def test_resumed_severity_stage_trains_nothing_again(tmp_path, monkeypatch):
    import kerassev.recipes.learner.severity as sev

    config = _config(export=False, severity_folds=2)
    data = _scored_phantoms(config, tmp_path)
    run = RunFolder.create(tmp_path / "runs", "learner-test", config=config, seed=0)
    first = run_severity(data, config, run)

    def refuse(*args, **kwargs):
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(sev, "pretrain_model", refuse)
    again = run_severity(data, config, RunFolder.resume(run.path, "learner-test", config=config))
    pd.testing.assert_frame_equal(first.oof, again.oof)


@pytest.mark.slow
def test_export_fit_all_trains_on_every_scored_video(tmp_path):
    config = _config(severity_folds=2, severity_export_fit="all")
    data = _scored_phantoms(config, tmp_path)
    run = RunFolder.create(tmp_path / "runs", "learner-test", config=config, seed=0)
    result = run_severity(data, config, run)
    assert run.stage_done("severity/all/tsm_mse") and "all 28 scored" in result.exports["note"]
    assert pd.read_csv(result.exports["held_out"]).empty
    assert run.info["severity_export"] == result.exports


def test_unknown_export_fit_is_refused_before_training(tmp_path):
    config = _config(severity_export_fit="best")
    run = RunFolder.create(tmp_path / "runs", "learner-test", config=config, seed=0)
    with pytest.raises(ValueError, match="severity_export_fit"):
        run_severity(_scored_phantoms(config, tmp_path), config, run)
    assert not run.info["stages_done"]


@pytest.mark.slow
def test_real_pocus_severity_export_predicts_held_out_videos(tmp_path, shared_data):
    """On the real scored POCUS videos: the stage runs, and `kerassev predict` on the exported
    model gives one row per held-out video (raw and rounded severity, frames read)."""
    from kerassev.io.video import count_frames
    from kerassev.recipes.learner.data import pocus_data

    config = _config(severity_folds=2)
    data = pocus_data(config, shared_data("lus_pocus"))
    run = RunFolder.create(tmp_path / "runs", "learner-test", config=config, seed=0)
    result = run_severity(data, config, run)
    # mean, MSE head, MSE encoder + ridge, random init
    assert len(result.oof) == 4 * int(data.table["hs"].notna().sum())
    held = pd.read_csv(result.exports["held_out"]).drop_duplicates("patient_id").head(3)
    preds = tmp_path / "preds.csv"
    argv = ["predict", result.exports["saved_model"], *held["path"], "--out", str(preds)]
    assert main(argv) == 0
    table = pd.read_csv(preds)
    assert table["path"].tolist() == held["path"].tolist()
    assert table["frames"].tolist() == [count_frames(p) for p in held["path"]]
    assert table[f"{TARGET}_rounded"].isin([0, 1, 2, 3]).all()
    np.testing.assert_array_equal(table[f"{TARGET}_rounded"], np.clip(np.rint(table[TARGET]), 0, 3))


def test_best_row_may_be_a_ridge_readout_and_its_export_is_the_ridge_fit():
    import keras
    from sklearn.linear_model import RidgeCV

    from kerassev.recipes.learner.severity import best_row, ridge_name, ridge_scoring_model

    config = LearnerConfig.smoke(severity_rows=("tsm_mse", "tsm_cl"))
    per_fold = pd.DataFrame({
        "comparator": ["MSE (TSM)", ridge_name("tsm_cl"), MEAN, RANDOM_INIT] * 2,
        "mae": [0.6, 0.5, 0.8, 0.4, 0.6, 0.5, 0.8, 0.4],
    })  # fmt: skip
    assert best_row(per_fold, config) == ("tsm_cl", "ridge")  # the control is never exported
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3, 4, 4, 1)).astype("float32")
    encoder = keras.Sequential([keras.Input((3, 4, 4, 1)), keras.layers.Flatten()])
    emb, y = encoder.predict(x, verbose=0), rng.normal(size=40)
    model = ridge_scoring_model(encoder, emb[:30], y[:30])
    want = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(emb[:30], y[:30]).predict(emb[30:])
    np.testing.assert_allclose(model.predict(x[30:], verbose=0)[:, 0], want, rtol=1e-4, atol=1e-4)
